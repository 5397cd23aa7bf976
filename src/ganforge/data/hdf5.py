"""``hdf5``: decoded uint8 images in one HDF5 file, for fast loading of any dataset.

Layout: ``images`` uint8 (N, H, W, C), optional ``labels`` int64 (N,), attribute ``num_classes``.
The file is opened lazily in each process (h5py handles cannot cross a fork or spawn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.images import DataError, resize_array, tensor_to_array, to_tensor


class HDF5Dataset:
    """Images from an HDF5 file written by :func:`pack_hdf5` (or any file with the same layout)."""

    def __init__(self, path: str | Path, image_size: int | None = None, crop: str = "center", flip: bool = False):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"data.path: HDF5 file '{self.path}' does not exist")
        try:
            with h5py.File(self.path, "r") as f:
                if "images" not in f:
                    raise DataError(f"'{self.path}' has no 'images' dataset (found: {', '.join(f.keys()) or 'nothing'})")
                shape = f["images"].shape
                self.num_classes = int(f.attrs.get("num_classes", 0)) if "labels" in f else 0
        except OSError as err:
            raise DataError(f"'{self.path}' is not a readable HDF5 file: {err}") from None
        if len(shape) != 4 or shape[3] not in (1, 3):
            raise DataError(f"'{self.path}': 'images' must be uint8 (N, H, W, C) with C in 1 or 3, got {shape}")
        self.length, self.stored_size = shape[0], min(shape[1], shape[2])
        self.image_size = image_size or self.stored_size
        if self.image_size > self.stored_size:
            raise DataError(f"'{self.path}' holds {self.stored_size}px images; data.image_size={self.image_size} "
                            f"is larger. Re-pack at the size you train at.")
        self.crop, self.flip = crop, flip
        self._file: Any = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None  # reopened in the worker
        return state

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        if self._file is None:
            import h5py

            self._file = h5py.File(self.path, "r")
        arr = self._file["images"][index]
        if self.image_size != self.stored_size:
            arr = resize_array(arr, self.image_size)
        item = {"image": to_tensor(arr, self.image_size, self.crop, self.flip, rng)}
        if self.num_classes:
            item["label"] = torch.tensor(int(self._file["labels"][index]), dtype=torch.long)
        return item


def pack_hdf5(dataset: Any, out: Path, progress: bool = True) -> Path:
    """Decode every image of ``dataset`` (center view, no flip) into ``out``; written atomically."""
    import h5py
    from tqdm import tqdm

    n = len(dataset)
    first = dataset.get(0)["image"]
    c, h, w = first.shape
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(tmp, "w") as f:
        images = f.create_dataset("images", (n, h, w, c), dtype=np.uint8, chunks=(1, h, w, c))
        labels = f.create_dataset("labels", (n,), dtype=np.int64) if dataset.num_classes else None
        f.attrs["num_classes"] = dataset.num_classes
        for i in tqdm(range(n), desc=f"packing {out.name}", disable=not progress):
            item = dataset.get(i)
            images[i] = tensor_to_array(item["image"])
            if labels is not None:
                labels[i] = int(item["label"])
    tmp.replace(out)
    return out
