"""R3GAN's networks (Huang et al., NeurIPS 2024), as brownvc/R3GAN's ``R3GAN/Networks.py`` builds them.

A minimal modern ResNet with no normalization: stages of residual blocks, each an inverted bottleneck
(1x1 expand, grouped kxk, 1x1 project back; the projection starts at zero) with a biased leaky ReLU
after the first two convolutions. Weights are drawn by the variance-scaling initialization
(``MSRInitializer``: std = gain / sqrt(fan-in), gain ``sqrt(2 / (1 + 0.2**2))`` damped by
``L ** (-1 / (2 * 3 - 2))`` for ``L`` blocks in all, so that the residual sum keeps its variance).
Resolution changes by the interpolative resamplers (the ``[1, 2, 1]`` filter, widened to
``[1, 3, 3, 1]``), with a 1x1 convolution where the width changes. G starts from a learned 4x4
basis modulated by a linear map of z; D ends in a depthwise 4x4 basis and a linear map.

Class conditioning, as the official code: G concatenates a linear embedding of the one-hot class to
z; D projects its final features on a linear embedding of the class (the sum of their product).

Module names are the official ones in snake case (``MainLayers.0.Layers.1.LinearLayer2.Layer.weight``
is ``main_layers.0.layers.1.linear_layer2.layer.weight``), so an official state dict maps by a rule
(``models/r3gan/official.py``). The operators are the official code's pure-PyTorch references
(``BiasedActivationReference``, ``InterpolativeUpsamplerReference``, ...), not its CUDA plugins.

Precision per stage, as the official presets: the stages named by ``model.bf16_stages`` (G's
indices; D uses the mirror stages, at the same resolutions) run in bfloat16 when the run's precision
is bf16; the others, and every gradient penalty's input, stay in the parameters' dtype. Official
parameter counts (tested): CIFAR-10 G 20,781,952, D 21,280,512; FFHQ-64 G 22,429,824, D 22,381,440.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import ConfigError, non_negative, positive

# The leaky ReLU's slope and the gain that keeps unit variance through it (the official constants).
LEAK = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + LEAK ** 2))
LINEAR_LAYERS_PER_BLOCK = 3


@dataclass
class R3ganModelConfig:
    """Architecture (the official presets' ``WidthPerStage``, ``CardinalityPerStage``, ``BlocksPerStage``,
    ``ExpansionFactor``, ``NoiseDimension``, the embedding sizes and ``FP16Stages``); G's order, from 4x4 up."""

    image_size: int = positive(32)
    widths: list[int] = field(default_factory=lambda: [768, 768, 768, 768])
    cardinalities: list[int] = field(default_factory=lambda: [96, 96, 96, 96])
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    expansion: int = positive(2)
    kernel_size: int = positive(3)
    noise_dim: int = positive(64)
    # Classes: 0 takes the data's (unlabelled data: an unconditional model, the official c_dim=0);
    # 1 is unconditional too.
    num_classes: int = non_negative(0)
    g_embed_dim: int = non_negative(0)  # 0: noise_dim (the official ConditionEmbeddingDimension of G)
    d_embed_dim: int = non_negative(0)  # 0: widths[0] (the official ConditionEmbeddingDimension of D)
    resampling_filter: list[int] = field(default_factory=lambda: [1, 2, 1])
    # G's stages that run in bfloat16 under runtime.precision=bf16 (the official FP16Stages; D: the mirror)
    bf16_stages: list[int] = field(default_factory=lambda: [-1, -2, -3])

    @property
    def conditional(self) -> bool:
        return self.num_classes > 1

    @property
    def g_embedding(self) -> int:
        return self.g_embed_dim or self.noise_dim

    @property
    def d_embedding(self) -> int:
        return self.d_embed_dim or self.widths[0]

    def validate(self) -> None:
        """Raise ConfigError for lists of different lengths, widths cardinality cannot divide, or a size
        the stages do not make."""
        n = len(self.widths)
        for name in ("cardinalities", "blocks"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"model.{name} has {len(getattr(self, name))} entries but model.widths has {n}: "
                                  f"one per stage")
        for w, c in zip(self.widths, self.cardinalities):
            if (w * self.expansion) % c:
                raise ConfigError(f"model.cardinalities: {c} groups do not divide the {w * self.expansion} "
                                  f"expanded channels of a width-{w} stage")
        if self.image_size != 4 * 2 ** (n - 1):
            raise ConfigError(f"model.image_size={self.image_size} but {n} stages make {4 * 2 ** (n - 1)} px "
                              f"(4 px doubled per stage after the first)")
        bad = [s for s in self.bf16_stages if not -n <= s < n]
        if bad:
            raise ConfigError(f"model.bf16_stages={self.bf16_stages}: {bad} out of range for {n} stages")


