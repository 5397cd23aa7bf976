"""Normalization layers chosen by name, and batch norm over the global batch under torchrun."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.nn.functional import all_reduce as _all_reduce

from ganforge.runtime.distributed import arrive


def differentiable_all_reduce(x: torch.Tensor) -> torch.Tensor:
    """The sum over ranks, differentiable; counted as a collective of the step (a timeout names the rank
    that never arrived)."""
    arrive()
    return _all_reduce(x)

NORM_CHOICES = ("batch", "instance", "layer", "none")


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def global_batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                      training: bool, momentum: float, eps: float) -> torch.Tensor:
    """``F.batch_norm`` without affine whose training statistics span every rank's shard of the batch.

    With one process (or in eval mode) it is ``F.batch_norm`` itself. Under torchrun it all-reduces the
    per-channel mean and variance (differentiably, so gradients flow through them too), so N processes
    with global batch B normalize like one process with batch B, and the running statistics get the
    same update. PyTorch's SyncBatchNorm does the same but refuses CPU tensors; this works with gloo.
    """
    world = _world_size()
    if not training or world == 1:
        return F.batch_norm(x, running_mean, running_var, None, None, training, momentum, eps)
    dims = (0, 2, 3)
    count = x.numel() // x.shape[1] * world
    # Two passes (mean, then centered squares) for the same precision as the local kernel.
    mean = differentiable_all_reduce(x.sum(dims)) / count
    centered = x - mean[None, :, None, None]
    var = differentiable_all_reduce(centered.square().sum(dims)) / count
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.lerp_(mean.detach().to(running_mean.dtype), momentum)
            running_var.lerp_((var.detach() * count / max(count - 1, 1)).to(running_var.dtype), momentum)
    return centered * torch.rsqrt(var + eps)[None, :, None, None]


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every rank's shard of the batch.

    With one process it is exactly ``nn.BatchNorm2d`` (same state dict, same math); under torchrun it
    normalizes with the global batch's statistics (:func:`global_batch_norm`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or _world_size() == 1:
            return super().forward(x)
        momentum = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked += 1
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        y = global_batch_norm(x, self.running_mean if self.track_running_stats else None,
                              self.running_var if self.track_running_stats else None, True,
                              momentum if momentum is not None else 0.0, self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is a 4-d tensor laid out channels_last and not also contiguous."""
    # Only strictly channels_last tensors: an ambiguous one (C == 1 or H == W == 1) is also contiguous.
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class _ChannelsLastInstanceNorm(torch.autograd.Function):
    """Instance norm of a channels_last (N, C, H, W) tensor seen as (N, H*W, C): statistics are sums over
    the middle axis, which PyTorch runs vectorized along the contiguous channels (``torch.var_mean`` over
    H and W of the same tensor is more than 10x slower on a 2-core CPU). fp32 (or fp64) inside, two passes
    for the variance. Returns the normalized tensor as (N, H*W, C) and each image's mean and biased
    variance, (N, C)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,  # type: ignore[override]
                eps: float):
        n, c, h, w = x.shape
        acc = torch.promote_types(x.dtype, torch.float32)
        xv = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view
        mean = xv.sum(1, dtype=acc) / (h * w)
        centered = xv.to(acc) - mean[:, None]
        var = centered.square().sum(1) / (h * w)  # (torch.linalg.vector_norm over dim 1 is 5x slower)
        rstd = torch.rsqrt(var + eps)
        scale = rstd if weight is None else rstd * weight.to(acc)
        y = centered.mul_(scale[:, None])
        if bias is not None:
            y = y.add_(bias.to(acc))
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.bias_dtype = bias.dtype if bias is not None else None
        ctx.mark_non_differentiable(mean, var)
        # (N, H*W, C): a view made here, inside the Function, could not be modified in place (ReLU)
        return y.to(x.dtype), mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor, _mean: torch.Tensor, _var: torch.Tensor):  # type: ignore[override]
        x, weight, mean, rstd = ctx.saved_tensors
        n, c, h, w = x.shape
        p = h * w
        xhat = (x.permute(0, 2, 3, 1).reshape(n, p, c).to(mean.dtype) - mean[:, None]).mul_(rstd[:, None])
        g = grad.to(mean.dtype)  # (N, H*W, C)
        sum_g = g.sum(1)  # (N, C): the bias gradient per image
        sum_g_xhat = (g * xhat).sum(1)  # the weight gradient per image
        scale = rstd if weight is None else rstd * weight.to(rstd.dtype)
        # d/dx of (x - mean) * rstd: g minus its mean, minus xhat times the mean of g * xhat
        gx = xhat.mul_(-sum_g_xhat[:, None] / p).add_(g).sub_(sum_g[:, None] / p).mul_(scale[:, None])
        gx = gx.to(x.dtype).view(n, h, w, c).permute(0, 3, 1, 2)
        gw = sum_g_xhat.sum(0).to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        gb = sum_g.sum(0).to(ctx.bias_dtype) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def instance_norm(x: torch.Tensor, running_mean: torch.Tensor | None = None, running_var: torch.Tensor | None = None,
                  weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """``F.instance_norm`` that keeps a channels_last input channels_last.

    PyTorch's kernel views the input as one (1, N*C, H, W) batch-norm problem, which for a
    channels_last tensor means a transposing copy in, and a layout the next convolution must copy back;
    on the CPU those copies cost more than the normalization (and bf16 convolutions run several times
    faster channels_last). For such inputs the statistics are computed here (:class:`_ChannelsLastInstanceNorm`,
    fp32, differentiable once: the networks that use it are never differentiated twice), and the running
    averages get PyTorch's update (momentum on the batch mean of per-image means and of unbiased per-image
    variances). Any other input goes to ``F.instance_norm`` unchanged.
    """
    if not is_channels_last(x):
        return F.instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
    if use_input_stats:
        n, c, h, w = x.shape
        flat, mean, var = _ChannelsLastInstanceNorm.apply(x, weight, bias, eps)
        y = flat.view(n, h, w, c).permute(0, 3, 1, 2)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.lerp_(mean.mean(0).to(running_mean.dtype), momentum)
                running_var.lerp_((var.mean(0) * (h * w / max(h * w - 1, 1))).to(running_var.dtype), momentum)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("instance_norm: use_input_stats=False needs running_mean and running_var")
    mean, var = running_mean.view(1, -1, 1, 1).float(), running_var.view(1, -1, 1, 1).float()
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.view(1, -1, 1, 1).float()
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.view(1, -1, 1, 1).float()
    return torch.addcmul(shift, x.float(), scale).to(x.dtype)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same parameters, buffers and state dict) that, once switched by
    :func:`to_channels_last`, keeps channels_last inputs channels_last (:func:`instance_norm`).

    Off by default: some layers (AdaIN's broadcast products) hand PyTorch's kernel channels_last
    tensors even in a contiguous network, and the official outputs are reproduced bit for bit only
    by that kernel.
    """

    keeps_channels_last = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.keeps_channels_last and is_channels_last(x)):
            return super().forward(x)
        return instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             self.training or not self.track_running_stats,
                             self.momentum if self.momentum is not None else 0.0, self.eps)


