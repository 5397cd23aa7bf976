"""Domain folders, as StarGAN v2 reads them: ``<root>/<domain>/*.jpg`` (AFHQ's ``train/cat``, ...).

Two views of one folder:

- ``DomainFolderDataset``: one image and its domain per item, with the official training transform
  (``core/data_loader.get_train_loader``): with probability ``crop_prob`` (0.5) a random resized crop of
  scale [0.8, 1] and aspect ratio [0.9, 1.1] of the full image, then a resize to a square of
  ``image_size`` (the aspect ratio is not kept, as ``Resize([size, size])``), then a random flip.
  With ``augment=False`` only the resize (the official test and evaluation transform).
- ``DomainTrainingPairs``: what one official training iteration draws per sample: a source image and
  its domain, and a reference image of a target domain with its fixed partner from the same domain
  (``ReferenceDataset`` pairs every file once with a shuffled copy of its domain's list). Sources and
  references are each drawn by the official balanced sampler: domains equally often, whatever their
  sizes. The draw comes from the sample's seed, so the stream is the same after a resume.
"""

from __future__ import annotations

import abc
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.image_folder import build_index
from ganforge.data.images import DataError, to_mode

# The official RandomResizedCrop arguments.
CROP_SCALE = (0.8, 1.0)
CROP_RATIO = (0.9, 1.1)


def random_resized_box(width: int, height: int, rng: np.random.Generator,
                       scale: tuple[float, float] = CROP_SCALE, ratio: tuple[float, float] = CROP_RATIO
                       ) -> tuple[int, int, int, int]:
    """(left, top, w, h) of a crop as torchvision's ``RandomResizedCrop.get_params`` draws it (ten tries
    at an area fraction in ``scale`` and a log-uniform aspect ratio in ``ratio``, then a center crop),
    drawn from ``rng``."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def square_image(img: Image.Image, size: int, rng: np.random.Generator | None = None, crop_prob: float = 0.5,
                 flip: bool = True) -> torch.Tensor:
    """An RGB PIL image as (3, size, size) in [-1, 1]: resized to a square (the official test transform);
    with ``rng``, the official training transform (random resized crop with ``crop_prob``, resize, flip)."""
    if rng is not None and rng.random() < crop_prob:
        left, top, w, h = random_resized_box(img.width, img.height, rng)
        img = img.crop((left, top, left + w, top + h))
    arr = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)
    if rng is not None and flip and rng.random() < 0.5:
        arr = arr[:, ::-1]
    return torch.from_numpy(np.array(arr, dtype=np.uint8, order="C")).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def read_square(path: Path, size: int, rng: np.random.Generator | None = None, crop_prob: float = 0.5,
                flip: bool = True) -> torch.Tensor:
    """The image file at ``path`` through :func:`square_image`."""
    try:
        with Image.open(path) as img:
            return square_image(to_mode(img, 3), size, rng, crop_prob, flip)
    except OSError as err:
        raise DataError(f"cannot read image '{path}': {err}") from None


class DomainView(abc.ABC):
    """What StarGAN v2 needs of a dataset of domains: ``labels`` (the domain of each image), ``domains``
    (their names), ``load(index, rng)`` (the image, augmented with ``rng``); the rest is shared."""

    domains: list[str]
    labels: np.ndarray

    def _index_domains(self) -> None:
        self.num_classes = len(self.domains)
        self.by_domain = [np.flatnonzero(self.labels == d) for d in range(self.num_classes)]

    def __len__(self) -> int:
        return len(self.labels)

    @abc.abstractmethod
    def load(self, index: int, rng: np.random.Generator | None) -> torch.Tensor:
        """Image ``index`` as (3, size, size) in [-1, 1], augmented with ``rng`` when training."""

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        return {"image": self.load(index, rng), "label": torch.tensor(int(self.labels[index]), dtype=torch.long)}

    def balanced_draw(self, rng: np.random.Generator) -> int:
        """An index drawn as the official ``WeightedRandomSampler`` with weights 1 / domain size does:
        a domain uniformly, then one of its images uniformly."""
        members = self.by_domain[int(rng.integers(self.num_classes))]
        return int(members[rng.integers(len(members))])


class DomainFolderDataset(DomainView):
    """Images of ``<root>/<domain>/`` with their domain index (domains in sorted folder order)."""

    def __init__(self, root: str | Path, image_size: int = 256, augment: bool = True, crop_prob: float = 0.5,
                 flip: bool = True, strict: bool = False, option: str = "data.path"):
        self.root = Path(root)
        self.index = build_index(self.root, classes=True, strict=strict, option=option)
        self.image_size, self.augment, self.crop_prob, self.flip = image_size, augment, crop_prob, flip
        self.domains = list(self.index.class_names)
        self.labels = np.asarray(self.index.labels, dtype=np.int64)
        self._index_domains()

    def load(self, index: int, rng: np.random.Generator | None) -> torch.Tensor:
        """Image ``index`` as (3, size, size) in [-1, 1], transformed as the official loader does."""
        aug = rng if self.augment else None
        return read_square(self.root / self.index.files[index], self.image_size, aug, self.crop_prob, self.flip)


class DomainTrainingPairs:
    """Training samples: ``image``/``label`` (source), ``ref``/``ref2``/``ref_label`` (reference pair)."""

    def __init__(self, data: DomainView, seed: int = 0):
        self.data = data
        self.num_classes = data.num_classes
        # Each reference's partner: a fixed shuffle of its domain's files, as ReferenceDataset makes once.
        rng = np.random.default_rng(seed)
        self.partner = np.empty(len(data), dtype=np.int64)
        for members in data.by_domain:
            self.partner[members] = rng.permutation(members)

    def __len__(self) -> int:
        return len(self.data)

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        # The sampler's index only positions the sample in the stream; what is drawn comes from its seed.
        rng = rng if rng is not None else np.random.default_rng(index)
        source, ref = self.data.balanced_draw(rng), self.data.balanced_draw(rng)
        src_item = self.data.get(source, rng)
        return {"image": src_item["image"], "label": src_item["label"],
                "ref": self.data.load(ref, rng), "ref2": self.data.load(int(self.partner[ref]), rng),
                "ref_label": torch.tensor(int(self.data.labels[ref]), dtype=torch.long)}
