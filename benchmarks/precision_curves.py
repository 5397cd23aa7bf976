"""Loss curves of one preset under each precision setting (same seed, same data), StarGAN's by default.

Not a test: trains the preset (``stargan/shapes`` unless ``--preset``) for ``--steps`` steps once per
setting and prints the losses averaged over windows, so mixed precision can be judged against fp32.
Settings: ``fp32``; ``bf16`` (autocast, the gradient penalty in fp32 as the official code);
``bf16-penalty`` (the penalty in bf16 too: ``runtime.penalty_precision=autocast``); ``fp16`` (a
GradScaler per optimizer, penalty in fp32).

    .venv/bin/python benchmarks/precision_curves.py                 # 300 steps each, ~6 min on 2 cores
    .venv/bin/python benchmarks/precision_curves.py --steps 1000 --window 250 --settings fp32,bf16
    .venv/bin/python benchmarks/precision_curves.py --preset wgan_gp/shapes --settings fp32,bf16,bf16-penalty
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from ganforge.presets import load_config
from ganforge.train.trainer import train
from runlog import PRECISION_SETTINGS as SETTINGS  # benchmarks/runlog.py


def is_loss(key: str) -> bool:
    """A logged loss: ``D/...``, ``G/...`` or a family's named phases such as ``D_latent/...``."""
    return "/" in key and key.split("/", 1)[0].startswith(("D", "G"))


def curve(preset: str, setting: str, steps: int, out_dir: str) -> tuple[list[dict], float]:
    """Train ``preset`` under ``setting``; the logged loss rows and the seconds it took."""
    name = f"precision-{setting}"
    shutil.rmtree(Path(out_dir) / name, ignore_errors=True)
    cfg = load_config(preset, [f"name={name}", f"out_dir={out_dir}", f"train.steps={steps}", "train.log_every=10",
                               f"train.ckpt_every={steps}", f"train.sample_every={steps}",
                               "train.progress=false", "train.tensorboard=false", *SETTINGS[setting]])
    t0 = time.perf_counter()
    train(cfg)
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (Path(out_dir) / name / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if any(map(is_loss, r))], seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="stargan/shapes")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--out-dir", default="runs")
    args = p.parse_args()
    settings = args.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        p.error(f"--settings: {', '.join(unknown)} not among {', '.join(SETTINGS)}")
    keys: list[str] = []
    for setting in settings:
        rows, seconds = curve(args.preset, setting, args.steps, args.out_dir)
        if not keys:  # the loss columns the preset logs, D's then G's
            keys = sorted({k for r in rows for k in r if is_loss(k)})
            print(f"{'setting':12} {'steps':>11} " + " ".join(f"{k:>9}" for k in keys))
        for start in range(0, args.steps, args.window):
            sel = [r for r in rows if start < r["step"] <= start + args.window]
            means = [sum(r.get(k, float("nan")) for r in sel) / len(sel) for k in keys]
            print(f"{setting:12} {start + 1:>5}-{start + args.window:<5} " + " ".join(f"{m:9.3f}" for m in means))
        print(f"{setting:12} {seconds / args.steps:.3f} s/step")


if __name__ == "__main__":
    main()
