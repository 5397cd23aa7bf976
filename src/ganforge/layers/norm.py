"""Normalization layers chosen by name, and batch norm over the global batch under torchrun."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

NORM_CHOICES = ("batch", "instance", "layer", "none")


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every rank's shard of the batch.

    With one process it is exactly ``nn.BatchNorm2d`` (same state dict, same math). Under torchrun it
    all-reduces the per-channel mean and variance (differentiably, so gradients flow through them too),
    so a run on N processes with global batch B normalizes like one process with batch B. PyTorch's
    SyncBatchNorm does the same but refuses CPU tensors; this works with gloo as well as nccl.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if not self.training or world == 1:
            return super().forward(x)
        dims = (0, 2, 3)
        count = x.numel() // x.shape[1] * world
        # Two passes (mean, then centered squares) for the same precision as the local kernel.
        mean = differentiable_all_reduce(x.sum(dims)) / count
        centered = x - mean[None, :, None, None]
        var = differentiable_all_reduce(centered.square().sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / max(count - 1, 1), m)
        y = centered * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


class LayerNorm2d(nn.GroupNorm):
    """Layer norm over (C, H, W) of each sample with a per-channel affine: the WGAN-GP critic's norm."""

    def __init__(self, channels: int):
        super().__init__(1, channels)


def make_norm2d(kind: str, channels: int) -> nn.Module:
    """``batch`` (global-batch aware), ``instance``, ``layer`` or ``none`` for ``channels`` features."""
    if kind == "batch":
        return CrossRankBatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return LayerNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm '{kind}' is not one of {', '.join(NORM_CHOICES)}")


__all__ = ["CrossRankBatchNorm2d", "LayerNorm2d", "make_norm2d", "NORM_CHOICES", "F"]
