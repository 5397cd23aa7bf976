"""``cifar``: CIFAR-10 and CIFAR-100 in their python pickle format, read without running code.

The pickles are unpickled by a restricted unpickler that accepts only plain containers and numpy
arrays, so a tampered file cannot execute anything.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ganforge.data.images import DataError, resize_array, to_tensor

CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load '{module}.{name}' from a data file")
        if module.startswith("numpy.core"):  # numpy 2 renamed numpy.core to numpy._core
            try:
                return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core")), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)


def read_batch(path: Path) -> dict:
    """Unpickle one CIFAR batch file safely (bytes keys are turned into str)."""
    try:
        with open(path, "rb") as fh:
            raw = _SafeUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise DataError(f"'{path}' is not a CIFAR python batch file: {err}") from None
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def find_cifar_files(root: Path, split: str) -> tuple[list[Path], str]:
    """The batch files for ``split`` and the label key; accepts the extracted folder or its parent."""
    for base in (root, root / "cifar-10-batches-py", root / "cifar-100-python"):
        if split == "train" and all((base / f).is_file() for f in CIFAR10_TRAIN):
            return [base / f for f in CIFAR10_TRAIN], "labels"
        if split == "test" and (base / "test_batch").is_file():
            return [base / "test_batch"], "labels"
        if (base / split).is_file() and (base / "meta").is_file():
            return [base / split], "fine_labels"
    raise DataError(f"data.path: no CIFAR-10 ({', '.join(CIFAR10_TRAIN)} / test_batch) or CIFAR-100 "
                    f"(train / test + meta) python files for split '{split}' under '{root}'")


class CifarDataset:
    """All images of one split in memory as uint8 (N, 32, 32, 3); resized on access if asked."""

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 32, channels: int = 3,
                 flip: bool = False, classes: bool = True):
        files, label_key = find_cifar_files(Path(root), split)
        datas, labels = [], []
        for f in files:
            batch = read_batch(f)
            if "data" not in batch or label_key not in batch:
                raise DataError(f"'{f}': expected keys 'data' and '{label_key}', found {sorted(batch)}")
            datas.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(int(v) for v in batch[label_key])
        self.images = np.concatenate(datas).transpose(0, 2, 3, 1)  # NHWC
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.labels) != len(self.images):
            raise DataError(f"CIFAR files under '{root}' have {len(self.images)} images but {len(self.labels)} labels")
        self.image_size, self.channels, self.flip = image_size, channels, flip
        self.num_classes = int(self.labels.max()) + 1 if classes else 0

    def __len__(self) -> int:
        return len(self.images)

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        arr = self.images[index]
        if self.image_size != 32 or self.channels == 1:
            arr = resize_array(arr, self.image_size, self.channels)
        item = {"image": to_tensor(arr, self.image_size, "center", self.flip, rng)}
        if self.num_classes:
            item["label"] = torch.tensor(self.labels[index], dtype=torch.long)
        return item


def write_cifar(folder: Path, images: np.ndarray, labels: np.ndarray, split: str = "train") -> list[Path]:
    """Write uint8 (N, 32, 32, 3) images in CIFAR-10's python format (5 train batches or test_batch)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = CIFAR10_TRAIN if split == "train" else ["test_batch"]
    chunks = np.array_split(np.arange(len(images)), len(names))
    written = []
    for name, idx in zip(names, chunks):
        payload = {b"data": images[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1),
                   b"labels": [int(v) for v in labels[idx]], b"batch_label": name.encode()}
        with open(folder / name, "wb") as fh:
            pickle.dump(payload, fh, protocol=2)
        written.append(folder / name)
    return written
