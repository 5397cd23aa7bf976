"""The DCGAN generator and discriminator/critic, in two layouts (``model.arch``).

``pytorch_example`` (Radford et al. 2016 as PyTorch's DCGAN example): 4x4 convolutions without bias.
At 64x64 with z_dim=100 and 64 base channels the generator has 3,576,704 parameters and the
discriminator 2,765,568, as in the reference implementation.

``improved_wgan``: the DCGAN pair of the WGAN-GP authors' code (igul222/improved_wgan_training,
``DCGANGenerator``/``DCGANDiscriminator`` of gan_64x64.py, its "Baseline (G: DCGAN, D: DCGAN)"): a
linear layer from z to the 4x4 feature map, 5x5 convolutions with biases and TensorFlow's SAME
padding, a linear critic output, uniform init of std 0.02. At 64x64 with z_dim=128 and 64 base
channels: G 5,364,739 and D 4,316,545 trainable parameters (TensorFlow also counts G's 1,920
batch-norm moving averages, which are buffers here). gan_cifar.py's 32 px pair is not this one at
32 px (1-d batch norm on the linear output, another init).

32x32 and 128x128 drop or add one stride-2 stage. The WGAN-GP critic is the same network with
``norm`` none, layer or instance: batch norm couples the samples of a batch and breaks the
per-sample gradient penalty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn

from ganforge.config import positive
from ganforge.layers import make_norm2d
from ganforge.layers.conv import Conv2d
from ganforge.layers.same_padding import SameConv2d, SameConvTranspose2d


@dataclass
class DcganModelConfig:
    """Architecture; these typed arguments are also the exported generator's config.json."""

    image_size: Literal[32, 64, 128] = 64
    channels: Literal[1, 3] = 3
    z_dim: int = positive(100)
    g_channels: int = positive(64)  # ngf: width of the last generator stage
    d_channels: int = positive(64)  # ndf: width of the first discriminator stage
    d_norm: Literal["batch", "instance", "layer", "none"] = "batch"
    arch: Literal["pytorch_example", "improved_wgan"] = "pytorch_example"


def dcgan_init(module: nn.Module, arch: str = "pytorch_example") -> None:
    """The init of ``arch``'s code. pytorch_example (DCGAN's): weights N(0, 0.02), norm scales N(1, 0.02).
    improved_wgan (the WGAN-GP code's): weights uniform with std 0.02 (bound 0.02 * sqrt(3)), norm scales 1.
    Biases and norm shifts 0 in both."""
    official = arch == "improved_wgan"
    bound = 0.02 * math.sqrt(3.0)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):  # only improved_wgan has linear layers
            if official:
                nn.init.uniform_(m.weight, -bound, bound)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            if official:
                nn.init.ones_(m.weight)
            else:
                nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DcganGenerator(nn.Module):
    """z (N, z_dim) -> image (N, channels, S, S) in [-1, 1]."""

    def __init__(self, cfg: DcganModelConfig):
        super().__init__()
        self.cfg = cfg
        mult = cfg.image_size // 8  # 64px: 8 * ngf channels at 4x4
        ngf = cfg.g_channels
        official = cfg.arch == "improved_wgan"
        # improved_wgan: z -> linear -> (8ngf, 4, 4); pytorch_example: z -> 4x4 transposed conv.
        self.input = nn.Linear(cfg.z_dim, ngf * mult * 16) if official else None
        layers: list[nn.Module] = [] if official else [nn.ConvTranspose2d(cfg.z_dim, ngf * mult, 4, 1, 0, bias=False)]
        layers += [make_norm2d("batch", ngf * mult), nn.ReLU(True)]

        def upsample(c_in: int, c_out: int) -> nn.Module:
            return SameConvTranspose2d(c_in, c_out, 5, 2) if official else nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)

        while mult > 1:  # each stage doubles the resolution and halves the width
            layers += [upsample(ngf * mult, ngf * mult // 2), make_norm2d("batch", ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [upsample(ngf, cfg.channels), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        dcgan_init(self, cfg.arch)

    def make_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor]:
        """Standard normal noise for ``n`` samples (drawn on the CPU, so a seed means the same on any device)."""
        return (torch.randn(n, self.cfg.z_dim, generator=generator),)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.input is not None:  # (N, z) -> (N, 8 ngf * 16) -> (N, 8 ngf, 4, 4), channel-major as TensorFlow's reshape
            return self.main(self.input(z.reshape(z.shape[0], -1)).reshape(z.shape[0], -1, 4, 4))
        return self.main(z.reshape(z.shape[0], self.cfg.z_dim, 1, 1))  # (N, z) -> (N, C, S, S)


class DcganDiscriminator(nn.Module):
    """image (N, channels, S, S) -> one raw score per image (N,): a logit (DCGAN) or critic value (WGAN)."""

    def __init__(self, cfg: DcganModelConfig):
        super().__init__()
        ndf = cfg.d_channels
        official = cfg.arch == "improved_wgan"
        # Without a norm layer the convolutions need their own bias; with one, the norm's shift is it.
        # (The WGAN-GP code gives every convolution a bias.)
        bias = cfg.d_norm == "none" or official

        def downsample(c_in: int, c_out: int) -> nn.Module:
            return SameConv2d(c_in, c_out, 5, 2, bias=bias) if official else Conv2d(c_in, c_out, 4, 2, 1, bias=bias)

        layers: list[nn.Module] = [downsample(cfg.channels, ndf), nn.LeakyReLU(0.2, True)]
        mult, size = 1, cfg.image_size // 2
        while size > 4:
            layers += [downsample(ndf * mult, ndf * mult * 2), make_norm2d(cfg.d_norm, ndf * mult * 2),
                       nn.LeakyReLU(0.2, True)]
            mult, size = mult * 2, size // 2
        # improved_wgan: flatten (channel-major) and one linear unit; pytorch_example: a 4x4 conv.
        self.output = nn.Linear(ndf * mult * 16, 1) if official else None
        if not official:
            layers.append(Conv2d(ndf * mult, 1, 4, 1, 0, bias=bias))
        self.main = nn.Sequential(*layers)
        assert size == 4 and math.log2(cfg.image_size).is_integer()
        dcgan_init(self, cfg.arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.main(x)
        if self.output is not None:
            h = self.output(h.flatten(1))
        return h.reshape(x.shape[0])  # (N, C, S, S) -> (N,)
