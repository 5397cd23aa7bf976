"""The registration of ``biggan``: class-conditional, with its own sampling and official import."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.models.biggan.networks import BigganGenerator, BigganModelConfig
from ganforge.models.biggan.recipe import BigganRecipeConfig, build_recipe, check
from ganforge.registry import Drawing, FamilySpec, Importer, register_family


def _draw(opened: Any, args: argparse.Namespace) -> int:
    from ganforge.models.biggan.draw import draw

    return draw(opened, args)


def _add_draw_arguments(group: Any) -> None:
    """BigGAN's options of `ganforge sample` (here, not in draw.py: building the parser must stay light)."""
    group.add_argument("--interp", choices=["zy", "z", "y"], default=None,
                       help="--mode interpolate: what varies along each row (default zy); y interpolates class "
                            "embeddings")
    group.add_argument("--classes", help="--mode sheet: class indices, e.g. 0-9 or 3,7,11 (default: every class, "
                                         "at most 20)")
    group.add_argument("--per-class", type=int, default=10, help="--mode sheet: samples per class")
    group.add_argument("--truncation", type=float, help="truncation trick: redraw z values beyond +-T")
    group.add_argument("--standing-stats", type=int, default=0, metavar="N",
                       help="normalize with BN statistics averaged over N batches of samples")


def _import(args: argparse.Namespace) -> Path:
    from ganforge.models.biggan.official import import_official

    return import_official(args.checkpoint, args.out, args.preset or "biggan/imagenet128", args.overrides)


EXAMPLES = {
    "bench": "ganforge bench biggan/cifar10 data.name=shapes data.view=class model.num_classes=18 --json bench.json",
    "sample": """
        ganforge sample runs/biggan --mode sheet --classes 0-9 --truncation 0.5   # one row per class
        ganforge sample runs/biggan --mode interpolate --interp y   # BigGAN's interpZ/interpY/interpZY sheets
        ganforge sample runs/imagenet --standing-stats 16 --n 16   # BN statistics averaged over 16 batches""",
    "import": """
        ganforge import biggan weights/BigGAN_I128_hdf5_seed0_..._ema --out runs/biggan-138k   # config from state_dict.pth
        ganforge import biggan G_ema.pth --out runs/biggan --preset biggan/imagenet128_ch64""",
}

register_family(FamilySpec(
    "biggan", BigganModelConfig, BigganRecipeConfig, build_recipe, BigganGenerator, check, kind="class",
    drawing=Drawing("sample", "--mode sheet", _draw, _add_draw_arguments, modes=("sheet",)),
    importer=Importer(_import, lambda parser: None,
                      help="the weights folder or G_ema.pth/G.pth (D.pth, the optimizers and state_dict.pth are "
                           "found beside it; default preset biggan/imagenet128)",
                      next_step="ganforge sample {out} --mode sheet"),
    presets=Path(__file__).parent / "presets", examples=EXAMPLES,
    judges_images=("D",)))
