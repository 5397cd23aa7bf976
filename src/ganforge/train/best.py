"""Keep the N best checkpoints by an evaluation metric (as the official ``test()`` with ``num_best_copies``).

``checkpoints/best/`` holds hard links (copies where links are impossible) of the best checkpoints
and ``best.json``, the ranking. Each write is atomic, so a kill leaves a consistent folder; the
ranking survives resume because it lives on disk, not in the trainer.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from ganforge.run.files import atomic_write_bytes

TABLE = "best.json"


def read_best(folder: Path) -> dict[str, Any]:
    """The ranking in ``folder`` (empty when there is none)."""
    path = Path(folder) / TABLE
    if not path.is_file():
        return {"metric": None, "higher_is_better": None, "entries": []}
    return json.loads(path.read_text(encoding="utf-8"))


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        os.link(src, tmp)  # no extra disk: the file is shared until keep_last prunes the original
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def update_best(folder: Path, checkpoint: Path, step: int, value: float, metric: str, higher_is_better: bool,
                keep: int) -> list[dict[str, Any]]:
    """Rank ``checkpoint`` (at ``step``, scored ``value``) among the kept ones; returns the new ranking."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = read_best(folder)
    if table["metric"] not in (None, metric):
        # The ranking metric changed (e.g. on resume): keep the old best files, aside, untouched.
        aside = folder.with_name(f"best-by-{table['metric']}")
        if not aside.exists():
            folder.rename(aside)
            folder.mkdir()
        table = {"metric": None, "entries": []}
    entries = [e for e in table["entries"] if e["step"] != step]
    if math.isfinite(value):
        entries.append({"step": step, "value": value, "file": checkpoint.name})
    entries.sort(key=lambda e: (-e["value"] if higher_is_better else e["value"], e["step"]))
    kept = entries[:keep]
    for e in kept:
        if e["step"] == step:
            _link_or_copy(checkpoint, folder / e["file"])
    payload = {"metric": metric, "higher_is_better": higher_is_better, "entries": kept}
    atomic_write_bytes(folder / TABLE, json.dumps(payload, indent=2).encode("utf-8"))
    names = {e["file"] for e in kept}
    for path in folder.glob("step-*.pt"):
        if path.name not in names:
            path.unlink()
    return kept
