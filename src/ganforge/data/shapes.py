"""``shapes``: a procedural dataset that needs no download and is the same on every machine.

Image ``i`` of seed ``s`` is drawn from a generator seeded by (s, i), so any subset can be rendered
in any order, by any worker. A scene has 1..max_objects fully visible objects; each has a shape (circle, square,
triangle), one of six colors, a size (small, large) and a position. Views:

- ``unconditional``: images only.
- ``class``: one object per image; the label is shape * 6 + color (18 classes).
- ``attributes``: one object per image with CelebA-style binary attributes (``ATTRIBUTES``): the
  exclusive colors Red/Green/Blue (like CelebA's hair colors: a yellow, magenta or cyan object has
  none of them), Large, and Light_Background (half the scenes have a light gray background). Shape
  and position are what a translation must keep.

Objects are drawn 4x supersampled and downsampled, so edges are antialiased at every size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganforge.data.images import DataError, to_tensor

SHAPES = ("circle", "square", "triangle")
COLORS = {
    "red": (220, 50, 50),
    "green": (50, 190, 70),
    "blue": (50, 90, 230),
    "yellow": (235, 210, 40),
    "magenta": (210, 60, 200),
    "cyan": (40, 200, 210),
}
COLOR_NAMES = tuple(COLORS)
TEXTURES = ("solid", "striped")
STRIPE_PERIOD = 0.12  # diagonal stripes: one light and one dark band per 12% of the image side
STRIPE_DARKEN = 0.55  # the dark bands are the object color times this
SIZES = (0.30, 0.45)  # object extent as a fraction of the image side: small, large
NUM_CLASSES = len(SHAPES) * len(COLORS)
ATTRIBUTES = ("Red", "Green", "Blue", "Large", "Light_Background")
EXCLUSIVE_ATTRIBUTES = ("Red", "Green", "Blue")  # at most one is set, like CelebA's hair colors
LIGHT_BACKGROUND = (150, 191)  # gray levels of a light background; dark ones are 20..60
LIGHT_THRESHOLD = 105  # a border gray level above this reads as a light background
SUPERSAMPLE = 4
SEPARATION = 1.1  # bounding circles of two objects stay this factor apart (square corners reach 1.24 r)


@dataclass(frozen=True)
class ShapeObject:
    """One object of a scene; position is the center in [0, 1] image coordinates."""

    shape: int
    color: int
    size: int
    x: float
    y: float
    texture: int = 0  # index into TEXTURES (only the domains view draws striped objects)

    @property
    def class_id(self) -> int:
        return self.shape * len(COLORS) + self.color


@dataclass(frozen=True)
class Scene:
    background: int  # gray level
    objects: tuple[ShapeObject, ...]

    def attributes(self) -> tuple[int, ...]:
        """The ``attributes`` view's 0/1 vector (``ATTRIBUTES`` order) of a one-object scene."""
        obj = self.objects[0]
        color = COLOR_NAMES[obj.color].capitalize()
        return tuple(int(color == name) for name in EXCLUSIVE_ATTRIBUTES) + (
            obj.size, int(self.background > LIGHT_THRESHOLD))


def with_light_background(scene: Scene, rng: np.random.Generator) -> Scene:
    """The same objects on a light gray background drawn from ``rng``."""
    return Scene(background=int(rng.integers(*LIGHT_BACKGROUND)), objects=scene.objects)


def background_level(images: torch.Tensor) -> torch.Tensor:
    """Median gray level of each image's 2-pixel border ring: objects never reach it. (N,) in 0..255.

    ``images``: float in [-1, 1] or uint8, (N, C, H, W)."""
    x = images.float() if images.dtype == torch.uint8 else (images.float() + 1) * 127.5
    ring = torch.cat([x[..., :2, :].flatten(1), x[..., -2:, :].flatten(1),
                      x[..., :, :2].flatten(1), x[..., :, -2:].flatten(1)], 1)
    return ring.median(1).values


def sample_scene(rng: np.random.Generator, num_objects: int) -> Scene:
    """Draw a scene of up to ``num_objects`` objects from ``rng``; every object stays fully visible.

    Objects keep their bounding circles apart (x ``SEPARATION``), so a reader (or the oracle) can
    always count and name them. An object that finds no free place in 20 tries is retried small,
    and dropped after 20 more: a scene may hold fewer objects than drawn, never an occluded one.
    The first object is always placed, from the first draw.
    """
    objects: list[ShapeObject] = []
    for _ in range(num_objects):
        size = int(rng.integers(len(SIZES)))
        placed = None
        for attempt in range(40):
            trial = size if attempt < 20 else 0
            half = SIZES[trial] / 2
            x, y = rng.uniform(half + 0.04, 1 - half - 0.04, size=2)
            if all((x - o.x) ** 2 + (y - o.y) ** 2 > (SEPARATION * (half + SIZES[o.size] / 2)) ** 2 for o in objects):
                placed = (trial, float(x), float(y))
                break
        shape, color = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLORS)))
        if placed is not None:
            objects.append(ShapeObject(shape, color, placed[0], placed[1], placed[2]))
    return Scene(background=int(rng.integers(20, 61)), objects=tuple(objects))


def render(scene: Scene, image_size: int) -> np.ndarray:
    """Render ``scene`` to a uint8 (H, W, 3) array."""
    side = image_size * SUPERSAMPLE
    img = Image.new("RGB", (side, side), (scene.background,) * 3)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        color = COLORS[COLOR_NAMES[obj.color]]
        if TEXTURES[obj.texture] == "solid":
            _draw_shape(draw, obj, side, color)
            continue
        mask = Image.new("L", (side, side), 0)
        _draw_shape(ImageDraw.Draw(mask), obj, side, 255)
        img.paste(color, mask=mask)
        dark = tuple(round(c * STRIPE_DARKEN) for c in color)
        img.paste(dark, mask=Image.fromarray(np.minimum(np.asarray(mask), _stripes(side))))
    img = img.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.uint8)


def _draw_shape(draw: ImageDraw.ImageDraw, obj: ShapeObject, side: int, fill: tuple[int, ...] | int) -> None:
    r = SIZES[obj.size] / 2 * side
    cx, cy = obj.x * side, obj.y * side
    if SHAPES[obj.shape] == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif SHAPES[obj.shape] == "square":
        s = r * 0.88  # equal visual area to the circle
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)], fill=fill)


@functools.lru_cache(maxsize=4)
def _stripes(side: int) -> np.ndarray:
    """uint8 (side, side): 255 on the dark diagonal bands of a striped object."""
    yy, xx = np.mgrid[0:side, 0:side]
    return np.where(((xx + yy) / (STRIPE_PERIOD * side)) % 1 < 0.5, 255, 0).astype(np.uint8)


def story_scene(rng: np.random.Generator, num_objects: int) -> Scene:
    """A scene with exactly ``num_objects`` objects for the story view (redrawn from ``rng`` until
    every object found a place; four objects almost always fit at the first draw)."""
    while True:
        scene = sample_scene(rng, num_objects)
        if len(scene.objects) == num_objects:
            return scene


VIEWS = ("unconditional", "class", "attributes")


class ShapesDataset:
    """The built-in procedural dataset (see module docstring)."""

    def __init__(self, length: int = 20000, image_size: int = 64, channels: int = 3,
                 view: str = "unconditional", max_objects: int = 2, seed: int = 0, flip: bool = False,
                 attributes: tuple[str, ...] | None = None):
        if view not in VIEWS:
            raise ValueError(f"shapes view '{view}' is not one of {', '.join(VIEWS)}")
        self.length, self.image_size, self.channels = length, image_size, channels
        self.view, self.max_objects, self.seed, self.flip = view, max_objects, seed, flip
        self.num_classes = NUM_CLASSES if view == "class" else 0
        # attributes view: which attributes form the label (data.selected_attrs; default all of them)
        unknown = [a for a in attributes or () if a not in ATTRIBUTES]
        if unknown:
            raise DataError(f"data.selected_attrs: {', '.join(unknown)} not attributes of the shapes data; "
                            f"choose from {', '.join(ATTRIBUTES)}")
        names = tuple(attributes or ATTRIBUTES) if view == "attributes" else ()
        self.attr_names: tuple[str, ...] = names
        self.exclusive_attrs: tuple[str, ...] = tuple(a for a in names if a in EXCLUSIVE_ATTRIBUTES)
        self._attr_columns = [ATTRIBUTES.index(a) for a in names]

    def __len__(self) -> int:
        return self.length

    def scene(self, index: int) -> Scene:
        """The scene of image ``index`` (deterministic)."""
        if not 0 <= index < self.length:
            raise IndexError(f"shapes index {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, index])
        n = int(rng.integers(1, self.max_objects + 1)) if self.view == "unconditional" else 1
        scene = sample_scene(rng, n)
        if self.view == "attributes" and rng.random() < 0.5:  # drawn after the scene: objects as in `class`
            scene = with_light_background(scene, rng)
        return scene

    def image_array(self, index: int) -> np.ndarray:
        """uint8 (H, W, C) image ``index``."""
        return self._render(self.scene(index))

    def _render(self, scene: Scene) -> np.ndarray:
        arr = render(scene, self.image_size)
        if self.channels == 1:
            arr = np.asarray(Image.fromarray(arr).convert("L"))[..., None]
        return arr

    def label(self, index: int) -> int:
        return self.scene(index).objects[0].class_id if self.view == "class" else 0

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        scene = self.scene(index)  # once: drawing it is half the cost of a small image
        item = {"image": to_tensor(self._render(scene), self.image_size, "center", self.flip, rng)}
        if self.num_classes:
            item["label"] = torch.tensor(scene.objects[0].class_id, dtype=torch.long)
        if self.attr_names:
            item["attrs"] = torch.tensor(scene.attributes(), dtype=torch.float32)[self._attr_columns]
        return item