def to_channels_last(module: nn.Module) -> nn.Module:
    """``module`` in channels_last memory format, its instance norms keeping that layout."""
    for m in module.modules():
        if isinstance(m, InstanceNorm2d):
            m.keeps_channels_last = True
    return module.to(memory_format=torch.channels_last)


class LayerNorm2d(nn.GroupNorm):
    """Layer norm over (C, H, W) of each sample with a per-channel affine: the WGAN-GP critic's norm."""

    def __init__(self, channels: int):
        super().__init__(1, channels)


def make_norm2d(kind: str, channels: int) -> nn.Module:
    """``batch`` (global-batch aware), ``instance``, ``layer`` or ``none`` for ``channels`` features."""
    if kind == "batch":
        return CrossRankBatchNorm2d(channels)
    if kind == "instance":
        return InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return LayerNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm '{kind}' is not one of {', '.join(NORM_CHOICES)}")


__all__ = ["CrossRankBatchNorm2d", "global_batch_norm", "instance_norm", "InstanceNorm2d", "LayerNorm2d",
           "to_channels_last", "make_norm2d", "NORM_CHOICES", "F"]


class _EvalBatchStats:
    """Mixin for ``nn.BatchNorm*d``: with ``eval_batch_stats`` set, eval mode normalizes by the batch's
    own statistics and leaves the running averages untouched."""

    eval_batch_stats: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.eval_batch_stats:  # type: ignore[attr-defined]
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)  # type: ignore[attr-defined]
        return super().forward(x)  # type: ignore[misc]


class EvalBatchNorm1d(_EvalBatchStats, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` (same state dict) that can keep using batch statistics in eval mode.

    Research code that never calls ``eval()`` (StoryGAN's test loop) samples with batch statistics;
    ``eval_batch_stats=True`` reproduces that without updating the running averages while sampling.
    """

    def __init__(self, num_features: int, eval_batch_stats: bool = False):
        super().__init__(num_features)
        self.eval_batch_stats = eval_batch_stats


class EvalBatchNorm2d(_EvalBatchStats, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` counterpart of :class:`EvalBatchNorm1d`."""

    def __init__(self, num_features: int, eval_batch_stats: bool = False):
        super().__init__(num_features)
        self.eval_batch_stats = eval_batch_stats
