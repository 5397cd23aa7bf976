"""``fashion_mnist``: Zalando's Fashion-MNIST from its original IDX files (gzipped or not).

60,000 training and 10,000 test images of 28 x 28 grey pixels in ten classes. Debian ships the four
files in ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, the default ``data.path``).
Images are padded with black to 32 x 32 (the usual way to give the 28 px digits of MNIST a power of
two; ``data.fit=pad``) or resized (``data.fit=resize``), then resized to ``data.image_size`` if that is
another size; 1 channel, or the grey repeated to 3.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import torch

from ganforge.data.images import DataError, resize_array, to_tensor

DEFAULT_PATH = "/usr/share/datasets/fashion-mnist"
INSTALL = "apt-get install dataset-fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_TYPES = {0x08: np.uint8}  # the only element type the Fashion-MNIST files use
SUBSET_SEED = 20170825  # the fixed order a data.fraction subset is drawn in (Fashion-MNIST's release date)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``*.gz`` or plain) as a numpy array; errors name the file and what is wrong."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as err:
        raise DataError(f"'{path}' cannot be read as an IDX file: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"'{path}' is not an IDX file of unsigned bytes (its first bytes are {data[:4].hex()})")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(dims))
    start = 4 + 4 * dims
    if len(data) - start != math.prod(shape):
        raise DataError(f"'{path}' promises {shape} bytes of data but holds {len(data) - start}: truncated?")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)


def find_file(root: Path, stem: str) -> Path:
    """``root/stem.gz`` or ``root/stem``; the error names the folder and the install command."""
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"data.path: no '{stem}.gz' (or '{stem}') under '{root}'. Fashion-MNIST's four IDX files are "
                    f"installed to {DEFAULT_PATH} by `{INSTALL}`, or give data.path=FOLDER holding them")


def read_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,) of ``split`` (train, test or all)."""
    if split == "all":
        parts = [read_split(root, s) for s in ("train", "test")]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    image_stem, label_stem = FILES[split]
    images, labels = read_idx(find_file(root, image_stem)), read_idx(find_file(root, label_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"Fashion-MNIST files under '{root}' do not match: images {images.shape}, labels {labels.shape}")
    return images, labels.astype(np.int64)


def class_subset(labels: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of a ``fraction`` of each class (at least one image each), drawn in a fixed order, sorted:
    the same subset on every machine and for every seed, so scarce-data runs compare."""
    if fraction >= 1.0:
        return np.arange(len(labels))
    order = np.random.default_rng(SUBSET_SEED).permutation(len(labels))
    keep = []
    for c in np.unique(labels):
        members = order[labels[order] == c]
        keep.append(members[:max(1, math.ceil(fraction * len(members)))])
    return np.sort(np.concatenate(keep))


class FashionMnistDataset:
    """One split of Fashion-MNIST in memory as uint8 (N, 28, 28); shaped on access."""

    def __init__(self, root: str | Path = DEFAULT_PATH, split: str = "train", image_size: int = 32, channels: int = 1,
                 fit: str = "pad", flip: bool = False, classes: bool = False, fraction: float = 1.0):
        images, labels = read_split(Path(root), split)
        keep = class_subset(labels, fraction)
        self.images, self.labels = images[keep], labels[keep]
        self.image_size, self.channels, self.fit, self.flip = image_size, channels, fit, flip
        self.num_classes = len(CLASSES) if classes else 0
        self.class_names = list(CLASSES)

    def __len__(self) -> int:
        return len(self.images)

    def image_array(self, index: int) -> np.ndarray:
        """uint8 (image_size, image_size, channels) image ``index``: padded or resized as ``fit`` says."""
        arr = self.images[index]
        if self.fit == "pad":
            arr = np.pad(arr, 2)  # 28 -> 32, black as the images' own background
        arr = arr[:, :, None]
        if arr.shape[0] != self.image_size:
            arr = resize_array(arr, self.image_size, 1)
        return np.repeat(arr, self.channels, axis=2) if self.channels == 3 else arr

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        item = {"image": to_tensor(self.image_array(index), self.image_size, "center", self.flip, rng)}
        if self.num_classes:
            item["label"] = torch.tensor(self.labels[index], dtype=torch.long)
        return item
