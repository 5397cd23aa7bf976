"""The self-attention (non-local) block of SAGAN, as its released code and BigGAN implement it.

The released code differs from the SAGAN paper's equations: keys and values are max-pooled 2x2,
queries and keys have C/8 channels, values C/2 with a 1x1 output conv back to C, and the residual
gain ``gamma`` starts at zero so the block begins as the identity. Module names (theta, phi, g, o,
gamma) are BigGAN-PyTorch's, so official state dicts load directly.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.Module):
    """x (N, C, H, W) -> x + gamma * attention(x); ``make_conv(in, out, kernel_size=, padding=, bias=)``."""

    def __init__(self, channels: int, make_conv: Callable[..., nn.Module]):
        super().__init__()
        if channels % 8:
            raise ValueError(f"self-attention needs channels divisible by 8, got {channels}")
        self.channels = channels
        self.theta = make_conv(channels, channels // 8, kernel_size=1, padding=0, bias=False)
        self.phi = make_conv(channels, channels // 8, kernel_size=1, padding=0, bias=False)
        self.g = make_conv(channels, channels // 2, kernel_size=1, padding=0, bias=False)
        self.o = make_conv(channels // 2, channels, kernel_size=1, padding=0, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        query = self.theta(x).reshape(n, c // 8, h * w)
        key = F.max_pool2d(self.phi(x), 2).reshape(n, c // 8, h * w // 4)
        value = F.max_pool2d(self.g(x), 2).reshape(n, c // 2, h * w // 4)
        weights = F.softmax(query.transpose(1, 2) @ key, dim=-1)  # (N, HW, HW/4)
        out = self.o((value @ weights.transpose(1, 2)).reshape(n, c // 2, h, w))
        return self.gamma * out + x
