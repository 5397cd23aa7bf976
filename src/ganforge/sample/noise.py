"""`ganforge sample` for models that draw from noise: a grid, single images, or interpolation rows.

Families whose generator takes ``make_inputs(n, generator)`` use :func:`draw_from_noise` as it is;
a family with more (BigGAN's truncation and class sheets) wraps it with its own ``inputs_for``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

import torch

from ganforge.registry import SAMPLE_MODES
from ganforge.sample.grid import generate, interpolate_inputs, save_grid, save_images

InputsFor = Callable[[int, int], tuple[torch.Tensor, ...]]  # (n, seed) -> generator inputs


def truncated_normal(shape: tuple[int, ...], truncation: float | None, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """N(0, 1) noise; with ``truncation`` every value beyond +-truncation is redrawn until inside
    (the paper's truncation trick). None or a value <= 0 gives the plain normal."""
    z = torch.randn(shape, generator=generator)
    if truncation is None or truncation <= 0:
        return z
    outside = z.abs() > truncation
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > truncation
    return z


def output_base(source: str | Path) -> Path:
    """Where a drawing verb writes by default: the run (or export) folder, or a checkpoint's folder."""
    src = Path(source)
    return src if src.is_dir() else src.parent


def device_of(gen: torch.nn.Module) -> torch.device:
    """The device the generator's parameters live on."""
    return next(gen.parameters()).device


def draw_from_noise(gen: Any, args: argparse.Namespace, inputs_for: InputsFor | None = None, tag: str = "") -> Path:
    """Write ``args.mode`` (grid, images or interpolate) for a loaded generator; returns the path.

    ``inputs_for`` replaces ``gen.make_inputs`` for grids and images; ``tag`` goes into default names."""
    if args.mode not in SAMPLE_MODES:
        raise ValueError(f"--mode {args.mode} is not offered by {gen.family} models; choose from "
                         f"{', '.join(SAMPLE_MODES)}")
    inputs_for = inputs_for or gen.make_inputs
    base = output_base(args.source) / "samples"
    if args.mode == "interpolate":
        rows = []
        for r in range(args.rows):
            a, b = gen.make_inputs(1, args.seed * 1000 + 2 * r), gen.make_inputs(1, args.seed * 1000 + 2 * r + 1)
            rows.append(interpolate_inputs(a, b, args.steps))
        inputs = [torch.cat(parts) for parts in zip(*rows)]
        out = Path(args.out or base / f"interpolate-seed{args.seed}.png")
        return save_grid(generate(gen, inputs, device_of(gen)), out, nrow=args.steps)
    images = generate(gen, inputs_for(args.n, args.seed), device_of(gen))
    if args.mode == "images":
        out = Path(args.out or base / f"images-seed{args.seed}{tag}")
        save_images(images, out)
        return out
    return save_grid(images, Path(args.out or base / f"grid-seed{args.seed}{tag}.png"))


def run_noise_drawing(opened: Any, args: argparse.Namespace) -> int:
    """The drawing of every noise family that declares none of its own."""
    from ganforge.load import generator_from_opened

    gen = generator_from_opened(opened, args.weights, args.device)
    print(f"wrote {draw_from_noise(gen, args)}")
    return 0
