"""Files that survive a kill at any moment: write to a temporary file, fsync, rename over the name.

A reader sees either the previous file or the new one, never half of one. Every writer of the run
store (checkpoints, ``latest``, ``config.yaml``, metric results, caches) goes through here.
"""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened on Windows, where it is not needed.
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temporary files that killed writers left in ``folder`` (never this process's); returns how many."""
    removed = 0
    mine = f".tmp-{os.getpid()}"
    for path in Path(folder).glob(".*.tmp-*") if Path(folder).is_dir() else []:
        if not path.name.endswith(mine):
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed
