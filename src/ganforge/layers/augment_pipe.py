"""StyleGAN2-ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data"), differentiable and seeded: the pipeline R3GAN's official presets train with.

Every image D sees goes through it with an overall probability ``p`` (scheduled by the family), each
operation applied per image with probability ``multiplier * p``. Implemented: the pixel blits (x-flip,
90-degree rotations, integer translation), the general geometric transforms (isotropic scaling,
arbitrary rotation before and after anisotropic scaling, fractional translation), the colour
transforms (brightness, contrast, luma flip, hue rotation, saturation) and cutout, with the
official defaults of their strengths. Not implemented: image-space filtering and additive noise
(``imgfilter``, ``noise``), which no R3GAN or ADA default preset enables.

As the official pipeline: geometric transforms are composed into one inverse matrix per image and
executed once, on a reflect-padded image up-sampled 2x with the ``sym6`` wavelet low-pass, by bilinear
sampling, then down-sampled back; colour transforms are one 4x4 matrix per image. The draws happen
in the official order, all of them whatever ``p`` is, so a generator with the official seed gives
the official augmentations. Bilinear sampling is written with gathers rather than
``F.grid_sample``, whose backward cannot be differentiated again (R1 differentiates through it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The sym6 wavelet's low-pass (PyWavelets' values, as the official pipeline lists them).
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
        0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
        0.0017677118642428036, -0.007800708325034148]


@dataclass(frozen=True)
class AugmentSettings:
    """Probability multipliers (0: off) and strengths; defaults: the official pipeline's."""

    xflip: float = 0.0
    rotate90: float = 0.0
    xint: float = 0.0
    xint_max: float = 0.125
    scale: float = 0.0
    rotate: float = 0.0
    aniso: float = 0.0
    xfrac: float = 0.0
    scale_std: float = 0.2
    rotate_max: float = 1.0
    aniso_std: float = 0.2
    xfrac_std: float = 0.125
    brightness: float = 0.0
    contrast: float = 0.0
    lumaflip: float = 0.0
    hue: float = 0.0
    saturation: float = 0.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5
    hue_max: float = 1.0
    saturation_std: float = 1.0
    cutout: float = 0.0
    cutout_size: float = 0.5

    @property
    def geometric(self) -> bool:
        return any((self.xflip, self.rotate90, self.xint, self.scale, self.rotate, self.aniso, self.xfrac))


# R3GAN's train.py with --aug=1 (StyleGAN2-ADA's 'bgc' plus cutout; colour at half strength).
R3GAN_AUGMENT = AugmentSettings(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=0.5,
                                contrast=0.5, lumaflip=0.5, hue=0.5, saturation=0.5, cutout=1)


def _matrix(rows: list[list], like: torch.Tensor) -> torch.Tensor:
    """A batch of matrices (shape ``like.shape + (rows, cols)``) from entries that are numbers or tensors
    shaped like ``like``."""
    entries = [e if isinstance(e, torch.Tensor) else torch.full_like(like, float(e)) for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(like.shape + (len(rows), -1))


def translate2d(tx, ty, like: torch.Tensor) -> torch.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like)


def scale2d(sx, sy, like: torch.Tensor) -> torch.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like)


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    return _matrix([[torch.cos(theta), torch.sin(-theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]],
                   theta)


def translate3d(t: torch.Tensor) -> torch.Tensor:
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def scale3d(s: torch.Tensor) -> torch.Tensor:
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def rotate3d(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by ``theta`` about the unit axis ``v`` (Rodrigues), one matrix per angle."""
    vx, vy, vz = v[0], v[1], v[2]
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _matrix([[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
                    [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
                    [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
                    [0, 0, 0, 1]], theta)


def _fir(x: torch.Tensor, taps: torch.Tensor, pads: tuple[int, int, int, int], step: int, flip: bool,
         up: int = 1) -> torch.Tensor:
    """Separable FIR filtering of every channel: optional zero-insertion up-sampling, padding (negative
    crops), the 1-D ``taps`` along W then H (flipped: a convolution; else a correlation), then keeping
    every ``step``-th pixel."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pads
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0), max(-x0, 0):x.shape[3] - max(-x1, 0)]
    f = (taps.flip(0) if flip else taps).to(x.dtype)
    weight = f.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    x = F.conv2d(x, weight, groups=c)
    x = F.conv2d(x, weight.transpose(2, 3), groups=c)
    return x[:, :, ::step, ::step]


