"""Reading a run's logs for the benchmark scripts."""

from __future__ import annotations

import json
from pathlib import Path


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