def msr_init(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """Variance-scaling initialization: weights N(0, gain^2 / fan-in), a bias (if any) zero."""
    fan_in = layer.weight.data.size(1) * layer.weight.data[0][0].numel()
    layer.weight.data.normal_(0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        layer.bias.data.zero_()
    return layer


class Convolution(nn.Module):
    """A bias-free 'same' convolution whose weight is cast to the input's dtype (the stage's precision)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, groups: int = 1, gain: float = 1.0):
        super().__init__()
        self.layer = msr_init(nn.Conv2d(in_ch, out_ch, kernel_size, padding=(kernel_size - 1) // 2, groups=groups,
                                        bias=False), gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.layer.weight.to(x.dtype), padding=self.layer.padding, groups=self.layer.groups)


class BiasedActivation(nn.Module):
    """A learned per-channel bias, then a leaky ReLU (slope 0.2, no gain: the gain is in the init)."""

    gain = ACTIVATION_GAIN

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1) if x.dim() > 2 else (1, -1)
        return F.leaky_relu(x + self.bias.to(x.dtype).view(shape), LEAK)


class ResidualBlock(nn.Module):
    """x + project(act(grouped(act(expand(x))))): the inverted bottleneck with cardinality groups."""

    def __init__(self, channels: int, cardinality: int, expansion: int, kernel_size: int, variance_scaling: int):
        super().__init__()
        expanded = channels * expansion
        gain = ACTIVATION_GAIN * variance_scaling ** (-1 / (2 * LINEAR_LAYERS_PER_BLOCK - 2))
        self.linear_layer1 = Convolution(channels, expanded, 1, gain=gain)
        self.linear_layer2 = Convolution(expanded, expanded, kernel_size, groups=cardinality, gain=gain)
        self.linear_layer3 = Convolution(expanded, channels, 1, gain=0.0)  # the block starts as the identity
        self.non_linearity1 = BiasedActivation(expanded)
        self.non_linearity2 = BiasedActivation(expanded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear_layer2(self.non_linearity1(self.linear_layer1(x)))
        return x + self.linear_layer3(self.non_linearity2(y))


def lowpass_kernel(weights: list[int]) -> torch.Tensor:
    """The separable 2-D resampling kernel: ``weights`` convolved with [1, 1], outer product, sum 1."""
    row = torch.tensor(weights, dtype=torch.float64)
    row = F.conv1d(row.view(1, 1, -1), torch.ones(1, 1, 2, dtype=torch.float64), padding=1).view(-1)
    kernel = (row[:, None] * row[None, :]).to(torch.get_default_dtype())
    return kernel / kernel.sum()


def _depthwise_kernel(kernel: torch.Tensor, x: torch.Tensor, gain: float) -> torch.Tensor:
    """The kernel for every channel of ``x`` alike (a depthwise convolution: about 5x faster on a CPU than
    the official reference's batch of one-channel images, the same sums)."""
    return (gain * kernel).to(x.dtype).expand(x.shape[1], 1, *kernel.shape)


class InterpolativeUpsampler(nn.Module):
    """2x up-sampling: a transposed convolution of each channel with 4x the low-pass kernel."""

    def __init__(self, weights: list[int]):
        super().__init__()
        self.register_buffer("kernel", lowpass_kernel(weights))
        self.radius = len(weights) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = _depthwise_kernel(self.kernel, x, 4.0)
        return F.conv_transpose2d(x, k, stride=2, padding=self.radius, groups=x.shape[1])


class InterpolativeDownsampler(InterpolativeUpsampler):
    """2x down-sampling: a strided convolution of each channel with the low-pass kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, _depthwise_kernel(self.kernel, x, 1.0), stride=2, padding=self.radius, groups=x.shape[1])


class UpsampleLayer(nn.Module):
    """A 1x1 convolution where the width changes, then 2x up-sampling."""

    def __init__(self, in_ch: int, out_ch: int, weights: list[int]):
        super().__init__()
        self.resampler = InterpolativeUpsampler(weights)
        self.linear_layer = Convolution(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resampler(self.linear_layer(x) if self.linear_layer is not None else x)


class DownsampleLayer(nn.Module):
    """2x down-sampling, then a 1x1 convolution where the width changes."""

    def __init__(self, in_ch: int, out_ch: int, weights: list[int]):
        super().__init__()
        self.resampler = InterpolativeDownsampler(weights)
        self.linear_layer = Convolution(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resampler(x)
        return self.linear_layer(x) if self.linear_layer is not None else x


class GenerativeBasis(nn.Module):
    """(N, d) -> (N, C, 4, 4): a learned 4x4 basis per channel, scaled by a linear map of the input."""

    def __init__(self, in_dim: int, out_ch: int):
        super().__init__()
        self.basis = nn.Parameter(torch.empty(out_ch, 4, 4).normal_(0, 1))
        self.linear_layer = msr_init(nn.Linear(in_dim, out_ch, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis.view(1, -1, 4, 4) * self.linear_layer(x).view(x.shape[0], -1, 1, 1)


class DiscriminativeBasis(nn.Module):
    """(N, C, 4, 4) -> (N, d): a depthwise 4x4 convolution to one value per channel, then a linear map."""

    def __init__(self, in_ch: int, out_dim: int):
        super().__init__()
        self.basis = msr_init(nn.Conv2d(in_ch, in_ch, 4, groups=in_ch, bias=False))
        self.linear_layer = msr_init(nn.Linear(in_ch, out_dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(self.basis(x).view(x.shape[0], -1))


class Stage(nn.Module):
    """A transition layer and residual blocks, run in the stage's dtype (``compute_dtype``; None: the input's)."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.compute_dtype: torch.dtype | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.compute_dtype or next(self.parameters()).dtype)
        for layer in self.layers:
            x = layer(x)
        return x


def _blocks(n: int, width: int, cardinality: int, cfg: R3ganModelConfig) -> list[nn.Module]:
    return [ResidualBlock(width, cardinality, cfg.expansion, cfg.kernel_size, sum(cfg.blocks)) for _ in range(n)]


def set_reduced_precision(stages: nn.ModuleList, indices: list[int], enabled: bool) -> None:
    """Run the stages at ``indices`` in bfloat16 (``enabled``) or in the parameters' dtype."""
    chosen = {i % len(stages) for i in indices}
    for i, stage in enumerate(stages):
        stage.compute_dtype = torch.bfloat16 if enabled and i in chosen else None


class R3ganGenerator(nn.Module):
    """(z (N, noise_dim), y (N,) class indices) -> image (N, 3, S, S), unbounded (trained toward [-1, 1]).

    An unconditional model (``num_classes`` 0 or 1) ignores ``y``."""

    def __init__(self, cfg: R3ganModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w, c, b = cfg.widths, cfg.cardinalities, cfg.blocks
        first = Stage([GenerativeBasis(cfg.noise_dim + (cfg.g_embedding if cfg.conditional else 0), w[0]),
                       *_blocks(b[0], w[0], c[0], cfg)])
        self.main_layers = nn.ModuleList([first] + [
            Stage([UpsampleLayer(w[i], w[i + 1], cfg.resampling_filter), *_blocks(b[i + 1], w[i + 1], c[i + 1], cfg)])
            for i in range(len(w) - 1)])
        self.aggregation_layer = Convolution(w[-1], 3, 1)
        self.embedding_layer = (msr_init(nn.Linear(cfg.num_classes, cfg.g_embedding, bias=False))
                                if cfg.conditional else None)

    def set_reduced_precision(self, enabled: bool) -> None:
        """bfloat16 in the configured stages (``model.bf16_stages``), or none."""
        set_reduced_precision(self.main_layers, self.cfg.bf16_stages, enabled)

    def make_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z ~ N(0, I) and uniform classes (all 0 for an unconditional model), drawn on the CPU."""
        z = torch.randn(n, self.cfg.noise_dim, generator=generator)
        return z, torch.randint(max(self.cfg.num_classes, 1), (n,), generator=generator)

    def synthesize(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The images in the last stage's dtype, as the official generator returns them (bfloat16 under the
        official presets' precision): what training differentiates, R2 included."""
        if self.embedding_layer is not None:
            one_hot = F.one_hot(y, self.cfg.num_classes).to(self.embedding_layer.weight.dtype)
            z = torch.cat([z, self.embedding_layer(one_hot)], dim=1)
        for stage in self.main_layers:
            z = stage(z)
        return self.aggregation_layer(z)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The images in the parameters' dtype (what sampling, evaluation and export use)."""
        return self.synthesize(z, y).to(self.aggregation_layer.layer.weight.dtype)


class R3ganDiscriminator(nn.Module):
    """(image (N, 3, S, S), y (N,)) -> one raw score per image (N,)."""

    def __init__(self, cfg: R3ganModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w, c, b = cfg.widths[::-1], cfg.cardinalities[::-1], cfg.blocks[::-1]
        stages = [Stage([*_blocks(b[i], w[i], c[i], cfg), DownsampleLayer(w[i], w[i + 1], cfg.resampling_filter)])
                  for i in range(len(w) - 1)]
        out = cfg.d_embedding if cfg.conditional else 1
        stages.append(Stage([*_blocks(b[-1], w[-1], c[-1], cfg), DiscriminativeBasis(w[-1], out)]))
        self.extraction_layer = Convolution(3, w[0], 1)
        self.main_layers = nn.ModuleList(stages)
        self.embedding_layer = (msr_init(nn.Linear(cfg.num_classes, cfg.d_embedding, bias=False),
                                         1 / math.sqrt(cfg.d_embedding)) if cfg.conditional else None)

    def set_reduced_precision(self, enabled: bool) -> None:
        """bfloat16 in the stages mirroring G's ``model.bf16_stages`` (the same resolutions), or none."""
        n = len(self.main_layers)
        set_reduced_precision(self.main_layers, [n - 1 - (i % n) for i in self.cfg.bf16_stages], enabled)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        first = self.main_layers[0]
        x = self.extraction_layer(x.to(first.compute_dtype or self.extraction_layer.layer.weight.dtype))
        for stage in self.main_layers:
            x = stage(x)
        if self.embedding_layer is not None:
            one_hot = F.one_hot(y, self.cfg.num_classes).to(self.embedding_layer.weight.dtype)
            x = (x * self.embedding_layer(one_hot)).sum(dim=1, keepdim=True)
        return x.view(x.shape[0])
