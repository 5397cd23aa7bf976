"""Convolutions with TensorFlow's ``padding='SAME'``, for networks ported from TensorFlow code.

TensorFlow pads a strided convolution asymmetrically: the total padding is
``max((ceil(n / s) - 1) * s + k - n, 0)`` with the odd pixel at the bottom/right. PyTorch's ``padding``
argument is symmetric, so a 5x5 stride-2 convolution (total padding 3) cannot be expressed by it alone.
The transposed convolution is the gradient of that convolution: of its full output, TensorFlow drops
``total // 2`` pixels at the top/left and the rest at the bottom/right.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.layers.conv import Conv2d


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one spatial axis of length ``size`` as TensorFlow's SAME computes it."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(Conv2d):
    """``nn.Conv2d`` with TensorFlow's SAME padding (output ``ceil(input / stride)``), square kernels; small
    outputs run as a matrix product on the CPU, as every :class:`~ganforge.layers.conv.Conv2d`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = same_padding(x.shape[-2], k, s)
        left, right = same_padding(x.shape[-1], k, s)
        padding = self.matmul_padding(x, (top, bottom, left, right))
        if padding is not None:  # the padding goes into the columns: no padded copy of x
            return self.matmul_forward(x, self.weight, self.bias, padding)
        # PyTorch's convolution directly: Conv2d._conv_forward would only repeat the check declined above
        return nn.Conv2d._conv_forward(self, F.pad(x, (left, right, top, bottom)), self.weight, self.bias)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with TensorFlow's SAME padding: output ``input * stride``, square kernels,
    aligned as ``tf.nn.conv2d_transpose(..., padding='SAME')``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 2, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        h, w = x.shape[-2] * s, x.shape[-1] * s
        top, _ = same_padding(h, k, s)
        left, _ = same_padding(w, k, s)
        # (n - 1) * s + k pixels per axis, before any cropping. The bias is added after the crop, not by
        # the convolution: on the CPU, PyTorch 2.14 runs a bf16 transposed convolution that has a bias
        # on a slow path (G's 128 -> 64 layer at batch 64: 51 ms with the bias, 11 ms without it). The
        # sum is the same, on fewer pixels.
        full = F.conv_transpose2d(x, self.weight, None, self.stride)
        out = full[..., top:top + h, left:left + w]
        if self.bias is None:
            return out
        return out + self.bias.to(out.dtype).view(1, -1, 1, 1)  # in the output's dtype, as autocast casts it
