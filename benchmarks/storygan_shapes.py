"""StoryGAN's CPU target: on the shapes story view, the oracle finds the right objects in at least
80% of generated frames, and earlier objects stay in place in later frames.

Not a test. Trains the ``storygan/shapes`` preset (or reads a run), then evaluates every checkpoint
with the ``story`` metrics (object_acc, per frame and per object slot, count_acc, in_place, ssim) on
``--n`` stories drawn from the descriptions of the training stories, with fixed noise, and prints one
row per checkpoint with the minutes of training it took.

    .venv/bin/python benchmarks/storygan_shapes.py                   # trains runs/bench-storygan-shapes
    .venv/bin/python benchmarks/storygan_shapes.py --run runs/x      # only evaluate an existing run
    .venv/bin/python benchmarks/storygan_shapes.py --run runs/x --since 10000   # its checkpoints from step 10,000
"""

from __future__ import annotations

import argparse

import torch

from ganforge.config import load_yaml
from ganforge.presets import resolve
from ganforge.data import build_dataset
from ganforge.load import generator_from_checkpoint
from ganforge.metrics.evaluate import Evaluator
from ganforge.models.storygan.evaluate import StoryganEvaluation
from ganforge.run.checkpoint import checkpoint_step, list_checkpoints, load_checkpoint
from runlog import existing_or_new_run, minutes_at  # benchmarks/runlog.py


def object_columns(metrics: dict[str, float]) -> str:
    """The table's per-frame and per-slot object accuracies, as markdown cells."""
    return " | ".join(f"{metrics[f'object_acc/{part}{t}']:.3f}" for part in ("frame", "slot") for t in range(1, 5))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="an existing storygan/shapes run folder (default: train one)")
    p.add_argument("--n", type=int, default=200, help="stories per evaluation")
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--since", type=int, default=0, help="evaluate only the checkpoints from this step on")
    p.add_argument("--device", default="cpu", help="where the generator and the oracle run (the noise is drawn "
                                                    "on the CPU, so the stories are the same on every device)")
    args = p.parse_args()
    run = existing_or_new_run(args.run, "storygan/shapes", args.out_dir)
    cfg = resolve(load_yaml((run / "config.yaml").read_text()))
    dataset = build_dataset(cfg.data, cfg.runtime.seed)
    ev = Evaluator(dataset, "story", args.n, batch_size=50, family_eval=StoryganEvaluation(dataset),
                   device=args.device)
    minutes = minutes_at(run)
    print("step | minutes | object_acc | frame 1 | frame 2 | frame 3 | frame 4 | slot 1 | slot 2 | slot 3 | slot 4 "
          "| count_acc | in_place | ssim")
    result = None
    for path in list_checkpoints(run / "checkpoints"):
        if checkpoint_step(path) < args.since:
            continue
        state = load_checkpoint(path)
        gen = generator_from_checkpoint(state, "raw")
        gen.net.to(args.device)
        with torch.no_grad():
            result = ev.evaluate_generator(gen.net)
        m, step = result.metrics, state["step"]
        print(f"{step} | {minutes.get(step, float('nan')):.1f} | {m['object_acc']:.3f} | {object_columns(m)} | "
              f"{m['count_acc']:.3f} | {m['in_place']:.3f} | {m['ssim']:.3f}")
    if result is not None:
        r = result.real_vs_real
        print(f"ground truth | | {r['object_acc']:.3f} | {object_columns(r)} | {r['count_acc']:.3f} | "
              f"{r['in_place']:.3f} | 1")


if __name__ == "__main__":
    main()
