"""StarGAN loss curves under fp32, bf16 and fp16 on the shapes attributes view (same seed, same data).

Not a test: trains ``stargan/shapes`` for ``--steps`` steps once per precision and prints the
losses averaged over windows, so mixed precision can be judged against fp32 (the gradient penalty
runs in fp32 in every mode; fp16 adds a GradScaler per optimizer).

    .venv/bin/python benchmarks/stargan_precision.py                 # 300 steps each, ~5 min on 2 cores
    .venv/bin/python benchmarks/stargan_precision.py --steps 1000 --window 250
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from ganforge.config import load_config
from ganforge.train.trainer import train

KEYS = ("D/real", "D/fake", "D/cls", "D/gp", "G/fake", "G/cls", "G/rec")


def curve(precision: str, steps: int, out_dir: str) -> tuple[list[dict], float]:
    name = f"precision-{precision}"
    shutil.rmtree(Path(out_dir) / name, ignore_errors=True)
    cfg = load_config("stargan/shapes", [f"name={name}", f"out_dir={out_dir}", f"train.steps={steps}",
                                         f"runtime.precision={precision}", "train.log_every=10",
                                         f"train.ckpt_every={steps}", f"train.sample_every={steps}",
                                         "train.progress=false", "train.tensorboard=false"])
    t0 = time.perf_counter()
    train(cfg)
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (Path(out_dir) / name / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "D/real" in r], seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--out-dir", default="runs")
    args = p.parse_args()
    print(f"{'precision':9} {'steps':>11} " + " ".join(f"{k:>8}" for k in KEYS))
    for precision in ("fp32", "bf16", "fp16"):
        rows, seconds = curve(precision, args.steps, args.out_dir)
        for start in range(0, args.steps, args.window):
            sel = [r for r in rows if start < r["step"] <= start + args.window]
            means = [sum(r[k] for r in sel) / len(sel) for k in KEYS]
            print(f"{precision:9} {start + 1:>5}-{start + args.window:<5} " + " ".join(f"{m:8.3f}" for m in means))
        print(f"{precision:9} {seconds / args.steps:.3f} s/step")


if __name__ == "__main__":
    main()
