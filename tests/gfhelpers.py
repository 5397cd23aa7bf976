"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path via `pythonpath`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tiny_overrides(out_dir: Path, **extra) -> list[str]:
    """A WGAN-GP run small enough for a unit test (32px, 8-channel networks, batch 8)."""
    base = {
        "out_dir": str(out_dir), "model.image_size": 32, "model.z_dim": 16, "model.g_channels": 8,
        "model.d_channels": 8, "recipe.n_critic": 2, "data.image_size": 32, "data.length": 64,
        "data.num_workers": 0, "train.batch_size": 8, "train.steps": 6, "train.log_every": 1,
        "train.sample_every": 3, "train.ckpt_every": 3, "train.sample_count": 4, "train.progress": False,
        "train.tensorboard": False, "runtime.deterministic": True, "runtime.device": "cpu",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def python_env() -> dict[str, str]:
    """Environment for subprocesses running ganforge from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


PYTHON = sys.executable
