"""Datasets (each returns dicts of named tensors) and the loader that feeds the trainer.

Every dataset has ``__len__``, ``get(index, rng) -> {"image": (C,H,W) in [-1,1], "label"?: long}``
and ``num_classes`` (0 when unlabelled).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from ganforge.config import DataConfig
from ganforge.data.celeba import CROP_SIZE, OFFICIAL_ATTRS, CelebADataset, write_celeba
from ganforge.data.cifar import CifarDataset, write_cifar
from ganforge.data.domains import DomainFolderDataset
from ganforge.data.hdf5 import HDF5Dataset, pack_hdf5
from ganforge.data.image_folder import ImageFolderDataset
from ganforge.data.images import DataError, array_to_pil, tensor_to_array
from ganforge.data.joint import JointDataset
from ganforge.data.sampler import InfiniteShardedSampler, SeededDataset
from ganforge.data.shapes import ShapesDataset
from ganforge.data.shapes_domains import ShapesDomainDataset, validation_length, write_domain_folders
from ganforge.data.story import ClevrStoryDataset, PororoStoryDataset, ShapesStoryDataset, write_clevr_sv
from ganforge.registry import get_dataset_builder, register_dataset

__all__ = ["DataError", "build_dataset", "build_loader", "BatchStream", "auto_num_workers", "write_dataset",
           "ShapesDataset", "ImageFolderDataset", "CifarDataset", "HDF5Dataset", "CelebADataset"]


def _need_path(cfg: DataConfig) -> str:
    if not cfg.path:
        raise DataError(f"data.path is required for dataset '{cfg.name}' (e.g. data.path=/data/celeba)")
    return cfg.path


@register_dataset("shapes")
def _shapes(cfg: DataConfig, seed: int) -> ShapesDataset | ShapesStoryDataset | ShapesDomainDataset:
    # The dataset's content is fixed (seed 0) so every run and the oracle see the same images;
    # the run's seed only changes the order and the augmentation.
    if cfg.view == "domains":
        split = "test" if cfg.split == "test" else "train"
        length = validation_length(cfg.length) if split == "test" else cfg.length
        return ShapesDomainDataset(length=length, image_size=cfg.image_size, split=split,
                                   augment=cfg.split == "train", crop_prob=cfg.crop_prob, flip=cfg.flip)
    if cfg.view == "story":
        return ShapesStoryDataset(length=cfg.length, image_size=cfg.image_size, video_len=cfg.video_len, seed=0)
    return ShapesDataset(length=cfg.length, image_size=cfg.image_size, channels=cfg.channels, view=cfg.view,
                         max_objects=cfg.max_objects, seed=0, flip=cfg.flip,
                         attributes=tuple(cfg.selected_attrs) or None)


@register_dataset("image_folder")
def _image_folder(cfg: DataConfig, seed: int) -> ImageFolderDataset:
    return ImageFolderDataset(_need_path(cfg), image_size=cfg.image_size, channels=cfg.channels, classes=cfg.classes,
                              crop=cfg.crop, flip=cfg.flip, in_memory=cfg.in_memory, strict=cfg.strict,
                              crop_size=cfg.crop_size)


@register_dataset("domains")
def _domains(cfg: DataConfig, seed: int) -> DomainFolderDataset:
    # StarGAN v2's layout: data.path is a folder of domain sub-folders, or a folder holding train/ and
    # val/ (AFHQ, CelebA-HQ as distributed), from which data.split picks (test: val/).
    root = Path(_need_path(cfg))
    split_dir = root / ("train" if cfg.split == "train" else "val")
    if (root / "train").is_dir() and (root / "val").is_dir():
        root = split_dir
    return DomainFolderDataset(root, image_size=cfg.image_size, augment=cfg.split == "train",
                               crop_prob=cfg.crop_prob, flip=cfg.flip, strict=cfg.strict)


@register_dataset("celeba")
def _celeba(cfg: DataConfig, seed: int) -> CelebADataset:
    return CelebADataset(_need_path(cfg), tuple(cfg.selected_attrs) or OFFICIAL_ATTRS, cfg.attr_file,
                         image_size=cfg.image_size, crop_size=cfg.crop_size or CROP_SIZE, split=cfg.split,
                         test_split=cfg.test_split, flip=cfg.flip, channels=cfg.channels, strict=cfg.strict)


@register_dataset("rafd")
def _rafd(cfg: DataConfig, seed: int) -> ImageFolderDataset:
    # RaFD as StarGAN reads it: torchvision's ImageFolder layout, one sub-folder per expression.
    return ImageFolderDataset(_need_path(cfg), image_size=cfg.image_size, channels=cfg.channels, classes=True,
                              crop="center", flip=cfg.flip, in_memory=cfg.in_memory, strict=cfg.strict,
                              crop_size=cfg.crop_size)


@register_dataset("celeba_rafd")
def _celeba_rafd(cfg: DataConfig, seed: int) -> JointDataset:
    if not cfg.rafd_path:
        raise DataError("data.rafd_path is required for celeba_rafd (the RaFD folder, one sub-folder per class)")
    rafd = ImageFolderDataset(cfg.rafd_path, image_size=cfg.image_size, channels=cfg.channels, classes=True,
                              flip=cfg.flip, in_memory=cfg.in_memory, strict=cfg.strict, crop_size=cfg.rafd_crop_size)
    return JointDataset(_celeba(cfg, seed), rafd)


@register_dataset("clevr_sv")
def _clevr_sv(cfg: DataConfig, seed: int) -> ClevrStoryDataset:
    if cfg.story_range and len(cfg.story_range) != 2:
        raise DataError(f"data.story_range={cfg.story_range}: give [first, last] story ids (inclusive), or [] for all")
    return ClevrStoryDataset(_need_path(cfg), image_size=cfg.image_size,
                             story_range=tuple(cfg.story_range) if cfg.story_range else None,
                             in_memory=True, dict_file=cfg.attr_file)


@register_dataset("pororo_sv")
def _pororo_sv(cfg: DataConfig, seed: int) -> PororoStoryDataset:
    return PororoStoryDataset(_need_path(cfg), image_size=cfg.image_size, split=cfg.split, in_memory=cfg.in_memory)


@register_dataset("cifar")
def _cifar(cfg: DataConfig, seed: int) -> CifarDataset:
    return CifarDataset(_need_path(cfg), split=cfg.split, image_size=cfg.image_size, channels=cfg.channels,
                        flip=cfg.flip, classes=cfg.view == "class" or cfg.classes)


@register_dataset("hdf5")
def _hdf5(cfg: DataConfig, seed: int) -> HDF5Dataset:
    return HDF5Dataset(_need_path(cfg), image_size=cfg.image_size, crop=cfg.crop, flip=cfg.flip, in_memory=cfg.in_memory)


def build_dataset(cfg: DataConfig, seed: int = 0) -> Any:
    """The dataset named by ``cfg.name``."""
    return get_dataset_builder(cfg.name)(cfg, seed)


def auto_num_workers() -> int:
    """Worker processes that are safe and useful here.

    0 where a worker process would break: an interactive session under the ``spawn`` start method
    (Windows, macOS) cannot re-import ``__main__``. Otherwise one core is left for the training
    step, at most 4 workers.
    """
    import multiprocessing as mp

    main = sys.modules.get("__main__")
    interactive = main is None or not getattr(main, "__file__", None)
    if interactive and mp.get_start_method(allow_none=True) in (None, "spawn", "forkserver") and sys.platform != "linux":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


WORKER_SIGTERM_GRACE_S = 600  # longer than a training step plus a checkpoint at the official sizes on a CPU


def _start_sigterm_grace(signum: int, frame: Any) -> None:
    # The grace counts from the first SIGTERM: a later one (the DataLoader's own terminate(), a second
    # scheduler signal) must not push the end further out.
    pending = signal.alarm(WORKER_SIGTERM_GRACE_S)
    if pending:  # one was already running: put it back as it was
        signal.alarm(pending)


def _worker_init(worker_id: int) -> None:
    # Keep a worker from oversubscribing the cores that the training step is using.
    torch.set_num_threads(1)
    # A preemption SIGTERM often reaches the whole process group (a scheduler, `kill -- -PGID`). The
    # main process finishes its step and writes a checkpoint first; a worker that died on the same
    # signal would make the DataLoader raise in the middle of that step. So a worker outlives SIGTERM
    # for WORKER_SIGTERM_GRACE_S (the main process closes it long before), and then SIGALRM's default
    # action ends it even if it is stuck in C code. (Ctrl-C needs nothing: PyTorch's worker loop exits
    # cleanly on KeyboardInterrupt, which the DataLoader does not count as a failure.)
    if hasattr(signal, "alarm"):  # POSIX; on Windows a terminated worker is ended by the OS as before
        signal.signal(signal.SIGTERM, _start_sigterm_grace)


class BatchStream:
    """An endless iterator of batches that knows its position in the global sample stream.

    ``position`` counts global samples consumed by the trainer (not prefetched by workers), so a
    checkpoint records exactly where to restart.
    """

    def __init__(self, dataset: Any, local_batch: int, world_size: int, rank: int, seed: int, num_workers: int,
                 pin_memory: bool, start: int = 0, mp_context: str | None = None):
        self.dataset, self.local_batch, self.world_size = dataset, local_batch, world_size
        self.global_batch = local_batch * world_size
        self.position = start
        sampler = InfiniteShardedSampler(len(dataset), self.global_batch, rank, world_size, seed, start=start)
        kwargs: dict[str, Any] = {}
        if num_workers > 0:
            kwargs = dict(persistent_workers=True, prefetch_factor=4, worker_init_fn=_worker_init,
                          multiprocessing_context=mp_context)
        self.loader = DataLoader(SeededDataset(dataset), batch_size=local_batch, sampler=sampler,
                                 num_workers=num_workers, pin_memory=pin_memory, drop_last=False, **kwargs)
        self._it: Iterator | None = None

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            self._it = iter(self.loader)
        batch = next(self._it)
        self.position += self.global_batch
        return batch

    def close(self) -> None:
        # Drops the iterator so persistent workers exit now, not at interpreter shutdown.
        self._it = None


def build_loader(dataset: Any, cfg: DataConfig, local_batch: int, world_size: int = 1, rank: int = 0,
                 seed: int = 0, start: int = 0, device: torch.device | None = None) -> BatchStream:
    """A BatchStream over ``dataset`` with ``cfg.num_workers`` (``auto`` picks a safe number)."""
    workers = auto_num_workers() if cfg.num_workers == "auto" else int(cfg.num_workers)
    if cfg.in_memory or isinstance(dataset, CifarDataset):
        workers = 0 if cfg.num_workers == "auto" else workers  # nothing to decode: workers only add IPC
    pin = device is not None and device.type == "cuda"
    return BatchStream(dataset, local_batch, world_size, rank, seed, workers, pin, start)


def write_dataset(dataset: Any, fmt: str, out: Path, progress: bool = True) -> Path:
    """Write ``dataset`` to disk as ``image_folder`` (PNG, class sub-folders when labelled), ``cifar``
    (32x32 python batches), ``hdf5``, ``celeba`` (attribute file; the shapes attributes view) or
    ``clevr_sv`` (the shapes story view) or ``domains`` (the shapes domains view's train split, with a
    test split of a tenth of its size as ``val/``).
    Lets the real loaders be exercised by the built-in data."""
    from tqdm import tqdm

    n = len(dataset)

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
            folder = out / f"class_{label:03d}" if dataset.num_classes else out
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
