"""ganforge: train, sample, evaluate and export GANs on any machine."""

from __future__ import annotations

__version__ = "0.1.0"

from ganforge.load import load  # noqa: E402

__all__ = ["load", "__version__"]
