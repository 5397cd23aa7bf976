"""`ganforge sample` for BigGAN: grids and images with truncation, class sheets, interpZ/Y/ZY sheets,
and BN statistics averaged over batches of samples (the official sample.py's standing stats)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ganforge.load import LoadedGenerator, generator_from_opened
from ganforge.models.biggan import sampling
from ganforge.sample.classes import parse_classes, sheet_labels
from ganforge.sample.grid import save_grid
from ganforge.sample.noise import draw_from_noise, output_base


def draw(opened: Any, args: argparse.Namespace) -> int:
    """Write the sheet, interpolation, grid or images that ``args`` asks for."""
    gen = generator_from_opened(opened, args.weights, args.device)
    if args.standing_stats:
        sampling.accumulate_standing_stats(gen, args.standing_stats, seed=args.seed, truncation=args.truncation)
    tag = f"-trunc{args.truncation}" if args.truncation else ""
    base = output_base(args.source) / "samples"
    if args.mode == "sheet":
        classes = parse_classes(args.classes, int(getattr(gen.model_config, "num_classes", 0) or 0))
        images, nrow = sampling.class_sheet(gen, classes, args.per_class, args.seed, args.truncation)
        out = save_grid(images, Path(args.out or base / f"sheet-seed{args.seed}{tag}.png"), nrow=nrow,
                        labels=sheet_labels(opened, gen.weights, classes, args))
    elif args.mode == "interpolate":
        kind = args.interp or "zy"
        images, nrow = sampling.interpolation_sheet(gen, args.rows, args.steps - 2, kind, args.seed, args.truncation)
        out = save_grid(images, Path(args.out or base / f"interp{kind.upper()}-seed{args.seed}{tag}.png"), nrow=nrow)
    else:
        out = draw_from_noise(gen, args, _truncated_inputs(gen, args.truncation), tag)
    print(f"wrote {out}")
    return 0


def _truncated_inputs(gen: LoadedGenerator, truncation: float | None):  # noqa: ANN202
    def inputs_for(n: int, seed: int) -> tuple[torch.Tensor, ...]:
        z, y = gen.make_inputs(n, seed)
        if truncation:
            z = sampling.truncated_normal(tuple(z.shape), truncation, torch.Generator().manual_seed(seed))
        return z, y

    return inputs_for
