"""StarGAN v2's networks (Choi et al., CVPR 2020), as clovaai/stargan-v2's ``core/model.py`` builds them.

Module names follow the official code (``from_rgb``, ``encode.<i>``, ``decode.<i>``, ``to_rgb``,
``shared``/``unshared``, ``main``), so the official ``*_nets.ckpt`` / ``*_nets_ema.ckpt`` state dicts
load without renaming. Widths: the first conv has ``2**14 // image_size`` channels, doubling per
down-sampling block up to ``max_conv_dim`` (512). At 256 px the official parameter counts are:

- AFHQ (3 domains, ``w_hpf`` 0): G 33,892,995, F 3,259,072, E 20,949,760, D 20,852,803;
- CelebA-HQ (2 domains, ``w_hpf`` 1): G 43,467,395, F 2,438,272, E 20,916,928, D 20,852,290.

With ``w_hpf > 0`` (CelebA-HQ) the generator has one more down/up-sampling level, its decoder blocks
drop the shortcut, and facial-landmark masks (from the FAN network) add high-pass-filtered encoder
features back at 32, 64 and 128 px, so that face details survive the translation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import non_negative, positive
from ganforge.layers.conv import Conv2d
from ganforge.layers.norm import InstanceNorm2d

# Every residual sum is divided by sqrt(2) to keep unit variance, as the official blocks do (a division,
# not a multiplication by 1/sqrt(2), so that outputs match the official ones bit for bit).
SQRT2 = math.sqrt(2)


@dataclass
class Starganv2ModelConfig:
    """Architecture (the official ``--img_size``, ``--style_dim``, ``--latent_dim``, ``--num_domains``,
    ``--w_hpf``); also the exported generator's config.json."""

    image_size: int = positive(256)
    num_domains: int = positive(2)
    latent_dim: int = positive(16)  # z of the mapping network
    style_dim: int = positive(64)
    max_conv_dim: int = positive(512)
    w_hpf: float = non_negative(1.0)  # weight of the high-pass path (0: AFHQ, no masks; 1: CelebA-HQ)
    # Channels of the first convolution; 0: the official 2**14 // image_size (64 at 256 px). Smaller
    # values make CPU-sized networks (the official code has no such option).
    base_dim: int = non_negative(0)

    @property
    def first_dim(self) -> int:
        """Channels of the first convolution: ``base_dim``, or the official ``2**14 // img_size``."""
        return self.base_dim or 2 ** 14 // self.image_size


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


