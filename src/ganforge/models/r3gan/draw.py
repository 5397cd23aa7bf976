"""`ganforge sample` for R3GAN: the generic grids, images and interpolations, and class sheets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.load import generator_from_opened
from ganforge.sample.classes import class_sheet, parse_classes, sheet_labels
from ganforge.sample.grid import save_grid
from ganforge.sample.noise import draw_from_noise, output_base


def draw(opened: Any, args: argparse.Namespace) -> int:
    """Write the class sheet, grid, images or interpolation that ``args`` asks for."""
    gen = generator_from_opened(opened, args.weights, args.device)
    if args.mode == "sheet":
        classes = parse_classes(args.classes, max(int(gen.model_config.num_classes), 1))
        images, nrow = class_sheet(gen, classes, args.per_class, args.seed)
        out = save_grid(images, Path(args.out or output_base(args.source) / "samples" / f"sheet-seed{args.seed}.png"),
                        nrow=nrow, labels=sheet_labels(opened, gen.weights, classes, args))
    else:
        out = draw_from_noise(gen, args)
    print(f"wrote {out}")
    return 0
