"""The registration of ``r3gan``: class-conditional or unconditional, drawn with the generic `sample`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.models.r3gan.networks import R3ganGenerator, R3ganModelConfig
from ganforge.models.r3gan.recipe import R3ganRecipeConfig, build_recipe, check
from ganforge.registry import Drawing, FamilySpec, Importer, register_family


def _draw(opened: Any, args: argparse.Namespace) -> int:
    from ganforge.models.r3gan.draw import draw

    return draw(opened, args)


def _add_draw_arguments(group: Any) -> None:
    """R3GAN's options of `ganforge sample` (shared with other class-conditional families)."""
    group.add_argument("--classes", help="--mode sheet: class indices, e.g. 0-9 or 3,7,11 (default: every class, "
                                         "at most 20)")
    group.add_argument("--per-class", type=int, default=10, help="--mode sheet: samples per class")


def _import(args: argparse.Namespace) -> Path:
    from ganforge.models.r3gan.official import import_official

    return import_official(args.checkpoint, args.out, args.preset or "r3gan/cifar10", args.overrides)


EXAMPLES = {
    "train": """
        ganforge train r3gan/shapes                      # CPU-sized, unconditional, on the built-in shapes
        ganforge train r3gan/fashion_mnist               # class-conditional, scored by the judge
        ganforge train r3gan/cifar10 data.path=/data/cifar-10-batches-py   # the official CIFAR-10 preset
        torchrun --nproc_per_node 8 -m ganforge train r3gan/ffhq64 data.path=/data/ffhq64""",
    "bench": "ganforge bench r3gan/cifar10 data.name=shapes data.view=class model.num_classes=18",
    "sample": "ganforge sample runs/r3gan-cifar10 --mode sheet --classes 0-9 --per-class 8   # a row per class",
    "import": """
        ganforge import r3gan cifar10.pkl --out runs/r3gan-cifar10          # read without running its code
        ganforge import r3gan network-snapshot-000100.pkl --out runs/ffhq --preset r3gan/ffhq64""",
}

register_family(FamilySpec(
    "r3gan", R3ganModelConfig, R3ganRecipeConfig, build_recipe, R3ganGenerator, check, kind="class",
    drawing=Drawing("sample", "--mode sheet", _draw, _add_draw_arguments, modes=("sheet",)),
    importer=Importer(_import, lambda parser: None,
                      help="an official network snapshot (.pkl: G, D, G_ema, the Adam states and the image count); "
                           "the architecture is read from it, the schedules from --preset (default r3gan/cifar10)",
                      next_step="ganforge sample {out} --n 64"),
    presets=Path(__file__).parent / "presets", examples=EXAMPLES, judges_images=("D",)))
