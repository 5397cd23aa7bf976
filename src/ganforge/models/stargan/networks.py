"""StarGAN's generator and discriminator (Choi et al., CVPR 2018), as in yunjey/stargan's model.py.

Module names and parameter order follow the official code (``main.<i>``, ``conv1``, ``conv2``), so an
official ``{iter}-G.ckpt`` / ``{iter}-D.ckpt`` state dict loads without renaming. At the defaults
(128 px, c_dim 5, 64 filters, 6 residual blocks, 6 strided D convs) G has 8,430,528 parameters and D
44,762,048, the official numbers.

Instance norm is ``affine=True, track_running_stats=True`` as in the official code: in ``train()``
mode it normalizes by each image's statistics and updates running averages; in ``eval()`` mode it
normalizes by those running averages. The official test loop never calls ``eval()``, so its
translations use per-image statistics; ``instance_norm: batch_stats`` (the default) does the same
in every mode, ``running_stats`` gives PyTorch's usual eval behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import positive
from ganforge.layers.conv import Conv2d
from ganforge.layers.norm import InstanceNorm2d, instance_norm


@dataclass
class StarganModelConfig:
    """Architecture; these typed arguments are also the exported generator's config.json.

    ``c_dim`` is the length of the label vector the generator is conditioned on: the number of
    selected attributes (CelebA), of classes (RaFD), or c_dim + c2_dim + 2 with the mask vector
    (joint training), which the recipe computes from the data.
    """

    image_size: int = positive(128)
    c_dim: int = positive(5)  # conditioning length of G (with the mask vector when training on both)
    cls_dim: int = positive(5)  # outputs of D's classification head
    g_conv_dim: int = positive(64)
    d_conv_dim: int = positive(64)
    g_repeat_num: int = positive(6)  # residual blocks in G
    d_repeat_num: int = positive(6)  # stride-2 convolutions in D
    instance_norm: Literal["batch_stats", "running_stats"] = "batch_stats"
    # What the label entries mean, for `ganforge translate` and exported models. Filled from the data
    # when empty (celeba: data.selected_attrs; shapes attributes view; rafd: class folder names at
    # train time); c_dim and cls_dim then follow their number.
    label_kind: Literal["attributes", "classes", "joint"] = "attributes"
    labels: list[str] = field(default_factory=list)
    exclusive: list[str] = field(default_factory=list)  # at most one set (CelebA's hair colors)
    joint_split: int = 0  # joint: labels[:joint_split] are CelebA attributes, the rest RaFD classes


class StatsInstanceNorm2d(InstanceNorm2d):
    """The official ``InstanceNorm2d(affine=True, track_running_stats=True)``; with ``always_batch_stats``
    it keeps using each image's own statistics in eval mode, as the official test code effectively does."""

    def __init__(self, channels: int, always_batch_stats: bool):
        super().__init__(channels, affine=True, track_running_stats=True)
        self.always_batch_stats = always_batch_stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.always_batch_stats:
            return super().forward(x)
        # Per-image statistics without touching the running averages.
        norm = instance_norm if self.keeps_channels_last else F.instance_norm
        return norm(x, None, None, self.weight, self.bias, use_input_stats=True, eps=self.eps)


class ResidualBlock(nn.Module):
    """conv3x3 - IN - ReLU - conv3x3 - IN, plus the identity."""

    def __init__(self, dim: int, batch_stats: bool):
        super().__init__()
        self.main = nn.Sequential(
            Conv2d(dim, dim, 3, 1, 1, bias=False), StatsInstanceNorm2d(dim, batch_stats), nn.ReLU(inplace=True),
            Conv2d(dim, dim, 3, 1, 1, bias=False), StatsInstanceNorm2d(dim, batch_stats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class StarganGenerator(nn.Module):
    """(image (N, 3, S, S) in [-1, 1], labels (N, c_dim) float) -> translated image (N, 3, S, S)."""

    needs_input_image = True  # `ganforge sample` points to `translate` instead of feeding it noise

    def __init__(self, cfg: StarganModelConfig):
        super().__init__()
        self.cfg = cfg
        bs = cfg.instance_norm == "batch_stats"
        dim = cfg.g_conv_dim
        layers: list[nn.Module] = [Conv2d(3 + cfg.c_dim, dim, 7, 1, 3, bias=False),
                                   StatsInstanceNorm2d(dim, bs), nn.ReLU(inplace=True)]
        for _ in range(2):  # down-sampling: S -> S/4, width x4
            layers += [Conv2d(dim, dim * 2, 4, 2, 1, bias=False), StatsInstanceNorm2d(dim * 2, bs),
                       nn.ReLU(inplace=True)]
            dim *= 2
        layers += [ResidualBlock(dim, bs) for _ in range(cfg.g_repeat_num)]
        for _ in range(2):  # up-sampling back to S
            layers += [nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False), StatsInstanceNorm2d(dim // 2, bs),
                       nn.ReLU(inplace=True)]
            dim //= 2
        layers += [Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def make_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Example inputs for export and shape checks: uniform images in [-1, 1] and random 0/1 labels."""
        s = self.cfg.image_size
        images = torch.rand(n, 3, s, s, generator=generator) * 2 - 1
        labels = torch.randint(0, 2, (n, self.cfg.c_dim), generator=generator).float()
        return images, labels

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # The label is tiled over the image and concatenated as extra channels.
        c = c.to(x.dtype).reshape(c.shape[0], c.shape[1], 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, c], dim=1))


class StarganDiscriminator(nn.Module):
    """image (N, 3, S, S) -> (PatchGAN real/fake map (N, 1, S/2^r, S/2^r), class logits (N, cls_dim))."""

    def __init__(self, cfg: StarganModelConfig):
        super().__init__()
        if cfg.image_size % (2 ** cfg.d_repeat_num):
            raise ValueError(f"model.image_size={cfg.image_size} must be divisible by 2^d_repeat_num = "
                             f"{2 ** cfg.d_repeat_num}")
        layers: list[nn.Module] = [Conv2d(3, cfg.d_conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        dim = cfg.d_conv_dim
        for _ in range(1, cfg.d_repeat_num):
            layers += [Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        kernel = cfg.image_size // 2 ** cfg.d_repeat_num
        self.conv1 = Conv2d(dim, 1, 3, 1, 1, bias=False)  # real/fake per patch
        self.conv2 = Conv2d(dim, cfg.cls_dim, kernel, bias=False)  # attribute/class logits

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).reshape(x.shape[0], -1)
