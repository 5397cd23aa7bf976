"""BigGAN's generator and projection discriminator (Brock et al., ICLR 2019), as BigGAN-PyTorch.

Everything that decides the parameter count and the output follows the official ``BigGAN.py``:
the architecture tables per resolution (32, 64, 128, 256) scaled by ``ch``, self-attention at the
listed resolutions, the shared class embedding, hierarchical latents (z split into one chunk for the
first linear layer and one per block, each concatenated to the class embedding), class-conditional
batch norm with gain ``1 + linear(y)``, residual blocks with learnable 1x1 shortcuts, spectral norm
everywhere but the embeddings of G, and the projection discriminator with global sum pooling.

Module and buffer names are the official ones, so an official ``G.pth``/``G_ema.pth``/``D.pth``
loads with :mod:`ganforge.models.biggan.official` (which only renames the optional ``--mybn`` or
``--cross_replica`` buffers). Batch norm statistics span the global batch under torchrun (the
"cross-replica" BN of the paper); with one process it is ``F.batch_norm``.

Parameter counts (tested): CIFAR script G 4,304,387 / D 4,207,361; ImageNet 128 ch 96 (hier, shared
128, z 120) G 70,433,988 / D 87,982,370; ch 64: G 31,978,628 / D 39,448,258.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import bounded, non_negative, positive
from ganforge.layers.attention import SelfAttention
from ganforge.layers.conditional_norm import BatchNorm2d, ConditionalBatchNorm2d
from ganforge.layers.spectral import SNConv2d, SNEmbedding, SNLinear

RESOLUTIONS = (32, 64, 128, 256)


@dataclass
class BigganModelConfig:
    """Architecture, named after BigGAN-PyTorch's flags (defaults: the official parser's)."""

    image_size: Literal[32, 64, 128, 256] = 128  # --resolution (from the dataset)
    num_classes: int = non_negative(1000)  # n_classes (0: from the data, at the start of training)
    g_ch: int = positive(64)  # --G_ch
    d_ch: int = positive(64)  # --D_ch
    dim_z: int = positive(128)  # --dim_z (with hier: rounded down to a multiple of the blocks + 1)
    g_shared: bool = False  # --G_shared: one class embedding feeds every ccbn through linear layers
    shared_dim: int = non_negative(0)  # --shared_dim (0: dim_z)
    hier: bool = False  # --hier: z split across the first linear layer and every block
    g_attention: list[int] = field(default_factory=lambda: [64])  # --G_attn 64 (empty: none, the official '0')
    d_attention: list[int] = field(default_factory=lambda: [64])  # --D_attn
    d_wide: bool = True  # --D_thin switches it off (SN-GAN's D)
    g_param: Literal["SN", "none"] = "SN"  # --G_param: spectral norm in G or plain layers
    num_svs: int = positive(1)  # --num_G_SVs / --num_D_SVs: singular values tracked per layer
    num_sv_itrs: int = positive(1)  # --num_G_SV_itrs / --num_D_SV_itrs: power iterations per forward
    sn_eps: float = positive(1e-8)  # --SN_eps
    bn_eps: float = positive(1e-5)  # --BN_eps
    bn_momentum: float = bounded(0.1, gt=0.0, le=1.0)
    # How G normalizes when sampling (eval mode): "stored" running statistics (--G_eval_mode, the
    # ImageNet scripts) or the sampled batch's own statistics (the official default, G left in
    # train mode; here without updating the stored statistics).
    eval_bn: Literal["stored", "batch"] = "batch"
    g_init: Literal["ortho", "N02", "glorot", "xavier"] = "ortho"  # --G_init
    d_init: Literal["ortho", "N02", "glorot", "xavier"] = "ortho"  # --D_init
    bottom_width: int = positive(4)

    @property
    def embedding_dim(self) -> int:
        return self.shared_dim if self.shared_dim > 0 else self.dim_z


def generator_arch(ch: int, attention: list[int], resolution: int) -> dict[str, list]:
    """BigGAN-PyTorch's ``G_arch`` for one resolution: per-block channels, resolutions, attention."""
    widths = {256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1]), 128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
              64: ([16, 16, 8, 4], [16, 8, 4, 2]), 32: ([4, 4, 4], [4, 4, 4])}[resolution]
    sizes = [8 * 2 ** i for i in range(len(widths[0]))]
    return {"in_channels": [ch * w for w in widths[0]], "out_channels": [ch * w for w in widths[1]],
            "resolution": sizes, "attention": [s in attention for s in sizes]}


