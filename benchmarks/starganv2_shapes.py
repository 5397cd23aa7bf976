"""StarGAN v2's CPU target: on the shapes domains view, the oracle finds the target shape in at least
90% of latent- and of reference-guided translations, and the reference's color in at least 80%.

Not a test. Trains the ``starganv2/shapes`` preset (or reads a run), then evaluates checkpoints (EMA
weights, as the official evaluation) with the oracle: every task src2trg, ``--n`` validation sources
per domain, ``--outs`` outputs each, fixed seeds. Prints one row per checkpoint with the minutes of
training it took. LPIPS and FID need the AlexNet and Inception weights; add them with ``--metrics``.

    .venv/bin/python benchmarks/starganv2_shapes.py                   # trains runs/bench-starganv2-shapes
    .venv/bin/python benchmarks/starganv2_shapes.py --run runs/x      # only evaluate an existing run
"""

from __future__ import annotations

import argparse

from ganforge.config import load_yaml
from ganforge.presets import resolve
from ganforge.load import generator_from_checkpoint
from ganforge.models.starganv2.evaluate import (Starganv2EvalConfig, Starganv2Evaluation, evaluation_data,
                                                 parse_starganv2_metrics)
from ganforge.run.checkpoint import load_checkpoint
from runlog import existing_or_new_run, minutes_at  # benchmarks/runlog.py

COLUMNS = ("oracle_latent/domain_acc", "oracle_reference/domain_acc", "oracle_reference/color_taken",
           "oracle_reference/texture_taken", "oracle_latent/pose_kept", "oracle_reference/pose_kept",
           "oracle_latent/colors_per_source")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="an existing starganv2/shapes run folder (default: train one)")
    p.add_argument("--n", type=int, default=50, help="validation sources per domain")
    p.add_argument("--outs", type=int, default=10, help="outputs per source")
    p.add_argument("--every", type=int, default=1000, help="evaluate checkpoints at multiples of this step")
    p.add_argument("--from-step", type=int, default=0, help="skip checkpoints before this step")
    p.add_argument("--metrics", default="oracle")
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema",
                   help="the EMA networks (the official evaluation's nets_ema) or the trained ones")
    args = p.parse_args()
    run = existing_or_new_run(args.run, "starganv2/shapes", args.out_dir)
    cfg = resolve(load_yaml((run / "config.yaml").read_text()))
    train, val = evaluation_data(cfg.data, cfg.runtime.seed)
    metrics = tuple(parse_starganv2_metrics(args.metrics))
    evaluation = Starganv2Evaluation(train, val, Starganv2EvalConfig(metrics=metrics, num_outs=args.outs,
                                                                     sources=args.n, batch_size=50))
    minutes = minutes_at(run)
    names = [c.removeprefix("oracle_") for c in COLUMNS]
    print("step | minutes | " + " | ".join(names))
    checkpoints = sorted((run / "checkpoints").glob("step-*.pt"))
    for path in checkpoints:
        state = load_checkpoint(path)
        if state["step"] < args.from_step or (state["step"] % args.every and path != checkpoints[-1]):
            continue
        values = evaluation.run(generator_from_checkpoint(state, args.weights).net).values
        row = " | ".join(f"{values[c]:.3f}" if c in values else "-" for c in COLUMNS)
        extra = {k: round(v, 4) for k, v in values.items() if k.endswith("/mean")}
        print(f"{state['step']} | {minutes.get(state['step'], float('nan')):.1f} | {row}" + (f" | {extra}" if extra else ""),
              flush=True)


if __name__ == "__main__":
    main()
