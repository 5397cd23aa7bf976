"""What ``ganforge evaluate`` measures: a run folder or checkpoint, its generator and its real data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ganforge.load import LoadedGenerator, generator_from_checkpoint


@dataclass
class EvalSource:
    generator: LoadedGenerator
    dataset: Any
    checkpoint: Path
    run_dir: Path
    step: int
    config: Any = None  # the run's RunConfig with the overrides applied


def open_source(path: str | Path, weights: str = "ema", overrides: Sequence[str] = (),
                device: str = "cpu") -> EvalSource:
    """The generator of ``path`` (run folder or checkpoint) and the real dataset of its config.

    ``overrides`` (``data.path=...``) change the run's config for this evaluation only, e.g. to
    compare against a held-out folder.
    """
    from ganforge.config import apply_overrides, resolve
    from ganforge.data import build_dataset
    from ganforge.train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint

    path = Path(path)
    if path.is_dir():
        ckpt = latest_checkpoint(path / "checkpoints")
        if ckpt is None:
            raise CheckpointError(f"'{path}' has no checkpoint to evaluate (looked in '{path / 'checkpoints'}'); "
                                  f"evaluate needs a run folder or a checkpoint file, whose config names the real data")
    elif path.suffix == ".pt":
        ckpt = path
    else:
        raise CheckpointError(f"'{path}' is neither a run folder nor a checkpoint .pt file")
    state = load_checkpoint(ckpt)
    cfg = resolve(apply_overrides(state["config"], list(overrides)))
    dataset = build_dataset(cfg.data, cfg.runtime.seed)
    # runs/NAME/checkpoints/step-N.pt or runs/NAME/checkpoints/best/step-N.pt -> runs/NAME
    run_dir = next((p.parent for p in ckpt.parents if p.name == "checkpoints"), ckpt.parent)
    return EvalSource(generator_from_checkpoint(state, weights, device), dataset, ckpt, run_dir, int(state["step"]),
                      cfg)
