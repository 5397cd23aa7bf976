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
    from ganforge.data import build_dataset
    from ganforge.presets import resolve_with_overrides
    from ganforge.run.store import open_run

    opened = open_run(path, allow_export=False)
    cfg = resolve_with_overrides(opened.record["config"], list(overrides))
    dataset = build_dataset(cfg.data, cfg.runtime.seed)
    return EvalSource(generator_from_checkpoint(opened.record, weights, device), dataset, opened.path, opened.run_dir,
                      opened.step, cfg)
