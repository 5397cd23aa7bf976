"""``celeba_rafd``: CelebA and RaFD side by side, for StarGAN's joint training with the mask vector.

Each item holds a CelebA image with its attributes (``image``, ``attrs``) and a RaFD image with its
class (``image2``, ``label2``), so one batch feeds one CelebA update and, through the second keys,
one RaFD update. The sampler walks CelebA; the RaFD image of each sample is drawn uniformly from
the sample's own seed (the official code iterates the two loaders independently, and RaFD is the
smaller set).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class JointDataset:
    """Two labelled datasets; ``first`` drives the length and the order."""

    def __init__(self, first: Any, second: Any):
        self.first, self.second = first, second
        self.attr_names = tuple(getattr(first, "attr_names", ()))
        self.exclusive_attrs = tuple(getattr(first, "exclusive_attrs", ()))
        self.num_classes = 0

    def __len__(self) -> int:
        return len(self.first)

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        item = dict(self.first.get(index, rng))
        j = int(rng.integers(len(self.second))) if rng is not None else index % len(self.second)
        other = self.second.get(j, rng)
        item["image2"], item["label2"] = other["image"], other["label"]
        return item
