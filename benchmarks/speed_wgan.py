"""Seconds per iteration of WGAN-GP (one iteration = n_critic critic updates + one generator update).

Not a test: prints a table. Defaults: 64x64, batch 64, the paper's n_critic 5, fp32 and bf16.

    .venv/bin/python benchmarks/speed_wgan.py
    .venv/bin/python benchmarks/speed_wgan.py --preset wgan_gp/demo --precisions fp32 --steps 20
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforge.presets import load_config
from ganforge.runtime.device import peak_memory_bytes, synchronize
from ganforge.train.trainer import Trainer


def measure(preset: str, precision: str, steps: int, warmup: int, extra: list[str]) -> dict:
    cfg = load_config(preset, [f"runtime.precision={precision}", "train.progress=false", *extra])
    trainer = Trainer(cfg)
    for _ in range(warmup):
        trainer.train_step()
        trainer.step += 1
    synchronize(trainer.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
        trainer.step += 1
    synchronize(trainer.device)
    dt = (time.perf_counter() - t0) / steps
    trainer.stream.close()
    return {"precision": precision, "s_per_iter": dt, "images_per_s": cfg.train.batch_size / dt,
            "peak_mib": (peak_memory_bytes(trainer.device) or 0) / 2**20, "device": str(trainer.device),
            "batch": cfg.train.batch_size, "size": cfg.model.image_size, "n_critic": cfg.recipe.n_critic}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="wgan_gp/shapes")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'preset':<16} {'size':>4} {'batch':>5} {'n_critic':>8} {'precision':>9} {'s/iter':>8} {'img/s':>8} {'peak MiB':>9}")
    for prec in args.precisions.split(","):
        r = measure(args.preset, prec, args.steps, args.warmup, args.overrides)
        print(f"{args.preset:<16} {r['size']:>4} {r['batch']:>5} {r['n_critic']:>8} {prec:>9} {r['s_per_iter']:>8.3f} "
              f"{r['images_per_s']:>8.1f} {r['peak_mib']:>9.0f}")


if __name__ == "__main__":
    main()
