"""Story strips: one row per story, its generated frames, then its ground truth when known."""

from __future__ import annotations

import torch


def story_strips(fake: torch.Tensor, truth: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Images for a grid of ``N`` rows: ``fake`` (N, T, C, H, W) frames, followed on the same row by
    ``truth`` (N, T, C, H, W) when given. Returns (images, images per row) for ``save_grid``."""
    if truth is None:
        return fake.flatten(0, 1), fake.shape[1]
    if truth.shape != fake.shape:
        raise ValueError(f"ground truth {tuple(truth.shape)} and generated stories {tuple(fake.shape)} differ in shape")
    return torch.cat([fake, truth.to(fake.dtype)], 1).flatten(0, 1), 2 * fake.shape[1]
