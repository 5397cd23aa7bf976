"""The registrations of ``dcgan`` and ``wgan_gp``: both draw from noise with the generic `sample`."""

from __future__ import annotations

from pathlib import Path

from ganforge.models.dcgan.networks import DcganGenerator, DcganModelConfig
from ganforge.models.dcgan.recipe import (DcganRecipeConfig, WganGpModelConfig, WganGpRecipeConfig, build_recipe,
                                         check)
from ganforge.registry import FamilySpec, register_family

PRESETS = Path(__file__).parent / "presets"

WGAN_GP_EXAMPLES = {
    "train": """
        ganforge train wgan_gp/demo                     # shipped preset: family/dataset
        ganforge train wgan_gp/shapes train.steps=2000 runtime.precision=bf16
        ganforge train wgan_gp/image_folder data.path=/data/anime name=anime64
        ganforge train wgan_gp/shapes --dry-run         # build, one step per phase, report
        torchrun --nproc_per_node 2 -m ganforge train wgan_gp/shapes   # DDP, same command""",
    "bench": "ganforge bench wgan_gp/shapes runtime.precision=bf16      # s/step, images/s, FLOP/s, memory",
    "data": """
        ganforge data inspect wgan_gp/image_folder data.path=/data/faces   # count, skipped files, a preview grid
        ganforge data pack wgan_gp/image_folder data.path=/data/faces --out faces64.h5""",
}

register_family(FamilySpec("dcgan", DcganModelConfig, DcganRecipeConfig, build_recipe, DcganGenerator, check,
                           kind="noise", presets=PRESETS / "dcgan", judges_images=("D",)))
register_family(FamilySpec("wgan_gp", WganGpModelConfig, WganGpRecipeConfig, build_recipe, DcganGenerator, check,
                           kind="noise", presets=PRESETS / "wgan_gp", examples=WGAN_GP_EXAMPLES,
                           judges_images=("D",)))
