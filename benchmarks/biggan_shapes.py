"""BigGAN's CPU target: class accuracy on the shapes class view against wall-clock training time.

Not a test. Trains the ``biggan/shapes`` preset (or reads a finished run), then prints the curve the
preset's own evaluation wrote (class accuracy and oracle metrics of the EMA generator every 1000
steps, with the minutes of training, evaluation included, at each point) and re-evaluates the final
checkpoint on more images. The target: class_acc >= 0.9 x the oracle's accuracy on real images of
the same view (the real-vs-real column) within 20 minutes.

    .venv/bin/python benchmarks/biggan_shapes.py                   # trains runs/bench-biggan-shapes (~20 min)
    .venv/bin/python benchmarks/biggan_shapes.py --run runs/x      # only report an existing run
"""

from __future__ import annotations

import argparse
import json

import torch

from ganforge.presets import load_config
from ganforge.load import generator_from_checkpoint
from ganforge.metrics.evaluate import Evaluator
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from runlog import existing_or_new_run, minutes_at  # benchmarks/runlog.py


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="an existing biggan/shapes run folder (default: train one)")
    p.add_argument("--n", type=int, default=2000, help="images for the final evaluation")
    p.add_argument("--out-dir", default="runs")
    args = p.parse_args()
    run = existing_or_new_run(args.run, "biggan/shapes", args.out_dir)
    minutes = minutes_at(run)
    print("step | minutes | class_acc | oracle_fid | oracle_precision | oracle_recall")
    real = {}
    for path in sorted((run / "eval").glob("step-*.json")):
        e = json.loads(path.read_text())
        m, real = e["metrics"], e["real_vs_real"]
        print(f"{e['step']} | {minutes.get(e['step'], float('nan')):.1f} | {m['class_acc']:.3f} | "
              f"{m['oracle_fid']:.3f} | {m['oracle_precision']:.3f} | {m['oracle_recall']:.3f}")
    print(f"real vs real | | {real['class_acc']:.3f} | {real['oracle_fid']:.3f} | {real['oracle_precision']:.3f} | "
          f"{real['oracle_recall']:.3f}")
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    cfg = load_config("biggan/shapes", [f"name={run.name}"])
    from ganforge.data import build_dataset

    gen = generator_from_checkpoint(state, "ema")
    ev = Evaluator(build_dataset(cfg.data, 0), "class,oracle", args.n, seed=1, batch_size=250)
    with torch.no_grad():
        final = ev.evaluate_generator(gen.net)
    print(f"\nfinal checkpoint (step {state['step']}), {args.n} new samples (seed 1):")
    print(final.table())


if __name__ == "__main__":
    main()
