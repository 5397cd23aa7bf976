"""``Conv2d``: ``nn.Conv2d`` that runs its small-output convolutions as one matrix product on the CPU.

A discriminator's last convolutions have many channels and few output positions: StarGAN's
1024 -> 2048 layer has 2 x 2 outputs, the WGAN-GP and StoryGAN critics' last layers 4 x 4. On the CPU,
PyTorch 2.14's oneDNN kernels run these far below the matrix-product peak (bf16, 2 cores of a Zen 5:
StarGAN's layer reaches 149 GFLOP/s forward and 31 GFLOP/s for its weight gradient, against about 900 for
a large ``torch.mm``). The same convolution written as im2col columns times the weight matrix runs
at matrix-product speed: the forward and both gradients are single GEMMs, and the columns are a cheap
gather because few windows exist.

The columns are built in (kernel row, kernel column, channel) order from a channels-last view of the
input, so a channels_last weight is already the matrix the product needs. ``Im2Col`` and ``Col2Im``
are each other's adjoint, so the gradient of the gradient (WGAN-GP's penalty, R1) is exact too.

The choice is made on every call: only on the CPU, for outputs of at most ``matmul_max_positions``
positions per image (``runtime.conv_matmul_positions`` sets it on a run's networks; 0 turns it off),
never while tracing, scripting, exporting or compiling, so exported graphs hold plain convolutions.
State dicts are those of ``nn.Conv2d``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import Iterator

import torch
import torch.nn as nn

from ganforge.config import CONV_MATMUL_MAX_POSITIONS as DEFAULT_MATMUL_MAX_POSITIONS
from ganforge.layers.norm import is_channels_last

Padding = tuple[int, int, int, int]  # top, bottom, left, right


def _output_size(size: int, kernel: int, stride: int, before: int, after: int) -> int:
    return (size + before + after - kernel) // stride + 1


def _output_hw(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], padding: Padding) -> tuple[int, int]:
    return (_output_size(h, kernel[0], stride[0], padding[0], padding[1]),
            _output_size(w, kernel[1], stride[1], padding[2], padding[3]))


def _windows(padded: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
             out_hw: tuple[int, int]) -> torch.Tensor:
    """(N, Ho, Wo, kh, kw, C) view of every window of a contiguous (N, H, W, C) tensor."""
    sn, sh, sw, sc = padded.stride()
    n, c = padded.shape[0], padded.shape[3]
    return padded.as_strided((n, *out_hw, *kernel, c), (sn, stride[0] * sh, stride[1] * sw, sh, sw, sc))


class _Im2Col(torch.autograd.Function):
    """(N, H, W, C) -> (N * Ho * Wo, kh * kw * C) columns of the zero-padded input."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],  # type: ignore[override]
                padding: Padding) -> torch.Tensor:
        n, h, w, c = x.shape
        top, bottom, left, right = padding
        out_hw = _output_hw(h, w, kernel, stride, padding)
        ctx.geometry = (tuple(x.shape), kernel, stride, padding)
        if any(padding):
            padded = x.new_zeros(n, h + top + bottom, w + left + right, c)
            padded[:, top:top + h, left:left + w] = x
        else:
            padded = x.contiguous()
        return _windows(padded, kernel, stride, out_hw).reshape(n * out_hw[0] * out_hw[1], kernel[0] * kernel[1] * c)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        shape, kernel, stride, padding = ctx.geometry
        return _Col2Im.apply(grad, shape, kernel, stride, padding), None, None, None


