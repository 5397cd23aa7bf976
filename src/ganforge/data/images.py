"""Decode real-world image files into uint8 arrays of one mode and one size.

Handles what breaks research loaders: grayscale, RGBA/LA (composited on white), palette images with
transparency, 16-bit and 32-bit integer images (rescaled, not clipped), CMYK, EXIF orientation,
and mixed sizes (resize of the shorter side, then center or random crop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class DataError(ValueError):
    """A dataset cannot be used as configured; the message names the path and the fix."""


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL image to 'RGB' (channels=3) or 'L' (channels=1) without clipping or black alpha."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        # 16-bit files hold 0..65535; PIL's convert('L') would clip them to 255 (white images), and
        # float files usually hold 0..1, which it would make black.
        peak = gray_peak(arr, img.mode)
        img = Image.fromarray(np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    target = "RGB" if channels == 3 else "L"
    return img.convert(target) if img.mode != target else img


def gray_peak(arr: np.ndarray, mode: str) -> float:
    """The white level of a 16/32-bit integer or float gray image: 1 for floats in 0..1, else 255 or
    65535 by the largest value."""
    top = float(arr.max(initial=0))
    if mode == "F" and top <= 1.0:
        return 1.0
    return 65535.0 if top > 255 else 255.0


def float_range_problem(img: Image.Image) -> str | None:
    """Why a float image cannot be read as a picture (values that are no brightness), or None."""
    if img.mode != "F":
        return None
    arr = np.asarray(img)
    if not np.isfinite(arr).all():
        return "float image with NaN or infinite values"
    low, high = float(arr.min(initial=0)), float(arr.max(initial=0))
    if low < 0 or high > 65535:
        return (f"float image with values {low:.4g}..{high:.4g}, not a brightness range ganforge reads (0..1, 0..255 "
                f"or 0..65535); convert it to an 8- or 16-bit image")
    return None


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side equals ``size`` (antialiased), keeping the aspect ratio."""
    w, h = img.size
    if min(w, h) == size:
        return img
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)


def crop_square(arr: np.ndarray, size: int, mode: str, rng: np.random.Generator | None) -> np.ndarray:
    """Crop an (H, W, C) array to (size, size, C), centered or at a position drawn from ``rng``."""
    h, w = arr.shape[:2]
    if mode == "random" and rng is not None:
        top = int(rng.integers(0, h - size + 1))
        left = int(rng.integers(0, w - size + 1))
    else:
        top, left = (h - size) // 2, (w - size) // 2
    return arr[top:top + size, left:left + size]


def _hwc(img: Image.Image) -> np.ndarray:
    """A PIL image in mode L or RGB -> uint8 (H, W, C)."""
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def image_to_array(img: Image.Image, channels: int, size: int | None) -> np.ndarray:
    """Any PIL image -> uint8 (H, W, channels), shorter side resized to ``size`` when given."""
    img = to_mode(img, channels)
    if size is not None:
        img = resize_shorter(img, size)
    return _hwc(img)


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """uint8 (H, W, 1 or 3) -> a PIL image (mode L or RGB)."""
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (any leading dims, channels before H, W) -> uint8 on the CPU, rounded, clipped."""
    return ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def tensor_to_array(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image in [-1, 1] -> uint8 (H, W, C)."""
    return to_uint8(image).permute(1, 2, 0).numpy()


def decode_file(path: str | Path, channels: int, size: int | None, crop_size: int | None = None) -> np.ndarray:
    """Read ``path`` into a uint8 (H, W, C) array, shorter side resized to ``size`` when given;
    with ``crop_size``, center-cropped to it first (see :func:`center_crop_resize`)."""
    with Image.open(path) as img:
        if crop_size is not None and size is not None:
            return center_crop_resize(img, channels, crop_size, size)
        return image_to_array(img, channels, size)


def resize_array(arr: np.ndarray, size: int, channels: int | None = None) -> np.ndarray:
    """A uint8 (H, W, C) array with its shorter side resized to ``size`` (and converted to ``channels``)."""
    return image_to_array(array_to_pil(arr), channels or arr.shape[2], size)


def to_tensor(arr: np.ndarray, size: int, crop: str, flip: bool, rng: np.random.Generator | None) -> torch.Tensor:
    """uint8 (H, W, C) -> float (C, size, size) in [-1, 1], cropped and optionally flipped."""
    arr = crop_square(arr, size, crop, rng)
    if flip and rng is not None and rng.random() < 0.5:
        arr = arr[:, ::-1]
    # PIL's buffers are read-only; np.array copies into a writable, contiguous array.
    t = torch.from_numpy(np.array(arr, dtype=np.uint8, order="C")).permute(2, 0, 1).float()
    return t.div_(127.5).sub_(1.0)


def check_header(path: Path) -> str | None:
    """None if ``path`` opens as an image, else a short reason (zero bytes, not an image, ...)."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with Image.open(path) as img:
            img.size  # noqa: B018 - reading the header is the check
            return float_range_problem(img)  # float images are read whole: rare, and only they
    except Exception as err:  # PIL raises many types; each is "unreadable" to us
        return f"{type(err).__name__}: {err}"


def center_crop_resize(img: Image.Image, channels: int, crop_size: int, size: int) -> np.ndarray:
    """StarGAN's preprocessing: center crop ``crop_size`` at full resolution, then resize the shorter
    side to ``size`` (bilinear, as torchvision's ``Resize`` does for PIL images). The crop offset is
    torchvision's ``CenterCrop`` rule, ``round((H - crop) / 2)``; an image smaller than ``crop_size``
    is cropped to its shorter side instead of padded with black."""
    img = to_mode(img, channels)
    w, h = img.size
    c = min(crop_size, w, h)
    top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
    img = img.crop((left, top, left + c, top + c))
    if c != size:
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return _hwc(img)
