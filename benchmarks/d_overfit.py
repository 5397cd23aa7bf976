"""How far a class-conditional discriminator has memorised its training images: the gap between its
mean output on training reals and on held-out reals (the overfitting signal the small-data papers
track; near 0 means D tells the two apart no better than chance, a growing gap means it memorises).

Not a test. Reads the latest checkpoint of each run named and its config; the held-out images are the
dataset's test split. Written for the class-conditional Fashion-MNIST runs of ``benchmarks/seeds.py``.

    PYTHONPATH=src .venv/bin/python benchmarks/d_overfit.py runs/seeds/biggan-fashion_mnist-2pct-none-s0 ...
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from ganforge.config import load_yaml
from ganforge.data import build_dataset
from ganforge.presets import resolve
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.train.trainer import Trainer


def images_and_labels(dataset, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` items of ``dataset`` (its augmentation off)."""
    items = [dataset.get(i) for i in range(min(count, len(dataset)))]
    return torch.stack([it["image"] for it in items]), torch.stack([it["label"] for it in items])


@torch.no_grad()
def gap(run: Path, count: int) -> tuple[float, float, int]:
    """(mean D on training reals, mean D on held-out reals, step) of ``run``'s latest checkpoint."""
    cfg = resolve(load_yaml((run / "config.yaml").read_text(encoding="utf-8")))
    cfg.train.diffaugment = ""  # D is read on the images themselves
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    disc = Trainer(cfg, None).recipe.networks["D"]
    disc.load_state_dict(state["networks"]["D"])
    disc.eval()
    train = build_dataset(cfg.data, cfg.runtime.seed)
    test = build_dataset(dataclasses.replace(cfg.data, split="test", fraction=1.0), cfg.runtime.seed)
    means = []
    for data in (train, test):
        x, y = images_and_labels(data, count)
        means.append(float(disc(x, y).float().mean()))
    return means[0], means[1], int(state["step"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--count", type=int, default=1000, help="images of each split (default 1000)")
    args = p.parse_args()
    print("| run | step | D on training reals | D on held-out reals | gap |")
    print("| --- | --- | --- | --- | --- |")
    for run in args.runs:
        train, held_out, step = gap(run, args.count)
        print(f"| {run.name} | {step} | {train:.3f} | {held_out:.3f} | {train - held_out:.3f} |")


if __name__ == "__main__":
    main()