class _Col2Im(torch.autograd.Function):
    """The adjoint of :class:`_Im2Col`: adds every column entry back onto its input position."""

    @staticmethod
    def forward(ctx, cols: torch.Tensor, shape: tuple[int, int, int, int],  # type: ignore[override]
                kernel: tuple[int, int], stride: tuple[int, int], padding: Padding) -> torch.Tensor:
        n, h, w, c = shape
        top, bottom, left, right = padding
        ho, wo = _output_hw(h, w, kernel, stride, padding)
        ctx.geometry = (kernel, stride, padding)
        windows = cols.reshape(n, ho, wo, kernel[0], kernel[1], c)
        # Overlapping windows add up to kh * kw / (sh * sw) terms per pixel: summed in fp32 at least,
        # rounded once, as oneDNN's own backward does.
        acc_dtype = torch.promote_types(cols.dtype, torch.float32)
        acc = torch.zeros(n, h + top + bottom, w + left + right, c, dtype=acc_dtype, device=cols.device)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                # add_ on the view: ``acc[...] += x`` would also copy the sum back through __setitem__
                acc[:, i:i + stride[0] * (ho - 1) + 1:stride[0], j:j + stride[1] * (wo - 1) + 1:stride[1]].add_(
                    windows[:, :, :, i, j])
        return acc[:, top:top + h, left:left + w].to(cols.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        kernel, stride, padding = ctx.geometry
        return _Im2Col.apply(grad, kernel, stride, padding), None, None, None, None


def autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype CPU autocast would compute a convolution of ``x`` in, or None outside autocast."""
    if torch.is_autocast_enabled("cpu") and x.is_floating_point() and x.dtype != torch.float64:  # autocast's rule
        return torch.get_autocast_dtype("cpu")
    return None


def weight_matrix(weight: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A convolution weight (out, C, kh, kw) as the (out, kh * kw * C) matrix the columns multiply, in
    ``dtype`` (default: its own); a view of a channels_last weight, a copy of a contiguous one."""
    if dtype is not None:
        weight = weight.to(dtype)  # keeps the memory format
    c_out, c_in, kh, kw = weight.shape
    return weight.permute(0, 2, 3, 1).reshape(c_out, kh * kw * c_in)


def conv2d_as_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     stride: tuple[int, int], padding: Padding, matrix: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv2d`` (groups 1, dilation 1, zero padding ``(top, bottom, left, right)``) as im2col
    columns times the weight matrix; differentiable twice. Under CPU autocast it computes in the
    autocast dtype, as ``F.conv2d`` would. ``matrix``: ``weight_matrix(weight, that dtype)`` if the
    caller has it already."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho, wo = _output_hw(h, w, (kh, kw), stride, padding)
    dtype = autocast_dtype(x)
    if dtype is not None:
        x = x.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
    if matrix is None:
        matrix = weight_matrix(weight, dtype)
    cols = _Im2Col.apply(x.permute(0, 2, 3, 1), (kh, kw), tuple(stride), padding)
    out = cols @ matrix.t()
    if bias is not None:
        out = out + bias
    out = out.view(n, ho, wo, c_out).permute(0, 3, 1, 2)
    return out if is_channels_last(x) else out.contiguous()


class _MatrixCache:
    """A layer's last weight matrix and what it was made from. Copies and pickles of the layer start
    empty: the matrix is a non-leaf tensor (deepcopy refuses those) and is cheap to make again."""

    __slots__ = ("key", "matrix")

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.matrix: torch.Tensor | None = None

    def __reduce__(self):
        return _MatrixCache, ()


_reuse = threading.local()
_generations = itertools.count()


@contextlib.contextmanager
def reuse_weight_matrices() -> Iterator[None]:
    """Within this block every :class:`Conv2d` on the matrix path makes its weight matrix once and
    reuses it, graph node included, as autocast reuses its weight casts within one autocast block. The
    caller promises that no parameter changes inside it: the trainer wraps one update's forward and
    backward passes, where a discriminator runs on real, fake and interpolated images (StarGAN's 2048 x
    1024 x 4 x 4 weight takes 34 ms to cast on 2 cores). (A parameter's version counter cannot tell:
    fused Adam updates in place without bumping it.)"""
    previous = getattr(_reuse, "generation", None)
    _reuse.generation = next(_generations)
    try:
        yield
    finally:
        _reuse.generation = previous


def _tracing() -> bool:
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_exporting() or torch.compiler.is_compiling())


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same arguments, parameters and state dict) that computes small-output
    convolutions on the CPU with :func:`conv2d_as_matmul` (see the module docstring)."""

    matmul_max_positions: int = DEFAULT_MATMUL_MAX_POSITIONS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._matrix_cache = _MatrixCache()

    def matmul_padding(self, x: torch.Tensor, padding: Padding | None = None) -> Padding | None:
        """The (top, bottom, left, right) padding to run ``x`` as a matrix product with, or None when
        this call should use PyTorch's convolution. ``padding`` overrides the layer's own."""
        if (self.matmul_max_positions <= 0 or x.device.type != "cpu" or x.dim() != 4 or self.groups != 1
                or self.dilation != (1, 1) or self.padding_mode != "zeros" or _tracing()):
            return None
        if padding is None:
            if isinstance(self.padding, str):  # 'same' / 'valid': left to PyTorch
                return None
            padding = (self.padding[0], self.padding[0], self.padding[1], self.padding[1])
        ho, wo = _output_hw(x.shape[-2], x.shape[-1], self.kernel_size, self.stride, padding)
        if ho * wo > self.matmul_max_positions:
            return None
        return padding

    def matmul_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       padding: Padding) -> torch.Tensor:
        """:func:`conv2d_as_matmul`; inside :func:`reuse_weight_matrices` the weight matrix (a cast, and
        for a contiguous weight a transposing copy) is made once per block instead of once per call."""
        generation = getattr(_reuse, "generation", None)
        if generation is None or not isinstance(weight, nn.Parameter):  # a parametrized weight is new per call
            return conv2d_as_matmul(x, weight, bias, self.stride, padding)
        dtype = autocast_dtype(x)
        key = (generation, dtype, torch.is_grad_enabled() and weight.requires_grad, torch.is_inference_mode_enabled())
        cache = self._matrix_cache
        if cache.key != key:
            cache.key, cache.matrix = key, weight_matrix(weight, dtype)
        return conv2d_as_matmul(x, weight, bias, self.stride, padding, cache.matrix)

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        padding = self.matmul_padding(input)
        if padding is not None:
            return self.matmul_forward(input, weight, bias, padding)
        return super()._conv_forward(input, weight, bias)


def set_matmul_max_positions(module: nn.Module, positions: int) -> nn.Module:
    """Set ``matmul_max_positions`` on every :class:`Conv2d` of ``module`` (0: PyTorch's convolution always)."""
    for m in module.modules():
        if isinstance(m, Conv2d):
            m.matmul_max_positions = positions
    return module


__all__ = ["Conv2d", "conv2d_as_matmul", "weight_matrix", "autocast_dtype", "reuse_weight_matrices",
           "set_matmul_max_positions", "DEFAULT_MATMUL_MAX_POSITIONS"]