def sample_bilinear(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(x, grid, 'bilinear', 'zeros', align_corners=False)`` by gathers: differentiable twice
    with respect to ``x`` (the grid is not differentiated)."""
    n, c, h, w = x.shape
    gx = ((grid[..., 0] + 1) * w - 1) / 2
    gy = ((grid[..., 1] + 1) * h - 1) / 2
    x0, y0 = gx.floor(), gy.floor()
    flat = x.reshape(n, c, h * w)
    out = 0
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - (gx - xi).abs()) * (1 - (gy - yi).abs())
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long().view(n, 1, -1).expand(n, c, -1)
            picked = flat.gather(2, index).view(n, c, *grid.shape[1:3])
            out = out + picked * (weight * inside).unsqueeze(1).to(x.dtype)
    return out


class AugmentPipe:
    """Apply :class:`AugmentSettings` at probability ``p`` to a batch (float32, N x C x H x W, C 1 or 3)."""

    def __init__(self, settings: AugmentSettings):
        self.s = settings
        taps = torch.tensor(SYM6, dtype=torch.float32)
        self.taps = taps / taps.sum()

    def __call__(self, images: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
        draw = _Draws(images.shape[0], images.device, generator)
        p_t = torch.tensor(p, dtype=torch.float32)
        if self.s.geometric:
            images = self._geometric(images, self._geometric_matrix(draw, p_t, images.shape), draw.device)
        color = self._color_matrix(draw, p_t, images.shape[1])
        if color is not None:
            images = self._apply_color(images, color)
        if self.s.cutout > 0:
            images = self._cutout(images, draw, p_t)
        return images

    def _geometric_matrix(self, draw: "_Draws", p: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """The inverse transform (output pixel -> input pixel) per image, drawn in the official order."""
        s, (n, _, h, w) = self.s, shape
        g = torch.eye(3, device=draw.device)
        one = torch.ones(n, device=draw.device)
        if s.xflip > 0:
            i = draw.choose(torch.floor(draw.rand(n) * 2), s.xflip * p, 0.0)
            g = g @ scale2d(1 / (1 - 2 * i), one, one)
        if s.rotate90 > 0:
            i = draw.choose(torch.floor(draw.rand(n) * 4), s.rotate90 * p, 0.0)
            g = g @ rotate2d(math.pi / 2 * i)
        if s.xint > 0:
            t = draw.choose((draw.rand(n, 2) * 2 - 1) * s.xint_max, s.xint * p, 0.0, (n, 1))
            g = g @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h), one)
        if s.scale > 0:
            k = draw.choose(torch.exp2(draw.randn(n) * s.scale_std), s.scale * p, 1.0)
            g = g @ scale2d(1 / k, 1 / k, one)
        p_rot = 1 - torch.sqrt((1 - s.rotate * p).clamp(0, 1))  # P(pre or post) = rotate * p
        if s.rotate > 0:
            theta = draw.choose((draw.rand(n) * 2 - 1) * math.pi * s.rotate_max, p_rot, 0.0)
            g = g @ rotate2d(theta)
        if s.aniso > 0:
            k = draw.choose(torch.exp2(draw.randn(n) * s.aniso_std), s.aniso * p, 1.0)
            g = g @ scale2d(1 / k, 1 / (1 / k), one)  # the official scale2d_inv(s, 1 / s)
        if s.rotate > 0:
            theta = draw.choose((draw.rand(n) * 2 - 1) * math.pi * s.rotate_max, p_rot, 0.0)
            g = g @ rotate2d(theta)
        if s.xfrac > 0:
            t = draw.choose(draw.randn(n, 2) * s.xfrac_std, s.xfrac * p, 0.0, (n, 1))
            g = g @ translate2d(-t[:, 0] * w, -t[:, 1] * h, one)
        return g

    def _geometric(self, images: torch.Tensor, g: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Reflect-pad to cover the transformed image, up-sample 2x, sample, down-sample and crop."""
        n, c, h, w = images.shape
        pad = len(SYM6) // 4
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=device)
        reach = (g @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, batch * corner]
        margin = torch.cat([-reach, reach]).max(dim=1).values
        margin = margin + torch.tensor([pad * 2 - cx, pad * 2 - cy] * 2, device=device)
        margin = margin.max(torch.zeros(4, device=device)).min(torch.tensor([w - 1.0, h - 1.0] * 2, device=device))
        mx0, my0, mx1, my1 = margin.ceil().to(torch.int32).tolist()
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        unit = torch.ones((), device=device)
        g = translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, unit) @ g
        images = _fir(images, self.taps * 2, (6, 5, 6, 5), 1, flip=True, up=2)  # gain 4 over the two axes
        g = scale2d(2, 2, unit) @ g @ scale2d(0.5, 0.5, unit)
        g = translate2d(-0.5, -0.5, unit) @ g @ translate2d(0.5, 0.5, unit)
        out_h, out_w = (h + pad * 2) * 2, (w + pad * 2) * 2
        g = scale2d(2 / images.shape[3], 2 / images.shape[2], unit) @ g @ scale2d(1 / (2 / out_w), 1 / (2 / out_h), unit)
        grid = F.affine_grid(g[:, :2, :], [n, c, out_h, out_w], align_corners=False)
        images = sample_bilinear(images, grid)
        return _fir(images, self.taps, (-1, -1, -1, -1), 2, flip=False)

    def _color_matrix(self, draw: "_Draws", p: torch.Tensor, channels: int) -> torch.Tensor | None:
        """The colour transform per image (4x4, homogeneous), drawn in the official order; None: identity."""
        s, n = self.s, draw.n
        eye = torch.eye(4, device=draw.device)
        m = None
        v = (torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(3)).float().to(draw.device)  # luma axis
        vv = torch.outer(v, v)

        def then(t: torch.Tensor) -> torch.Tensor:
            return t if m is None else t @ m

        if s.brightness > 0:
            b = draw.choose(draw.randn(n) * s.brightness_std, s.brightness * p, 0.0)
            m = then(translate3d(b))
        if s.contrast > 0:
            k = draw.choose(torch.exp2(draw.randn(n) * s.contrast_std), s.contrast * p, 1.0)
            m = then(scale3d(k))
        if s.lumaflip > 0:
            i = draw.choose(torch.floor(draw.rand(n, 1, 1) * 2), s.lumaflip * p, 0.0)
            m = then(eye - 2 * vv * i)  # Householder reflection of the luma axis
        if s.hue > 0 and channels > 1:
            theta = draw.choose((draw.rand(n) * 2 - 1) * math.pi * s.hue_max, s.hue * p, 0.0)
            m = then(rotate3d(v, theta))
        if s.saturation > 0 and channels > 1:
            k = draw.choose(torch.exp2(draw.randn(n, 1, 1) * s.saturation_std), s.saturation * p, 1.0)
            m = then(vv + (eye - vv) * k)
        return m

    @staticmethod
    def _apply_color(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        flat = images.reshape(n, c, h * w)
        if c == 3:
            flat = m[:, :3, :3] @ flat + m[:, :3, 3:]
        elif c == 1:
            m = m[:, :3, :].mean(dim=1, keepdim=True)
            flat = flat * m[:, :, :3].sum(dim=2, keepdim=True) + m[:, :, 3:]
        else:
            raise ValueError(f"the augmentation pipeline takes RGB or grey images, not {c} channels")
        return flat.reshape(n, c, h, w)

    def _cutout(self, images: torch.Tensor, draw: "_Draws", p: torch.Tensor) -> torch.Tensor:
        """Zero a rectangle of ``cutout_size`` of the image at a uniform centre, per chosen image."""
        n, _, h, w = images.shape
        size = draw.choose(torch.full((n, 2, 1, 1, 1), self.s.cutout_size, device=draw.device), self.s.cutout * p,
                           0.0, (n, 1, 1, 1, 1))
        center = draw.rand(n, 2, 1, 1, 1)
        xs = torch.arange(w, device=draw.device).reshape(1, 1, 1, -1)
        ys = torch.arange(h, device=draw.device).reshape(1, 1, -1, 1)
        keep_x = ((xs + 0.5) / w - center[:, 0]).abs() >= size[:, 0] / 2
        keep_y = ((ys + 0.5) / h - center[:, 1]).abs() >= size[:, 1] / 2
        keep_x, keep_y = torch.broadcast_tensors(keep_x, keep_y)
        return images * torch.logical_or(keep_x, keep_y).to(images.dtype)


class _Draws:
    """Random numbers from one generator (on the CPU, so a seed means the same on any device)."""

    def __init__(self, n: int, device: torch.device, generator: torch.Generator | None):
        self.n, self.device, self.generator = n, device, generator

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator).to(self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator).to(self.device)

    def choose(self, value: torch.Tensor, probability: torch.Tensor, otherwise: float,
               shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """``value`` where a fresh uniform draw (of ``shape``, default ``value``'s) is below ``probability``."""
        hit = self.rand(*(shape or value.shape)) < probability.to(self.device)
        return torch.where(hit, value, torch.full_like(value, otherwise))
