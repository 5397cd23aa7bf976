"""Writing a dataset to disk in a real format, so the real loaders are exercised by the built-in data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.celeba import write_celeba
from ganforge.data.cifar import write_cifar
from ganforge.data.hdf5 import pack_hdf5
from ganforge.data.images import DataError, array_to_pil, tensor_to_array
from ganforge.data.shapes_domains import ShapesDomainDataset, validation_length, write_domain_folders
from ganforge.data.story import write_clevr_sv


def write_dataset(dataset: Any, fmt: str, out: Path, progress: bool = True, limit: int | None = None) -> Path:
    """Write ``dataset`` to disk as ``image_folder`` (PNG, class sub-folders when labelled), ``cifar``
    (32x32 python batches), ``hdf5``, ``celeba`` (attribute file; the shapes attributes view) or
    ``clevr_sv`` (the shapes story view) or ``domains`` (the shapes domains view's train split, with a
    test split of a tenth of its size as ``val/``).
    Lets the real loaders be exercised by the built-in data. ``limit``: at most that many images
    (image_folder); labelled images go to a sub-folder per class, named by the class where the dataset
    names its classes."""
    from tqdm import tqdm

    n = len(dataset) if limit is None else min(limit, len(dataset))

    def uint8(i: int) -> tuple[np.ndarray, int]:
        item = dataset.get(i)
        return tensor_to_array(item["image"]), int(item.get("label", torch.tensor(0)))

    if fmt == "clevr_sv":
        return write_clevr_sv(dataset, out, progress)
    if fmt == "domains" or isinstance(dataset, ShapesDomainDataset):
        if not isinstance(dataset, ShapesDomainDataset) or fmt != "domains":
            raise DataError("the domains format holds the shapes domains view: write with --view domains --format domains")
        val = ShapesDomainDataset(validation_length(len(dataset)), dataset.image_size, split="test", augment=False)
        return write_domain_folders(dataset, val, out, progress)
    if hasattr(dataset, "video_len"):
        raise DataError(f"stories are written in the clevr_sv format, not '{fmt}'")
    if fmt == "hdf5":
        return pack_hdf5(dataset, out, progress)
    if fmt == "celeba":
        return write_celeba(dataset, out, progress)
    if fmt == "image_folder":
        for i in tqdm(range(n), desc="writing PNGs", disable=not progress):
            arr, label = uint8(i)
            folder = out / class_folder(dataset, label) if dataset.num_classes else out
            folder.mkdir(parents=True, exist_ok=True)
            array_to_pil(arr).save(folder / f"{i:06d}.png")
        return out
    if fmt == "cifar":
        if getattr(dataset, "image_size", 32) != 32:
            raise DataError("the cifar format holds 32x32 images; write with --image-size 32")
        pairs = [uint8(i) for i in tqdm(range(n), desc="rendering", disable=not progress)]
        images = np.stack([p[0] for p in pairs])
        if images.shape[3] == 1:
            images = np.repeat(images, 3, axis=3)
        write_cifar(out, images, np.asarray([p[1] for p in pairs]))
        return out
    raise DataError(f"format '{fmt}' is not one of image_folder, cifar, hdf5, celeba, clevr_sv, domains")


def class_folder(dataset: Any, label: int) -> str:
    """The sub-folder of class ``label``: its name made file-safe ("T-shirt/top" -> "T-shirt_top"), or
    ``class_NNN`` for a dataset that does not name its classes."""
    names = getattr(dataset, "class_names", None)
    if not names:
        return f"class_{label:03d}"
    return "".join(ch if ch.isalnum() or ch in "-_.& " else "_" for ch in names[label]).strip() or f"class_{label:03d}"
