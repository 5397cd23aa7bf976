"""The Python face of ganforge beside ``ganforge.load``: train and resume runs from code.

    import ganforge

    run = ganforge.train("wgan_gp/shapes", train__steps=200, name="demo")   # '__' stands for '.'
    images = run.load().sample(16, seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml


@dataclass
class Run:
    """A run that ``train`` or ``resume`` left on disk: its folder, the step it reached, how it ended
    (finished | interrupted | preempted) and its latest checkpoint."""

    run_dir: Path
    step: int
    status: str
    checkpoint: Path | None

    def load(self, weights: str = "ema", device: str = "cpu") -> Any:
        """The run's generator (see :func:`ganforge.load`), with its family's helpers."""
        from ganforge.load import load

        return load(self.run_dir, weights, device)


def _override_list(overrides: Mapping[str, Any] | Sequence[str] | None, settings: Mapping[str, Any]) -> list[str]:
    """``key=value`` strings from a mapping or list of them, and from keyword settings (``a__b`` = ``a.b``)."""
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = [tuple(o.split("=", 1)) for o in overrides or []]
    items += [(k.replace("__", "."), v) for k, v in settings.items()]
    for item in items:
        if len(item) != 2:
            raise ValueError(f"override '{item[0]}' is not key=value")
    return [f"{k}={v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in items]


def train(config: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | Sequence[str] | None = None,
          **settings: Any) -> Run:
    """Train a new run and return it.

    ``config``: a shipped preset name (``wgan_gp/shapes``), a YAML file, or a config as a dict (the
    layout of a preset file). ``overrides``: ``{"train.steps": 200}`` or ``["train.steps=200"]``;
    ``settings``: the same as keywords, with ``__`` for the dots (``train__steps=200``, ``name="demo"``).
    Errors are the command line's: a misspelled key names the closest valid one."""
    from ganforge.presets import load_config, resolve_with_overrides
    from ganforge.train.trainer import train as train_run

    items = _override_list(overrides, settings)
    cfg = resolve_with_overrides(dict(config), items) if isinstance(config, Mapping) else load_config(config, items)
    result = train_run(cfg)
    return Run(result.run_dir, result.step, result.status, result.checkpoint)


def resume(run_dir: str | Path, overrides: Mapping[str, Any] | Sequence[str] | None = None,
           start_from: str | Path | None = None, **settings: Any) -> Run:
    """Continue ``run_dir`` (from its latest checkpoint, or ``start_from``), as ``ganforge resume``."""
    from ganforge.train.trainer import resume as resume_run

    result = resume_run(run_dir, _override_list(overrides, settings), start_from=start_from)
    return Run(result.run_dir, result.step, result.status, result.checkpoint)
