"""The shapes domain view: StarGAN v2's domains and styles in the built-in procedural data.

Every image holds one object on a dark background:

- domain = the shape (circle, square, triangle): what a translation must change;
- style = the color (six) and the texture (solid or striped): what a reference or a latent code chooses;
- pose = the position and the size (small, large): what a translation must keep.

Image ``i`` has domain ``i mod 3``, so the domains are balanced and known without rendering; the rest
of its scene is drawn from a generator seeded by (stream, i). The ``train`` and ``test`` splits draw
from different streams, so they never share a scene. The view reads like a domain folder
(:class:`ganforge.data.domains.DomainView`, with the official training transform) and can be written
as one (``train/<shape>/``, ``val/<shape>/``) by :func:`write_domain_folders`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.domains import DomainView, square_image
from ganforge.data.shapes import SHAPES, TEXTURES, Scene, render, sample_scene

SPLIT_STREAMS = {"train": 101, "test": 102}  # seed streams of the two splits (other views use 0)


def validation_length(train_length: int) -> int:
    """Images of the test split (``val/``) that go with ``train_length`` training images: a tenth, at
    least one per domain."""
    return max(train_length // 10, len(SHAPES))


class ShapesDomainDataset(DomainView):
    """``length`` one-object images of ``image_size`` px (see module docstring)."""

    def __init__(self, length: int = 6000, image_size: int = 32, split: str = "train", augment: bool = True,
                 crop_prob: float = 0.5, flip: bool = True):
        if split not in SPLIT_STREAMS:
            raise ValueError(f"shapes domains split '{split}' is not one of {', '.join(SPLIT_STREAMS)}")
        self.image_size, self.split, self.augment, self.crop_prob, self.flip = image_size, split, augment, crop_prob, flip
        self.domains = list(SHAPES)
        self.labels = np.arange(length, dtype=np.int64) % len(SHAPES)
        self._index_domains()

    def scene(self, index: int) -> Scene:
        """The scene of image ``index`` (deterministic): its shape is its domain."""
        if not 0 <= index < len(self):
            raise IndexError(f"shapes domains index {index} out of range 0..{len(self) - 1}")
        rng = np.random.default_rng([SPLIT_STREAMS[self.split], index])
        scene = sample_scene(rng, 1)
        obj = dataclasses.replace(scene.objects[0], shape=int(self.labels[index]),
                                  texture=int(rng.integers(len(TEXTURES))))
        return Scene(background=scene.background, objects=(obj,))

    def image_array(self, index: int) -> np.ndarray:
        """uint8 (H, W, 3) image ``index``, unaugmented."""
        return render(self.scene(index), self.image_size)

    def load(self, index: int, rng: np.random.Generator | None) -> torch.Tensor:
        aug = rng if self.augment else None
        return square_image(Image.fromarray(self.image_array(index)), self.image_size, aug, self.crop_prob, self.flip)


def write_domain_folders(train: ShapesDomainDataset, val: ShapesDomainDataset, out: Path, progress: bool = True
                         ) -> Path:
    """Write the two splits as StarGAN v2's layout: ``out/train/<shape>/NNNNNN.png`` and ``out/val/...``."""
    from tqdm import tqdm

    for folder, data in (("train", train), ("val", val)):
        for i in tqdm(range(len(data)), desc=f"writing {folder}", disable=not progress):
            target = out / folder / data.domains[int(data.labels[i])]
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.image_array(i)).save(target / f"{i:06d}.png")
    return out
