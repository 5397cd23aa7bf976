"""``hdf5``: decoded uint8 images in one HDF5 file, for fast loading of any dataset.

Layout: ``images`` uint8 (N, H, W, C), optional ``labels`` int64 (N,), attribute ``num_classes``.
BigGAN-PyTorch's ``make_hdf5.py`` packs (``imgs`` uint8 (N, 3, H, W) and ``labels``, e.g.
``ILSVRC128.hdf5``) are read as they are; their class count is the largest label + 1.
The file is opened lazily in each process (h5py handles cannot cross a fork or spawn); with
``in_memory`` every image is read once into RAM (BigGAN's ``--load_in_mem``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.images import DataError, resize_array, tensor_to_array, to_tensor


class HDF5Dataset:
    """Images from an HDF5 file written by :func:`pack_hdf5` (or any file with the same layout)."""

    def __init__(self, path: str | Path, image_size: int | None = None, crop: str = "center", flip: bool = False,
                 in_memory: bool = False):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"data.path: HDF5 file '{self.path}' does not exist")
        try:
            with h5py.File(self.path, "r") as f:
                # ours: images (N, H, W, C); BigGAN-PyTorch's: imgs (N, 3, H, W)
                self.key = "images" if "images" in f else "imgs" if "imgs" in f else None
                if self.key is None:
                    raise DataError(f"'{self.path}' has no 'images' (or BigGAN's 'imgs') dataset (found: "
                                    f"{', '.join(f.keys()) or 'nothing'})")
                shape = f[self.key].shape
                self.num_classes = 0
                if "labels" in f:
                    self.num_classes = int(f.attrs.get("num_classes", 0)) or int(np.max(f["labels"][:])) + 1
        except OSError as err:
            raise DataError(f"'{self.path}' is not a readable HDF5 file: {err}") from None
        self.channels_first = self.key == "imgs"
        channel_axis = 1 if self.channels_first else 3
        if len(shape) != 4 or shape[channel_axis] not in (1, 3):
            layout = "(N, C, H, W)" if self.channels_first else "(N, H, W, C)"
            raise DataError(f"'{self.path}': '{self.key}' must be uint8 {layout} with C in 1 or 3, got {shape}")
        spatial = shape[2:] if self.channels_first else shape[1:3]
        self.length, self.stored_size = shape[0], min(spatial)
        self.image_size = image_size or self.stored_size
        if self.image_size > self.stored_size:
            raise DataError(f"'{self.path}' holds {self.stored_size}px images; data.image_size={self.image_size} "
                            f"is larger. Re-pack at the size you train at.")
        self.crop, self.flip = crop, flip
        self._file: Any = None
        self._memory: dict[str, np.ndarray] | None = None
        if in_memory:
            with h5py.File(self.path, "r") as f:
                self._memory = {self.key: f[self.key][:]}
                if self.num_classes:
                    self._memory["labels"] = f["labels"][:]

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None  # reopened in the worker
        return state

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """Item ``index`` (``rng`` draws the augmentations); the file opens lazily, once per worker."""
        if self._memory is None and self._file is None:
            import h5py

            self._file = h5py.File(self.path, "r")
        source = self._memory if self._memory is not None else self._file
        arr = source[self.key][index]
        if self.channels_first:
            arr = np.ascontiguousarray(arr.transpose(1, 2, 0))
        if self.image_size != self.stored_size:
            arr = resize_array(arr, self.image_size)
        item = {"image": to_tensor(arr, self.image_size, self.crop, self.flip, rng)}
        if self.num_classes:
            item["label"] = torch.tensor(int(source["labels"][index]), dtype=torch.long)
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
