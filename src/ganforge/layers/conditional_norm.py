"""Batch norm with named running statistics, and its class-conditional form (BigGAN's ccbn/bn).

The statistics live in ``stored_mean``/``stored_var`` buffers (BigGAN-PyTorch's names, so official
checkpoints load as they are); training-mode statistics span the global batch under torchrun.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.layers.norm import global_batch_norm

__all__ = ["StoredStatsNorm", "ConditionalBatchNorm2d", "BatchNorm2d"]


class StoredStatsNorm(nn.Module):
    """Batch norm statistics kept in ``stored_mean``/``stored_var`` (the official buffer names).

    Training mode normalizes with the (global) batch and updates the stored statistics with
    ``momentum``. ``reset_standing()`` (BigGAN's standing statistics, see
    ``models/biggan/sampling.py``) zeroes them and counts forwards: the k-th training forward then
    uses momentum 1/k, so after N forwards they are the plain average of N batches' statistics.
    """

    def __init__(self, channels: int, eps: float, momentum: float, eval_batch_stats: bool = False):
        super().__init__()
        self.channels, self.eps, self.momentum = channels, eps, momentum
        self.eval_batch_stats = eval_batch_stats  # eval mode normalizes with the batch (no update)
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))
        self.standing: int | None = None  # forwards accumulated so far, when accumulating

    def reset_standing(self) -> None:
        self.stored_mean.zero_()
        self.stored_var.zero_()
        self.standing = 0

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.eval_batch_stats and self.standing is None:
            return F.batch_norm(x, None, None, None, None, True, 0.0, self.eps)
        momentum = self.momentum
        if self.training and self.standing is not None:
            self.standing += 1
            momentum = 1.0 / self.standing
        return global_batch_norm(x, self.stored_mean, self.stored_var, self.training, momentum, self.eps)


class ConditionalBatchNorm2d(StoredStatsNorm):
    """Official ``ccbn``: normalize, then scale by ``1 + gain(y)`` and shift by ``bias(y)``.

    ``make_linear(in, out)`` is a bias-free (SN) linear layer on the shared embedding, or an
    ``nn.Embedding`` on class indices when G has no shared embedding.
    """

    def __init__(self, channels: int, cond_size: int, make_linear: Callable[[int, int], nn.Module],
                 eps: float = 1e-5, momentum: float = 0.1, eval_batch_stats: bool = False):
        super().__init__(channels, eps, momentum, eval_batch_stats)
        self.gain = make_linear(cond_size, channels)
        self.bias = make_linear(cond_size, channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = (1 + self.gain(y)).reshape(y.shape[0], -1, 1, 1)
        bias = self.bias(y).reshape(y.shape[0], -1, 1, 1)
        return self.normalize(x) * gain + bias


class BatchNorm2d(StoredStatsNorm):
    """Official ``bn`` (G's output layer): batch norm with a learned per-channel gain and bias."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1, eval_batch_stats: bool = False):
        super().__init__(channels, eps, momentum, eval_batch_stats)
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.normalize(x) * self.gain[None, :, None, None] + self.bias[None, :, None, None]