class ResBlk(nn.Module):
    """Pre-activation residual block (optionally instance-normalized, optionally down-sampling by 2)."""

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False):
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.actv = _lrelu()
        self.conv1 = Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = InstanceNorm2d(dim_in, affine=True)
            self.norm2 = InstanceNorm2d(dim_in, affine=True)
        self.conv1x1 = Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1x1 is not None:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(self.actv(x))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(self.actv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / SQRT2


class AdaIN(nn.Module):
    """Adaptive instance norm: ``(1 + gamma(s)) * IN(x) + beta(s)``."""

    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.norm = InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """Decoder block: AdaIN residual path (optionally up-sampling by 2); with ``w_hpf > 0`` the official
    block returns the residual path alone (no shortcut)."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, w_hpf: float, upsample: bool = False):
        super().__init__()
        self.w_hpf, self.upsample = w_hpf, upsample
        self.actv = _lrelu()
        self.conv1 = Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.conv1x1 = Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.conv1x1 is not None else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = self.actv(self.norm1(x, s))
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.actv(self.norm2(self.conv1(x), s))
        return self.conv2(x)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self._residual(x, s)
        return (out + self._shortcut(x)) / SQRT2 if self.w_hpf == 0 else out


class HighPass(nn.Module):
    """Depthwise 3x3 Laplacian-style filter divided by ``w_hpf`` (a buffer in official checkpoints)."""

    def __init__(self, w_hpf: float):
        super().__init__()
        kernel = torch.full((3, 3), -1.0)
        kernel[1, 1] = 8.0
        self.register_buffer("filter", kernel / w_hpf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.filter.to(x.dtype)[None, None].expand(x.shape[1], 1, 3, 3)
        return F.conv2d(x, weight, padding=1, groups=x.shape[1])


# Resolutions where the masked high-pass path adds encoder features back (the official [32, 64, 128]).
SKIP_SIZES = (32, 64, 128)


class Generator(nn.Module):
    """``forward(x, s, masks=None)``: image (N, 3, H, W) in [-1, 1] and style (N, style_dim) -> image."""

    def __init__(self, cfg: Starganv2ModelConfig):
        super().__init__()
        self.cfg = cfg
        dim_in = cfg.first_dim
        self.from_rgb = Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(InstanceNorm2d(dim_in, affine=True), _lrelu(), Conv2d(dim_in, 3, 1, 1, 0))
        levels = int(math.log2(cfg.image_size)) - 4 + (1 if cfg.w_hpf > 0 else 0)
        decode: list[nn.Module] = []  # built outside-in, stored inside-out (the decoder mirrors the encoder)
        dim_out = dim_in
        for _ in range(levels):
            dim_out = min(dim_in * 2, cfg.max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            decode.append(AdainResBlk(dim_out, dim_in, cfg.style_dim, cfg.w_hpf, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            decode.append(AdainResBlk(dim_out, dim_out, cfg.style_dim, cfg.w_hpf))
        self.decode.extend(reversed(decode))
        self.hpf = HighPass(cfg.w_hpf) if cfg.w_hpf > 0 else None

    def forward(self, x: torch.Tensor, s: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> torch.Tensor:
        x = self.from_rgb(x)
        skips: dict[int, torch.Tensor] = {}
        for block in self.encode:
            if masks is not None and x.shape[2] in SKIP_SIZES:
                skips[x.shape[2]] = x
            x = block(x)
        for block in self.decode:
            x = block(x, s)
            size = x.shape[2]
            if masks is not None and size in SKIP_SIZES:
                if self.hpf is None:
                    raise ValueError("landmark masks need the high-pass path: model.w_hpf must be > 0")
                mask = masks[0] if size == 32 else masks[1]
                mask = F.interpolate(mask, size=size, mode="bilinear")
                x = x + self.hpf(mask * skips[size])
        return self.to_rgb(x)


def _select_domain(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row i's output of head ``y[i]``: out (N, domains, ...) -> (N, ...). A gather rather than the
    official ``out[arange(N), y]``: the same values, and a traced export keeps any batch size."""
    index = y.reshape(-1, 1, *([1] * (out.dim() - 2))).expand(-1, 1, *out.shape[2:])
    return out.gather(1, index).squeeze(1)


class MappingNetwork(nn.Module):
    """F: latent z (N, latent_dim) and domain y (N,) -> style (N, style_dim); 4 shared layers of 512,
    then 4 per-domain layers."""

    def __init__(self, cfg: Starganv2ModelConfig):
        super().__init__()
        self.cfg = cfg
        shared: list[nn.Module] = [nn.Linear(cfg.latent_dim, 512), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(512, 512), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.unshared = nn.ModuleList(
            nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512),
                          nn.ReLU(), nn.Linear(512, cfg.style_dim))
            for _ in range(cfg.num_domains))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        return _select_domain(torch.stack([head(h) for head in self.unshared], 1), y)


def _downsampling_trunk(cfg: Starganv2ModelConfig) -> tuple[list[nn.Module], int]:
    """The stem shared by E and D: conv3x3, ``log2(size) - 2`` down-sampling ResBlks to 4x4, then
    LeakyReLU, conv4x4 (to 1x1), LeakyReLU. Returns the layers and their output width."""
    dim_in = cfg.first_dim
    layers: list[nn.Module] = [Conv2d(3, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(int(math.log2(cfg.image_size)) - 2):
        dim_out = min(dim_in * 2, cfg.max_conv_dim)
        layers.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    layers += [_lrelu(), Conv2d(dim_out, dim_out, 4, 1, 0), _lrelu()]
    return layers, dim_out


class StyleEncoder(nn.Module):
    """E: image (N, 3, H, W) and domain y (N,) -> style (N, style_dim), one linear head per domain."""

    def __init__(self, cfg: Starganv2ModelConfig):
        super().__init__()
        self.cfg = cfg
        layers, width = _downsampling_trunk(cfg)
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(width, cfg.style_dim) for _ in range(cfg.num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(x).flatten(1)
        return _select_domain(torch.stack([head(h) for head in self.unshared], 1), y)


class Discriminator(nn.Module):
    """D: image and domain y (N,) -> real/fake logit (N,) of that domain's output (a multi-task head)."""

    def __init__(self, cfg: Starganv2ModelConfig):
        super().__init__()
        self.cfg = cfg
        layers, width = _downsampling_trunk(cfg)
        self.main = nn.Sequential(*layers, Conv2d(width, cfg.num_domains, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _select_domain(self.main(x).flatten(1), y)
