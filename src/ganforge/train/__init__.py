"""The generic training loop and what it owns: phases, EMA, checkpoints, logs.

The package is also callable: ``ganforge.train(config, overrides, **settings)`` is
:func:`ganforge.train.api.train`, so the Python API keeps the verb's name while ``ganforge.train.trainer``
and the other modules stay importable as usual.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ganforge.train.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
