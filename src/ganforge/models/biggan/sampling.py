"""BigGAN's sampling tools: standing statistics, the truncation trick, class sheets, interpolations.

As BigGAN-PyTorch's ``utils.sample_sheet``, ``utils.interp_sheet`` and
``utils.accumulate_standing_stats``, with explicit seeds (every sheet is reproducible) and without
CUDA assumptions. Images are returned in [-1, 1] on the CPU with the number per row; writing them is
:mod:`ganforge.sample.grid`'s job.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from ganforge.layers.conditional_norm import StoredStatsNorm
from ganforge.models.biggan.networks import BigganGenerator
from ganforge.sample.classes import class_sheet as shared_class_sheet
from ganforge.sample.noise import truncated_normal  # shared: the paper's truncation trick

InterpolationKind = Literal["zy", "z", "y"]


def _base(net: nn.Module) -> BigganGenerator:
    """The BigganGenerator inside ``net`` (a LoadedGenerator wraps it as ``.net``)."""
    inner = getattr(net, "net", net)
    if not isinstance(inner, BigganGenerator):
        raise TypeError(f"this needs a BigGAN generator, got {type(inner).__name__}")
    return inner


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


@torch.no_grad()
def accumulate_standing_stats(net: nn.Module, accumulations: int = 16, batch_size: int = 64, seed: int = 0,
                              truncation: float | None = None) -> None:
    """Replace G's stored BN statistics by their average over ``accumulations`` batches of samples.

    Runs G in train mode on fresh z and uniform classes (the official procedure), then leaves it in
    eval mode, normalizing with the standing statistics. Use it on a copy if the stored statistics
    must survive; a fresh load from disk restores them.
    """
    G = _base(net)
    norms = [m for m in G.modules() if isinstance(m, StoredStatsNorm)]
    for m in norms:
        m.reset_standing()
    gen, device = torch.Generator().manual_seed(seed), _device(G)
    G.train()
    try:
        for _ in range(accumulations):
            z = truncated_normal((batch_size, G.dim_z), truncation, gen)
            y = torch.randint(G.cfg.num_classes, (batch_size,), generator=gen)
            G(z.to(device), y.to(device))
    finally:
        for m in norms:
            m.standing = None
            m.eval_batch_stats = False  # from now on the standing statistics are what eval mode uses
        G.eval()


def class_sheet(net: nn.Module, classes: list[int], samples_per_class: int = 10, seed: int = 0,
                truncation: float | None = None) -> tuple[torch.Tensor, int]:
    """One row per class, ``samples_per_class`` samples each, column j sharing one z (the official
    sample sheets; ``ganforge.sample.classes.class_sheet`` on the BigGAN generator)."""
    return shared_class_sheet(_base(net), classes, samples_per_class, seed, truncation)


@torch.no_grad()
def interpolation_sheet(net: nn.Module, rows: int = 16, midpoints: int = 8, kind: InterpolationKind = "zy",
                        seed: int = 0, truncation: float | None = None) -> tuple[torch.Tensor, int]:
    """Rows of ``midpoints + 2`` images, linearly interpolated (the official ``interp_sheet``).

    ``zy``: z and the class embedding both interpolate; ``z``: z interpolates, one class per row;
    ``y``: the class embedding interpolates between two classes, one z per row. Class interpolation
    needs a shared embedding (``model.g_shared``), as it happens in embedding space.
    """
    G = _base(net)
    if kind not in ("zy", "z", "y"):
        raise ValueError(f"interpolation '{kind}' is not one of zy, z, y")
    if kind != "z" and not G.cfg.g_shared:
        raise ValueError("interpolating classes needs a shared class embedding (model.g_shared=true); "
                         "this generator conditions on class indices directly. Use kind 'z'.")
    gen = torch.Generator().manual_seed(seed)
    steps = midpoints + 2
    t = torch.linspace(0, 1, steps).reshape(1, steps, 1)

    def path(a: torch.Tensor, b: torch.Tensor, fixed: bool) -> torch.Tensor:
        a, b = a.unsqueeze(1), b.unsqueeze(1)
        out = a.expand(-1, steps, -1) if fixed else a * (1 - t) + b * t
        return out.reshape(rows * steps, -1)

    z0, z1 = (truncated_normal((rows, G.dim_z), truncation, gen) for _ in range(2))
    y0, y1 = (torch.randint(G.cfg.num_classes, (rows,), generator=gen) for _ in range(2))
    device = _device(G)
    zs = path(z0, z1, fixed=kind == "y")
    if kind == "z":  # one class per row: embed the indices (works without a shared embedding too)
        ys = G.embed(y0.repeat_interleave(steps).to(device)).cpu()
    else:
        ys = path(G.embed(y0.to(device)).float().cpu(), G.embed(y1.to(device)).float().cpu(), fixed=False)
    images = torch.cat([G.forward_embedded(z.to(device), y.to(device)).float().cpu()
                        for z, y in zip(zs.split(256), ys.split(256))])
    return images, steps
