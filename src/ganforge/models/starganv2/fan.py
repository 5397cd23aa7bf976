"""The FAN facial-landmark network StarGAN v2 uses for its CelebA-HQ masks (``core/wing.py``, ``wing.ckpt``).

The network is the one-hourglass Adaptive-Wing FAN (98 landmarks + a boundary heatmap, 6,333,603
parameters) with CoordConv inputs. Module names follow the official code, so ``wing.ckpt``'s
``state_dict`` loads without renaming. It is frozen and always in eval mode, as in the official
``build_model``; only its heatmaps are used, turned into two soft masks by ``landmark_masks``:
the first (whole face: jaw line, brows, nose, eyes, lips) guides the 32 px skip, the second (without
the jaw line, the mouth and the brows) the 64 and 128 px skips.

The official CoordConv can also append boundary coordinates, but the released forward never passes a
boundary heatmap, so that input is not built here (the layer widths are the released ones).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_LANDMARKS = 98


class CoordConv(nn.Module):
    """A convolution whose input gets three more channels: the row and column coordinates in [-1, 1]
    and their radius divided by its maximum (``with_r``)."""

    def __init__(self, size: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0):
        super().__init__()
        rows = (torch.arange(size).float()[:, None].expand(size, size) / (size - 1)) * 2 - 1
        cols = (torch.arange(size).float()[None, :].expand(size, size) / (size - 1)) * 2 - 1
        radius = torch.sqrt(rows.pow(2) + cols.pow(2))
        coords = torch.stack([rows, cols, radius / radius.max()])[None]
        # Not persistent: the official layer keeps them as plain attributes, so checkpoints lack them.
        self.register_buffer("coords", coords, persistent=False)
        self.conv = nn.Conv2d(in_channels + 3, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coords = self.coords.to(x.dtype).expand(x.shape[0], -1, -1, -1)
        return self.conv(torch.cat([x, coords], 1))


class ConvBlock(nn.Module):
    """Pre-activation block of three 3x3 convs (widths 1/2, 1/4, 1/4 of the output) whose outputs are
    concatenated, plus a (projected) shortcut."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, half, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = None
        if in_planes != out_planes:
            self.downsample = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU(True),
                                            nn.Conv2d(in_planes, out_planes, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = self.downsample(x) if self.downsample is not None else x
        return torch.cat((out1, out2, out3), 1) + residual


class HourGlass(nn.Module):
    """A depth-4 hourglass of 256-channel ConvBlocks behind a CoordConv (``b1_<level>`` keeps the
    resolution, ``b2_``/``b3_`` go down and up, ``b2_plus_1`` is the bottom)."""

    def __init__(self, depth: int = 4, features: int = 256):
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(64, features, features, 1)
        self._add_level(depth, features)

    def _add_level(self, level: int, features: int) -> None:
        # Registration order is the official recursion's, so state dicts list keys in the same order.
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._add_level(level - 1, features)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return up + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x))


class FAN(nn.Module):
    """``forward(x)``: image (N, 3, 256, 256) in [0, 1] -> heatmaps (N, 99, 64, 64) (98 landmarks, then
    the boundary map)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = CoordConv(256, 3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        self.m0 = HourGlass()
        self.top_m_0 = ConvBlock(256, 256)
        self.conv_last0 = nn.Conv2d(256, 256, 1, 1, 0)
        self.bn_end0 = nn.BatchNorm2d(256)
        self.l0 = nn.Conv2d(256, NUM_LANDMARKS + 1, 1, 1, 0)
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "FAN":
        # Always inference: its BatchNorms use the pretrained statistics, as the official FAN(...).eval().
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        x = self.conv4(self.conv3(x))
        x = self.top_m_0(self.m0(x))
        return self.l0(F.relu(self.bn_end0(self.conv_last0(x))))

    @torch.no_grad()
    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Landmark heatmaps (N, 98, 256, 256) of images in [-1, 1] of any size (``get_heatmap``)."""
        x = F.interpolate(x, size=256, mode="bilinear")
        maps = self(x * 0.5 + 0.5)[:, :-1]
        return F.interpolate(maps, scale_factor=x.shape[2] // maps.shape[2], mode="bilinear", align_corners=True)

    @torch.no_grad()
    def masks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's two landmark masks (N, 1, 256, 256) for images in [-1, 1], in the FAN's dtype
        (half-precision inputs are read in float32, and a float64 FAN keeps float64 inputs exact)."""
        return landmark_masks(self.heatmaps(x.to(self.l0.weight.dtype)))


# Landmark index ranges of the 98-point WFLW layout, as the official ``index_map``.
CHIN = (8, 25)
EYEBROWS = (33, 51)
EYEBROW_EDGES = (33, 46)
NOSE = (51, 55)
NOSTRILS = (55, 60)
EYES = (60, 76)
LIP_EDGES = (76, 82)
LIP_UPPER = (77, 82)
LIP_LOWER = (83, 88)
LIP_INNER = (88, 96)


def _shift_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """Move the heatmaps up by ``n`` rows (down when negative), wrapping around (the official ``shift``)."""
    return torch.roll(x, shifts=-n, dims=2)


def landmark_masks(heatmaps: torch.Tensor, threshold: float = 0.1, eps: float = 1e-6
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn 98 heatmaps into the two masks, as the official ``preprocess``: drop values below 0.1,
    min-max normalize each map, move and sharpen parts (brows up, nostrils and lower lip down, eyes up
    with a second copy higher), clear the outer jaw line and some edge points, then sum and clamp."""
    x = torch.where(heatmaps < threshold, torch.zeros_like(heatmaps), heatmaps)
    n, c, h, w = x.shape
    flat = x.reshape(n * c, -1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    x = ((flat - low) / (high - low + eps)).reshape(n, c, h, w).clone()
    sw = h // 256  # shifts are in 256 px units
    for (start, end), shift, power in ((CHIN, 0, 3), (EYEBROWS, -7 * sw, 2), (NOSTRILS, 8 * sw, 4),
                                       (LIP_UPPER, -8 * sw, 4), (LIP_LOWER, 8 * sw, 4), (LIP_INNER, -2 * sw, 3)):
        x[:, start:end] = _shift_rows(x[:, start:end], shift) ** power
    zero_out = [*range(0, CHIN[0]), *range(CHIN[1], 33), EYEBROW_EDGES[0], EYEBROW_EDGES[1], LIP_EDGES[0],
                LIP_EDGES[1]]
    x[:, zero_out] = 0
    x[:, NOSE[0] + 1:NOSE[1]] = _shift_rows(x[:, NOSE[0] + 1:NOSE[1]], 4 * sw)
    eyes = x[:, EYES[0]:EYES[1]]
    # The eye offsets are not scaled by sw in the official code either.
    x[:, EYES[0]:EYES[1]] = _shift_rows(eyes, -8) ** 3 + _shift_rows(eyes, -24)
    x2 = x.clone()
    x2[:, CHIN[0]:CHIN[1]] = 0
    x2[:, LIP_EDGES[0]:LIP_INNER[1]] = 0
    x2[:, EYEBROWS[0]:EYEBROWS[1]] = 0
    x, x2 = x.sum(1, keepdim=True), x2.sum(1, keepdim=True)
    # The official code zeroes NaNs of the first mask only (its second test reads the cleaned first mask).
    x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
    return x.clamp(0, 1), x2.clamp(0, 1)
