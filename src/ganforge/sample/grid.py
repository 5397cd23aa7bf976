"""Turn generator outputs into image files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from torchvision.utils import make_grid

from ganforge.data.images import array_to_pil, to_uint8

__all__ = ["to_uint8", "generate", "grid_image", "save_grid", "save_images", "slerp", "interpolate_inputs"]


@torch.no_grad()
def generate(generator: nn.Module, inputs: Sequence[torch.Tensor], device: torch.device,
             batch_size: int = 64) -> torch.Tensor:
    """Run ``generator`` on CPU-side ``inputs`` in batches; returns CPU float images in [-1, 1]."""
    outputs = []
    n = inputs[0].shape[0]
    for i in range(0, n, batch_size):
        outputs.append(generator(*(t[i:i + batch_size].to(device) for t in inputs)).float().cpu())
    return torch.cat(outputs)


def grid_image(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """A uint8 (C, H, W) grid, ``nrow`` images per row (square by default)."""
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(to_uint8(images), nrow=nrow, padding=2, pad_value=255)  # white: dark images stay apart


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    """Save images as one PNG grid (written to a temporary name first, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = grid_image(images, nrow).permute(1, 2, 0).numpy()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    array_to_pil(grid).save(tmp)
    tmp.replace(path)
    return path


def save_images(images: torch.Tensor, folder: Path, prefix: str = "sample") -> list[Path]:
    """Save each image as its own PNG."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(to_uint8(images)):
        p = folder / f"{prefix}-{i:05d}.png"
        array_to_pil(img.permute(1, 2, 0).numpy()).save(p)
        paths.append(p)
    return paths


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (the path Gaussian noise lives near)."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate_inputs(start: Sequence[torch.Tensor], end: Sequence[torch.Tensor], steps: int,
                       spherical: bool = True) -> list[torch.Tensor]:
    """Inputs along a path from ``start`` to ``end`` (each a batch of 1): float tensors are
    interpolated (slerp or lerp), integer ones (class labels) switch half-way."""
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    out = []
    for a, b in zip(start, end):
        if a.is_floating_point():
            flat_a, flat_b = a.reshape(1, -1).expand(steps, -1), b.reshape(1, -1).expand(steps, -1)
            path = slerp(flat_a, flat_b, t) if spherical else torch.lerp(flat_a, flat_b, t)
            out.append(path.reshape(steps, *a.shape[1:]))
        else:
            out.append(torch.where(t.squeeze(1) < 0.5, a.expand(steps), b.expand(steps)))
    return out
