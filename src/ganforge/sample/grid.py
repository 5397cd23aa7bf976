"""Turn generator outputs into image files."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

import torch
import torch.nn as nn
from torchvision.utils import make_grid

from ganforge.data.images import array_to_pil, to_uint8

__all__ = ["to_uint8", "generate", "grid_image", "GridLabels", "Picture", "label_grid", "labelled_grid", "title_height",
           "grid_boxes", "side_by_side", "save_picture", "save_grid", "save_images", "slerp", "interpolate_inputs"]

PADDING = 2  # pixels between the cells of a grid
FONT_SIZE = 12


@dataclass
class GridLabels:
    """Words drawn around a grid, so the picture explains itself: a title line above, a header per
    column, a label per row. Any of them may be left out."""

    title: str | None = None
    columns: Sequence[str] | None = None
    rows: Sequence[str] | None = None


@torch.no_grad()
def generate(generator: nn.Module, inputs: Sequence[torch.Tensor], device: torch.device,
             batch_size: int = 64) -> torch.Tensor:
    """Run ``generator`` on CPU-side ``inputs`` in batches; returns CPU float images in [-1, 1]."""
    outputs = []
    n = inputs[0].shape[0]
    for i in range(0, n, batch_size):
        outputs.append(generator(*(t[i:i + batch_size].to(device) for t in inputs)).float().cpu())
    return torch.cat(outputs)


def grid_image(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """A uint8 (C, H, W) grid, ``nrow`` images per row (square by default)."""
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(to_uint8(images), nrow=nrow, padding=PADDING, pad_value=255)  # white: dark images stay apart


@functools.lru_cache(maxsize=1)
def _font():  # noqa: ANN202 (a PIL font, loaded once: every labelled picture uses it)
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=FONT_SIZE)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _text_size(font, text: str) -> tuple[int, int]:  # noqa: ANN001
    """(width, height) of ``text``; the height is the font's line height, the same for every text, so
    bands of labels line up whatever letters they hold."""
    left, _, right, _ = font.getbbox(text)
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (font.getbbox("Ag")[3], 0)
    return right - left, ascent + descent


def _column_headers(columns: Sequence[str], cell_w: int, font) -> np.ndarray:  # noqa: ANN001
    """A white band with one header centred over each column; written upright when every header fits
    its column, else turned 90 degrees (read bottom to top) so that long names still sit over theirs."""
    from PIL import Image, ImageDraw

    sizes = [_text_size(font, c) for c in columns]
    upright = all(w <= cell_w for w, _ in sizes)
    height = (max(h for _, h in sizes) if upright else max(w for w, _ in sizes)) + 6
    band = Image.new("RGB", (len(columns) * cell_w + PADDING, height), "white")
    for k, (text, (w, h)) in enumerate(zip(columns, sizes)):
        x0 = PADDING + k * cell_w
        if upright:
            ImageDraw.Draw(band).text((x0 + (cell_w - PADDING - w) // 2, 3), text, fill="black", font=font)
            continue
        label = Image.new("RGB", (w + 2, h + 2), "white")
        ImageDraw.Draw(label).text((1, 1), text, fill="black", font=font)
        label = label.rotate(90, expand=True)
        band.paste(label, (x0 + (cell_w - PADDING - label.width) // 2, height - label.height - 3))
    return np.asarray(band)


@dataclass
class Picture:
    """An (H, W, 3) uint8 picture and where its image grids lie in it: (left, top, width, height) each.
    The boxes are saved in the PNG (text chunk ``grids``), so a tool can crop the grids out."""

    pixels: np.ndarray
    grids: list[tuple[int, int, int, int]]

    def moved(self, left: int, top: int) -> list[tuple[int, int, int, int]]:
        return [(x + left, y + top, w, h) for x, y, w, h in self.grids]


def _white(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), 255, np.uint8)


def _with_title(picture: Picture, title: str, font) -> Picture:  # noqa: ANN001
    from PIL import Image, ImageDraw

    body = picture.pixels
    w = _text_size(font, title)[0]
    if w + 8 > body.shape[1]:  # a title wider than the grid: widen the picture, never cut the words
        body = np.concatenate([body, _white(body.shape[0], w + 8 - body.shape[1])], 1)
    band = Image.new("RGB", (body.shape[1], title_height()), "white")
    ImageDraw.Draw(band).text((4, 4), title, fill="black", font=font)
    return Picture(np.concatenate([np.asarray(band), body], 0), picture.moved(0, band.height))


def _with_row_labels(picture: Picture, rows: Sequence[str], cell_h: int, font) -> Picture:  # noqa: ANN001
    from PIL import Image, ImageDraw

    body, (_, top, _, _) = picture.pixels, picture.grids[0]
    width = max(_text_size(font, r)[0] for r in rows) + 8
    image = Image.new("RGB", (width + body.shape[1], body.shape[0]), "white")
    image.paste(Image.fromarray(body), (width, 0))
    draw = ImageDraw.Draw(image)
    for k, text in enumerate(rows):
        h = _text_size(font, text)[1]
        draw.text((4, top + PADDING + k * cell_h + (cell_h - PADDING - h) // 2), text, fill="black", font=font)
    return Picture(np.asarray(image), picture.moved(width, 0))


def label_grid(grid: np.ndarray, labels: GridLabels, cell: tuple[int, int]) -> Picture:
    """``grid`` (H, W, 3 uint8, cells of ``cell`` = (height, width) pixels with their padding) with
    ``labels`` drawn in white margins: the title on top, column headers below it, row labels left."""
    font = _font()
    picture = Picture(grid, [(0, 0, grid.shape[1], grid.shape[0])])
    if labels.columns:
        band = _column_headers(labels.columns, cell[1], font)
        canvas = _white(band.shape[0], grid.shape[1])
        canvas[:, :min(band.shape[1], grid.shape[1])] = band[:, :grid.shape[1]]
        picture = Picture(np.concatenate([canvas, grid], 0), picture.moved(0, band.shape[0]))
    if labels.rows:
        picture = _with_row_labels(picture, labels.rows, cell[0], font)
    if labels.title:
        picture = _with_title(picture, labels.title, font)
    return picture


def title_height() -> int:
    """Pixels a title line adds above a picture."""
    return _text_size(_font(), "Ag")[1] + 8


def labelled_grid(images: torch.Tensor, nrow: int | None = None, labels: GridLabels | None = None) -> Picture:
    """The picture of ``images`` as a grid, with ``labels`` drawn around it when given."""
    grid = grid_image(images, nrow).permute(1, 2, 0).numpy()
    grid = np.ascontiguousarray(grid if grid.shape[2] == 3 else np.repeat(grid, 3, 2))
    cell = (images.shape[-2] + PADDING, images.shape[-1] + PADDING)
    return label_grid(grid, labels or GridLabels(), cell)


def side_by_side(pictures: Sequence[Picture], title: str | None = None, gap: int = 12) -> Picture:
    """``pictures`` next to each other, top-aligned on white, with a title line above."""
    height = max(p.pixels.shape[0] for p in pictures)
    parts, boxes, left = [], [], 0
    for k, p in enumerate(pictures):
        if k:
            parts.append(_white(height, gap))
            left += gap
        parts.append(np.concatenate([p.pixels, _white(height - p.pixels.shape[0], p.pixels.shape[1])], 0))
        boxes += p.moved(left, 0)
        left += p.pixels.shape[1]
    row = Picture(np.concatenate(parts, 1), boxes)
    return _with_title(row, title, _font()) if title else row


def save_picture(picture: Picture, path: Path) -> Path:
    """Write a picture as a PNG, its grid boxes in the text chunk ``grids`` (a temporary name first,
    then renamed)."""
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("grids", ";".join(",".join(str(v) for v in box) for box in picture.grids))
    tmp = path.with_name(f".{path.stem}.tmp.png")
    array_to_pil(picture.pixels).save(tmp, pnginfo=info)
    tmp.replace(path)
    return path


def grid_boxes(path: Path) -> list[tuple[int, int, int, int]]:
    """Where the image grids lie in a picture ganforge saved: (left, top, width, height) each."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.text.get("grids", "") if hasattr(image, "text") else ""
    return [tuple(int(v) for v in box.split(",")) for box in text.split(";") if box]  # type: ignore[misc]


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None, labels: GridLabels | None = None) -> Path:
    """Save images as one PNG grid, with ``labels`` drawn around it when given (written to a temporary
    name first, then renamed)."""
    return save_picture(labelled_grid(images, nrow, labels), path)


def save_images(images: torch.Tensor, folder: Path, prefix: str = "sample") -> list[Path]:
    """Save each image as its own PNG."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(to_uint8(images)):
        p = folder / f"{prefix}-{i:05d}.png"
        array_to_pil(img.permute(1, 2, 0).numpy()).save(p)
        paths.append(p)
    return paths


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (the path Gaussian noise lives near)."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate_inputs(start: Sequence[torch.Tensor], end: Sequence[torch.Tensor], steps: int,
                       spherical: bool = True) -> list[torch.Tensor]:
    """Inputs along a path from ``start`` to ``end`` (each a batch of 1): float tensors are
    interpolated (slerp or lerp), integer ones (class labels) switch half-way."""
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    out = []
    for a, b in zip(start, end):
        if a.is_floating_point():
            flat_a, flat_b = a.reshape(1, -1).expand(steps, -1), b.reshape(1, -1).expand(steps, -1)
            path = slerp(flat_a, flat_b, t) if spherical else torch.lerp(flat_a, flat_b, t)
            out.append(path.reshape(steps, *a.shape[1:]))
        else:
            out.append(torch.where(t.squeeze(1) < 0.5, a.expand(steps), b.expand(steps)))
    return out
