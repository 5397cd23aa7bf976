"""The DCGAN generator and discriminator/critic (Radford et al. 2016; PyTorch's DCGAN example).

At 64x64 with z_dim=100 and 64 base channels the generator has 3,576,704 parameters and the
discriminator 2,765,568, as in the reference implementation. 32x32 and 128x128 drop or add one
stride-2 stage. The WGAN-GP critic is the same network with ``norm`` none, layer or instance:
batch norm couples the samples of a batch and breaks the per-sample gradient penalty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn

from ganforge.config import positive
from ganforge.layers import make_norm2d


@dataclass
class DcganModelConfig:
    """Architecture; these typed arguments are also the exported generator's config.json."""

    image_size: Literal[32, 64, 128] = 64
    channels: Literal[1, 3] = 3
    z_dim: int = positive(100)
    g_channels: int = positive(64)  # ngf: width of the last generator stage
    d_channels: int = positive(64)  # ndf: width of the first discriminator stage
    d_norm: Literal["batch", "instance", "layer", "none"] = "batch"


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's init: conv weights N(0, 0.02); norm scales N(1, 0.02), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DcganGenerator(nn.Module):
    """z (N, z_dim) -> image (N, channels, S, S) in [-1, 1]."""

    def __init__(self, cfg: DcganModelConfig):
        super().__init__()
        self.cfg = cfg
        mult = cfg.image_size // 8  # 64px: 8 * ngf channels at 4x4
        ngf = cfg.g_channels
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.z_dim, ngf * mult, 4, 1, 0, bias=False),
                                   make_norm2d("batch", ngf * mult), nn.ReLU(True)]
        while mult > 1:  # each stage doubles the resolution and halves the width
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       make_norm2d("batch", ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        dcgan_init(self)

    def make_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor]:
        """Standard normal noise for ``n`` samples (drawn on the CPU, so a seed means the same on any device)."""
        return (torch.randn(n, self.cfg.z_dim, generator=generator),)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.cfg.z_dim, 1, 1))  # (N, z) -> (N, C, S, S)


class DcganDiscriminator(nn.Module):
    """image (N, channels, S, S) -> one raw score per image (N,): a logit (DCGAN) or critic value (WGAN)."""

    def __init__(self, cfg: DcganModelConfig):
        super().__init__()
        ndf = cfg.d_channels
        # Without a norm layer the convolutions need their own bias; with one, the norm's shift is it.
        bias = cfg.d_norm == "none"
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, ndf, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, True)]
        mult, size = 1, cfg.image_size // 2
        while size > 4:
            layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=bias),
                       make_norm2d(cfg.d_norm, ndf * mult * 2), nn.LeakyReLU(0.2, True)]
            mult, size = mult * 2, size // 2
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=bias))
        self.main = nn.Sequential(*layers)
        assert size == 4 and math.log2(cfg.image_size).is_integer()
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).reshape(x.shape[0])  # (N, C, S, S) -> (N,)