def discriminator_arch(ch: int, attention: list[int], resolution: int) -> dict[str, list]:
    """BigGAN-PyTorch's ``D_arch``: per-block channels, downsampling, resolution after the block, attention."""
    table = {256: ([1, 2, 4, 8, 8, 16], [1, 2, 4, 8, 8, 16, 16], [True] * 6 + [False], [128, 64, 32, 16, 8, 4, 4]),
             128: ([1, 2, 4, 8, 16], [1, 2, 4, 8, 16, 16], [True] * 5 + [False], [64, 32, 16, 8, 4, 4]),
             64: ([1, 2, 4, 8], [1, 2, 4, 8, 16], [True] * 4 + [False], [32, 16, 8, 4, 4]),
             32: ([4, 4, 4], [4, 4, 4, 4], [True, True, False, False], [16, 16, 16, 16])}[resolution]
    ins, outs, down, sizes = table
    return {"in_channels": [3] + [ch * w for w in ins], "out_channels": [ch * w for w in outs],
            "downsample": down, "resolution": sizes, "attention": [s in attention for s in sizes]}


def initialize(module: nn.Module, style: str) -> None:
    """Official ``init_weights``: every Conv2d/Linear/Embedding weight ortho, N(0, 0.02) or Xavier."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            if style == "ortho":
                nn.init.orthogonal_(m.weight)
            elif style == "N02":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:  # glorot / xavier
                nn.init.xavier_uniform_(m.weight)


# ----------------------------------------------------------------------------------------------
# residual blocks


class GBlock(nn.Module):
    """BN-ReLU-(upsample)-conv3-BN-ReLU-conv3 plus a (1x1 conv when the shape changes) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, make_conv: Callable[..., nn.Module],
                 make_bn: Callable[[int], nn.Module], upsample: bool):
        super().__init__()
        self.upsample = upsample
        self.conv1 = make_conv(in_channels, out_channels)
        self.conv2 = make_conv(out_channels, out_channels)
        self.learnable_sc = in_channels != out_channels or upsample
        if self.learnable_sc:
            self.conv_sc = make_conv(in_channels, out_channels, kernel_size=1, padding=0)
        self.bn1 = make_bn(in_channels)
        self.bn2 = make_bn(out_channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x, y))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2)
            x = F.interpolate(x, scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + (self.conv_sc(x) if self.learnable_sc else x)


class DBlock(nn.Module):
    """(ReLU)-conv3-ReLU-conv3-(avgpool) plus a shortcut; the first block has no pre-activation and
    pools before its 1x1 shortcut conv, the others convolve first (the official order)."""

    def __init__(self, in_channels: int, out_channels: int, make_conv: Callable[..., nn.Module], wide: bool,
                 preactivation: bool, downsample: bool):
        super().__init__()
        hidden = out_channels if wide else in_channels
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = make_conv(in_channels, hidden)
        self.conv2 = make_conv(hidden, out_channels)
        self.learnable_sc = in_channels != out_channels or downsample
        if self.learnable_sc:
            self.conv_sc = make_conv(in_channels, out_channels, kernel_size=1, padding=0)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.preactivation:
            x = self.conv_sc(x) if self.learnable_sc else x
            return F.avg_pool2d(x, 2) if self.downsample else x
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Out-of-place: the shortcut needs the un-activated input.
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


class _Identity(nn.Module):
    """``shared`` without a shared embedding: class indices pass through to the ccbn embeddings."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y


def _sn_partials(cfg: BigganModelConfig, spectral: bool) -> tuple[Callable[..., nn.Module], Callable[..., nn.Module]]:
    if spectral:
        sn = {"num_svs": cfg.num_svs, "num_itrs": cfg.num_sv_itrs, "eps": cfg.sn_eps}
        return functools.partial(SNConv2d, kernel_size=3, padding=1, **sn), functools.partial(SNLinear, **sn)
    return functools.partial(nn.Conv2d, kernel_size=3, padding=1), nn.Linear


# ----------------------------------------------------------------------------------------------
# networks


class BigganGenerator(nn.Module):
    """(z (N, dim_z), y (N,) class indices) -> image (N, 3, S, S) in [-1, 1].

    ``forward_embedded(z, e)`` takes the class embedding ``e = embed(y)`` instead (the official
    ``forward``), which is what interpolating between classes needs.
    """

    def __init__(self, cfg: BigganModelConfig):
        super().__init__()
        self.cfg = cfg
        arch = generator_arch(cfg.g_ch, cfg.g_attention, cfg.image_size)
        self.num_slots = len(arch["in_channels"]) + 1 if cfg.hier else 1
        self.z_chunk_size = cfg.dim_z // self.num_slots if cfg.hier else 0
        self.dim_z = self.z_chunk_size * self.num_slots if cfg.hier else cfg.dim_z
        make_conv, make_linear = _sn_partials(cfg, cfg.g_param == "SN")
        if cfg.g_shared:
            bn_linear: Callable[[int, int], nn.Module] = functools.partial(make_linear, bias=False)
            cond_size = cfg.embedding_dim + self.z_chunk_size
        else:  # SN is never applied to G's embeddings (the official comment: it cripples G)
            bn_linear, cond_size = nn.Embedding, cfg.num_classes
        batch_stats = cfg.eval_bn == "batch"
        make_bn = functools.partial(ConditionalBatchNorm2d, cond_size=cond_size, make_linear=bn_linear,
                                    eps=cfg.bn_eps, momentum=cfg.bn_momentum, eval_batch_stats=batch_stats)
        self.shared = nn.Embedding(cfg.num_classes, cfg.embedding_dim) if cfg.g_shared else _Identity()
        self.linear = make_linear(self.dim_z // self.num_slots, arch["in_channels"][0] * cfg.bottom_width ** 2)
        blocks = []
        for i, (cin, cout) in enumerate(zip(arch["in_channels"], arch["out_channels"])):
            block: list[nn.Module] = [GBlock(cin, cout, make_conv, make_bn, upsample=True)]
            if arch["attention"][i]:
                block.append(SelfAttention(cout, make_conv))
            blocks.append(nn.ModuleList(block))
        self.blocks = nn.ModuleList(blocks)
        last = arch["out_channels"][-1]
        self.output_layer = nn.Sequential(BatchNorm2d(last, cfg.bn_eps, cfg.bn_momentum, batch_stats), nn.ReLU(),
                                          make_conv(last, 3))
        initialize(self, cfg.g_init)

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        """Class indices (N,) -> what the blocks condition on (the shared embedding, or y itself)."""
        return self.shared(y)

    def make_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z ~ N(0, I) and classes uniform over ``num_classes``, drawn on the CPU."""
        z = torch.randn(n, self.dim_z, generator=generator)
        return z, torch.randint(self.cfg.num_classes, (n,), generator=generator)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(z, self.embed(y))

    def forward_embedded(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.cfg.hier:
            chunks = torch.split(z, self.z_chunk_size, 1)
            z, conds = chunks[0], [torch.cat([y, c], 1) for c in chunks[1:]]
        else:
            conds = [y] * len(self.blocks)
        h = self.linear(z).reshape(z.shape[0], -1, self.cfg.bottom_width, self.cfg.bottom_width)
        for blocklist, cond in zip(self.blocks, conds):
            for block in blocklist:
                h = block(h, cond)
        return torch.tanh(self.output_layer(h))


class BigganDiscriminator(nn.Module):
    """(image (N, 3, S, S), y (N,)) -> projection score (N,): linear(h) + <embed(y), h>, h summed over space."""

    def __init__(self, cfg: BigganModelConfig):
        super().__init__()
        self.cfg = cfg
        arch = discriminator_arch(cfg.d_ch, cfg.d_attention, cfg.image_size)
        make_conv, make_linear = _sn_partials(cfg, True)  # the official D is always spectrally normalized
        blocks = []
        for i, (cin, cout) in enumerate(zip(arch["in_channels"], arch["out_channels"])):
            block: list[nn.Module] = [DBlock(cin, cout, make_conv, cfg.d_wide, preactivation=i > 0,
                                             downsample=arch["downsample"][i])]
            if arch["attention"][i]:
                block.append(SelfAttention(cout, make_conv))
            blocks.append(nn.ModuleList(block))
        self.blocks = nn.ModuleList(blocks)
        last = arch["out_channels"][-1]
        self.linear = make_linear(last, 1)
        self.embed = SNEmbedding(cfg.num_classes, last, num_svs=cfg.num_svs, num_itrs=cfg.num_sv_itrs, eps=cfg.sn_eps)
        initialize(self, cfg.d_init)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x
        for blocklist in self.blocks:
            for block in blocklist:
                h = block(h)
        h = torch.sum(F.relu(h), [2, 3])
        out = self.linear(h) + torch.sum(self.embed(y) * h, 1, keepdim=True)
        return out.reshape(x.shape[0])
