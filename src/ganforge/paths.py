"""Where ganforge keeps caches, and safe joins for paths that come from configs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$GANFORGE_CACHE_DIR`` or the user cache (``~/.cache/ganforge``, ``%LOCALAPPDATA%`` on Windows)."""
    base = os.environ.get("GANFORGE_CACHE_DIR")
    if base:
        root = Path(base)
    elif os.name == "nt":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "ganforge" / "cache"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganforge"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(name: str, what: str = "run name") -> str:
    """A single path component: no separators, no '..', so writes stay inside their folder."""
    if not name or name in (".", "..") or any(c in name for c in "/\\") or ":" in name:
        raise ValueError(f"{what} '{name}' must be a single folder name (no '/', '\\', ':' or '..')")
    return name
