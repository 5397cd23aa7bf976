"""ganforge: train, sample, evaluate and export GANs on any machine."""

from __future__ import annotations

__version__ = "0.1.0"

# ``ganforge.train`` is the training package, which is callable as ganforge.train.api.train (see its
# docstring): a function of that name here would be replaced by the package when it is first imported.
import ganforge.train as train  # noqa: E402
from ganforge.train.api import Run, resume  # noqa: E402
from ganforge.load import load  # noqa: E402

__all__ = ["load", "train", "resume", "Run", "__version__"]
