"""The built-in datasets' registrations: each name, its typed config and its builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganforge.config import ConfigError, DataConfig, convert
from ganforge.data.celeba import CROP_SIZE, OFFICIAL_ATTRS, CelebADataset
from ganforge.data.cifar import CifarDataset
from ganforge.data.configs import (CelebAConfig, CelebaRafdConfig, CifarConfig, ClevrSvConfig, DomainsConfig,
                                   EmojiConfig, FashionMnistConfig, Hdf5Config, ImageFolderConfig, PororoSvConfig,
                                   RafdConfig, ShapesConfig)
from ganforge.data.domains import DomainFolderDataset
from ganforge.data.emoji import EmojiDataset
from ganforge.data.fashion_mnist import FashionMnistDataset
from ganforge.data.hdf5 import HDF5Dataset
from ganforge.data.image_folder import ImageFolderDataset
from ganforge.data.images import DataError
from ganforge.data.joint import JointDataset
from ganforge.data.shapes import ShapesDataset
from ganforge.data.shapes_domains import ShapesDomainDataset, validation_length
from ganforge.data.story import ClevrStoryDataset, PororoStoryDataset, ShapesStoryDataset
from ganforge.registry import get_dataset, register_dataset


def _need_path(cfg: Any) -> str:
    if not cfg.path:
        raise DataError(f"data.path is required for dataset '{cfg.name}' (e.g. data.path=/data/celeba)")
    return cfg.path


@register_dataset("shapes", ShapesConfig)
def _shapes(cfg: ShapesConfig, seed: int) -> ShapesDataset | ShapesStoryDataset | ShapesDomainDataset:
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


@register_dataset("image_folder", ImageFolderConfig)
def _image_folder(cfg: ImageFolderConfig, seed: int) -> ImageFolderDataset:
    return ImageFolderDataset(_need_path(cfg), image_size=cfg.image_size, channels=cfg.channels, classes=cfg.classes,
                              crop=cfg.crop, flip=cfg.flip, in_memory=cfg.in_memory, strict=cfg.strict,
                              crop_size=cfg.crop_size)


@register_dataset("domains", DomainsConfig)
def _domains(cfg: DomainsConfig, seed: int) -> DomainFolderDataset:
    # StarGAN v2's layout: data.path is a folder of domain sub-folders, or a folder holding train/ and
    # val/ (AFHQ, CelebA-HQ as distributed), from which data.split picks (test: val/).
    root = Path(_need_path(cfg))
    split_dir = root / ("train" if cfg.split == "train" else "val")
    if (root / "train").is_dir() and (root / "val").is_dir():
        root = split_dir
    return DomainFolderDataset(root, image_size=cfg.image_size, augment=cfg.split == "train",
                               crop_prob=cfg.crop_prob, flip=cfg.flip, strict=cfg.strict)


@register_dataset("celeba", CelebAConfig)
def _celeba(cfg: CelebAConfig, seed: int) -> CelebADataset:
    return CelebADataset(_need_path(cfg), tuple(cfg.selected_attrs) or OFFICIAL_ATTRS, cfg.attr_file,
                         image_size=cfg.image_size, crop_size=cfg.crop_size or CROP_SIZE, split=cfg.split,
                         test_split=cfg.test_split, flip=cfg.flip, channels=cfg.channels, strict=cfg.strict)


@register_dataset("rafd", RafdConfig)
def _rafd(cfg: RafdConfig, seed: int) -> ImageFolderDataset:
    # RaFD as StarGAN reads it: torchvision's ImageFolder layout, one sub-folder per expression.
    return ImageFolderDataset(_need_path(cfg), image_size=cfg.image_size, channels=cfg.channels, classes=True,
                              crop="center", flip=cfg.flip, in_memory=cfg.in_memory, strict=cfg.strict,
                              crop_size=cfg.crop_size)


@register_dataset("celeba_rafd", CelebaRafdConfig)
def _celeba_rafd(cfg: CelebaRafdConfig, seed: int) -> JointDataset:
    if not cfg.rafd_path:
        raise DataError("data.rafd_path is required for celeba_rafd (the RaFD folder, one sub-folder per class)")
    rafd = ImageFolderDataset(cfg.rafd_path, image_size=cfg.image_size, channels=cfg.channels, classes=True,
                              flip=cfg.flip, in_memory=cfg.in_memory, strict=cfg.strict, crop_size=cfg.rafd_crop_size)
    return JointDataset(_celeba(cfg, seed), rafd)


@register_dataset("clevr_sv", ClevrSvConfig)
def _clevr_sv(cfg: ClevrSvConfig, seed: int) -> ClevrStoryDataset:
    if cfg.story_range and len(cfg.story_range) != 2:
        raise DataError(f"data.story_range={cfg.story_range}: give [first, last] story ids (inclusive), or [] for all")
    return ClevrStoryDataset(_need_path(cfg), image_size=cfg.image_size,
                             story_range=tuple(cfg.story_range) if cfg.story_range else None,
                             in_memory=True, dict_file=cfg.attr_file)


@register_dataset("pororo_sv", PororoSvConfig)
def _pororo_sv(cfg: PororoSvConfig, seed: int) -> PororoStoryDataset:
    return PororoStoryDataset(_need_path(cfg), image_size=cfg.image_size, split=cfg.split, in_memory=cfg.in_memory)


@register_dataset("cifar", CifarConfig)
def _cifar(cfg: CifarConfig, seed: int) -> CifarDataset:
    return CifarDataset(_need_path(cfg), split=cfg.split, image_size=cfg.image_size, channels=cfg.channels,
                        flip=cfg.flip, classes=cfg.classes)


@register_dataset("fashion_mnist", FashionMnistConfig)
def _fashion_mnist(cfg: FashionMnistConfig, seed: int) -> FashionMnistDataset:
    return FashionMnistDataset(cfg.path, split=cfg.split, image_size=cfg.image_size, channels=cfg.channels,
                               fit=cfg.fit, flip=cfg.flip, classes=cfg.classes, fraction=cfg.fraction)


@register_dataset("emoji", EmojiConfig)
def _emoji(cfg: EmojiConfig, seed: int) -> EmojiDataset:
    if len(cfg.background) != 3 or not all(0 <= v <= 255 for v in cfg.background):
        raise ConfigError(f"data.background={cfg.background}: give an RGB colour such as [255, 255, 255]")
    return EmojiDataset(cfg.image_size, cfg.font, cfg.emoji_list, cfg.labels, cfg.groups, cfg.split,
                        tuple(cfg.background), cfg.view, cfg.flip, augment=cfg.view == "domains",
                        crop_prob=cfg.crop_prob)


@register_dataset("hdf5", Hdf5Config)
def _hdf5(cfg: Hdf5Config, seed: int) -> HDF5Dataset:
    return HDF5Dataset(_need_path(cfg), image_size=cfg.image_size, crop=cfg.crop, flip=cfg.flip, in_memory=cfg.in_memory)


def build_dataset(cfg: DataConfig, seed: int = 0) -> Any:
    """The dataset named by ``cfg.name``, from its typed config (see :func:`data_config`)."""
    return get_dataset(cfg.name).build(cfg, seed)


def data_config(name: str, **values: Any) -> DataConfig:
    """The typed config of dataset ``name`` with ``values``; a key that dataset does not read is an
    error naming the dataset and its keys (a preset's ``data:`` section is checked here too)."""
    spec = get_dataset(name)
    unknown = sorted(k for k in values if k not in spec.keys)
    if unknown:
        raise ConfigError(f"data.{unknown[0]}: dataset '{name}' does not read it. Its keys: {', '.join(spec.keys)}")
    return convert({"name": name, **values}, spec.config, "data")


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def class_names(data: dict[str, Any]) -> list[str] | None:
    """The class names of a run's data (its ``data`` config as plain data), cheaply and without
    reading images, for labelling pictures: shapes' class view, CIFAR-10, and class sub-folders that
    still exist on this machine. None where they are not known here (e.g. ImageNet's numeric ids)."""
    from ganforge.data.shapes import COLOR_NAMES, SHAPES

    name = data.get("name")
    if name == "shapes" and data.get("view") == "class":
        return [f"{color} {shape}" for shape in SHAPES for color in COLOR_NAMES]
    if name == "shapes" and data.get("view") == "domains":
        return list(SHAPES)
    if name == "cifar" and data.get("classes"):
        return list(CIFAR10_CLASSES)
    if name == "fashion_mnist" and data.get("classes"):
        from ganforge.data.fashion_mnist import CLASSES

        return list(CLASSES)
    if name == "emoji" and data.get("groups"):
        return list(data["groups"])
    root = data.get("path") or data.get("root")
    if name == "image_folder" and data.get("classes") and root and Path(root).is_dir():
        return _sub_folders(Path(root))
    if name == "domains" and root and Path(root).is_dir():  # train/ and val/, or the domains themselves
        train = Path(root) / "train"
        return _sub_folders(train if train.is_dir() else Path(root))
    return None


def _sub_folders(root: Path) -> list[str]:
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
