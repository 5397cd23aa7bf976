"""One progress bar style for every command that can take more than a few seconds.

Bars go to stderr, so the results a command prints on stdout stay clean to pipe. In a terminal they
redraw twice a second; in a log file (no terminal) every 30 s, so logs stay short. A bar appears
only once its work has taken ``delay`` seconds (``DELAY_S`` by default): quick work prints nothing.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

from tqdm import tqdm

DELAY_S = 2.0  # a bar shows once its work has taken this long



def progress(iterable: Iterable | None = None, desc: str = "", total: int | None = None, unit: str = "it",
             enabled: bool = True, delay: float | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable`` (or a manual one, ``total`` given) in ganforge's style."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30.0,
                delay=DELAY_S if delay is None else delay, **kwargs)
