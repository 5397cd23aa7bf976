"""Run logs: ``metrics.jsonl`` (one JSON object per logged step) and TensorBoard events."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class RunLogger:
    """Appends scalars to metrics.jsonl and TensorBoard; a no-op on ranks other than 0."""

    def __init__(self, run_dir: Path | None, tensorboard: bool = True):
        self.run_dir = run_dir
        self._jsonl = None
        self._tb = None
        if run_dir is None:
            return
        self._jsonl = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but logging must never stop a run
                self._tb = None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Append ``values`` at ``step`` to metrics.jsonl and TensorBoard (non-finite values as text)."""
        if self._jsonl is None:
            return
        clean = {k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}
        self._jsonl.write(json.dumps({"step": step, **clean}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, step)

    def image(self, step: int, tag: str, grid: Any) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, grid, step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
