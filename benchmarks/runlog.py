"""Runs for the benchmark scripts: an existing one, or a fresh one of a preset; reading their logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# The precision settings the benchmarks compare, as config overrides: bf16 keeps gradient penalties and
# R1 in fp32 as the official codes do; bf16-penalty runs them in bf16 too; fp16 scales each optimizer's loss.
PRECISION_SETTINGS = {
    "fp32": ["runtime.precision=fp32"],
    "bf16": ["runtime.precision=bf16"],
    "bf16-penalty": ["runtime.precision=bf16", "runtime.penalty_precision=autocast"],
    "fp16": ["runtime.precision=fp16"],
}


def existing_or_new_run(run: str | None, preset: str, out_dir: str) -> Path:
    """``run`` when given; otherwise train ``preset`` afresh into ``out_dir/bench-<family>-<name>``."""
    if run:
        return Path(run)
    from ganforge.presets import load_config
    from ganforge.train.trainer import train

    path = Path(out_dir) / f"bench-{preset.replace('/', '-')}"
    shutil.rmtree(path, ignore_errors=True)
    train(load_config(preset, [f"name={path.name}", f"out_dir={out_dir}", "train.progress=false"]))
    return path


def minutes_at(run: Path) -> dict[int, float]:
    """Cumulative wall minutes at each logged step (metrics.jsonl's seconds per step x interval)."""
    total, last, out = 0.0, 0, {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "time/s_per_step" not in row:  # evaluation rows
            continue
        total += row["time/s_per_step"] * (row["step"] - last)
        last = row["step"]
        out[last] = total / 60
    return out
