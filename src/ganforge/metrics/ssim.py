"""SSIM (Wang et al., 2004): the Gaussian-window structural similarity, the story visualization papers' CLEVR-SV metric.

11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, on images scaled to [0, 1] (data range 1),
computed per channel over the valid region (no padding) and averaged over pixels and channels:
the reference definition, as scikit-image computes it with ``gaussian_weights=True,
use_sample_covariance=False, data_range=1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _window(size: int, sigma: float, channels: int, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).to(dtype).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (N,) of images ``a`` and ``b`` (N, C, H, W) in [-1, 1]."""
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) batches of one shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    if min(a.shape[-2:]) < window:
        raise ValueError(f"images of {tuple(a.shape[-2:])} pixels are smaller than the {window}x{window} window")
    x, y = (a.double() + 1) / 2, (b.double() + 1) / 2
    c = x.shape[1]
    w = _window(window, sigma, c, x.dtype)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.square()
    var_y = blur(y * y) - mu_y.square()
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()
