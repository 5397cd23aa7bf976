"""The typed config of every built-in dataset: the keys each one reads, with their defaults.

Each dataset registers its class with its builder (``data/builders.py``), so ``data.KEY`` is checked
against the chosen dataset's keys: a key it does not use is an error that lists the keys it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ganforge.config import DataConfig, bounded, positive

Split = Literal["train", "test", "all"]


@dataclass
class FileImagesConfig(DataConfig):
    """What every dataset of image files reads."""

    path: str | None = None  # the folder or file (required)
    flip: bool = False  # random horizontal flip
    strict: bool = False  # fail on the first unreadable file instead of skipping it


@dataclass
class ShapesConfig(DataConfig):
    """The built-in procedural shapes (no files): a view for every family."""

    # which labels come along (story: objects added one per frame; domains: domain = shape, style =
    # colour and texture)
    view: Literal["unconditional", "class", "attributes", "story", "domains"] = "unconditional"
    length: int = positive(20000)  # distinct images (stories; the domains view's test split: a tenth)
    max_objects: int = bounded(2, ge=1, le=4)  # objects per image (unconditional view)
    channels: Literal[1, 3] = 3
    flip: bool = False
    split: Split = "train"  # domains view: train (augmented) or test
    selected_attrs: list[str] = field(default_factory=list)  # attributes view: the labels (empty: all five)
    video_len: int = bounded(4, ge=1, le=4)  # story view: frames per story
    crop_prob: float = bounded(0.5, ge=0.0, le=1.0)  # domains view: chance of the random resized crop


@dataclass
class ImageFolderConfig(FileImagesConfig):
    """Every image under a folder, recursively."""

    channels: Literal[1, 3] = 3
    classes: bool = False  # first-level sub-folders are class labels
    crop: Literal["center", "random"] = "center"
    crop_size: int | None = None  # center crop at full resolution before resizing
    in_memory: bool = False  # decode every image once and keep uint8 tensors in RAM


@dataclass
class RafdConfig(FileImagesConfig):
    """RaFD as StarGAN reads it: one sub-folder per expression."""

    channels: Literal[1, 3] = 3
    crop_size: int | None = None
    in_memory: bool = False


@dataclass
class CelebAConfig(FileImagesConfig):
    """CelebA with its attribute file, split as StarGAN splits it."""

    channels: Literal[1, 3] = 3
    selected_attrs: list[str] = field(default_factory=list)  # the labels (empty: the official five)
    attr_file: str | None = None  # default: path/list_attr_celeba.txt
    crop_size: int | None = None  # default: the official 178
    split: Split = "train"
    test_split: Literal["official", "exact"] = "official"  # official: 1,999 test images as the code does


@dataclass
class CelebaRafdConfig(CelebAConfig):
    """StarGAN's joint training: CelebA at ``path`` and RaFD at ``rafd_path``."""

    rafd_path: str | None = None
    rafd_crop_size: int = positive(256)
    in_memory: bool = False


@dataclass
class DomainsConfig(FileImagesConfig):
    """StarGAN v2's domain folders (``train/`` and ``val/``, or one folder of domains)."""

    split: Split = "train"  # test: val/
    crop_prob: float = bounded(0.5, ge=0.0, le=1.0)  # chance of the random resized crop, as --prob


@dataclass
class ClevrSvConfig(DataConfig):
    """StoryGAN's CLEVR-SV stories."""

    path: str | None = None
    story_range: list[int] = field(default_factory=list)  # [first, last] story ids kept (empty: all)
    attr_file: str | None = None  # the description dictionary (default: CLEVR_dict.npy beside the images)


@dataclass
class PororoSvConfig(DataConfig):
    """StoryGAN's Pororo-SV stories."""

    path: str | None = None
    split: Split = "train"
    in_memory: bool = False


@dataclass
class CifarConfig(DataConfig):
    """CIFAR-10/100 in the python format."""

    path: str | None = None
    channels: Literal[1, 3] = 3
    flip: bool = False
    classes: bool = False  # keep the labels
    split: Split = "train"


@dataclass
class FashionMnistConfig(DataConfig):
    """Fashion-MNIST's IDX files (Debian: dataset-fashion-mnist)."""

    image_size: int = positive(32)
    path: str = "/usr/share/datasets/fashion-mnist"
    channels: Literal[1, 3] = 1  # grey, or the grey repeated to RGB
    fit: Literal["pad", "resize"] = "pad"  # 28 -> 32 px: black borders (the usual way), or a resize
    classes: bool = False  # keep the ten labels (class-conditional models)
    split: Split = "train"
    fraction: float = bounded(1.0, gt=0.0, le=1.0)  # a fixed per-class subset, for small-data runs
    flip: bool = False


@dataclass
class EmojiConfig(DataConfig):
    """Noto Color Emoji bitmaps labelled by Unicode's emoji groups (Debian: fonts-noto-color-emoji, unicode-data)."""

    image_size: int = positive(64)
    font: str = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
    emoji_list: str = "/usr/share/unicode/emoji/emoji-test.txt"
    labels: Literal["group", "subgroup"] = "group"
    groups: list[str] = field(default_factory=list)  # the groups (or subgroups) kept, in order; empty: all
    view: Literal["class", "domains"] = "class"  # classes for conditional models, or StarGAN v2 domains
    split: Split = "train"
    background: list[int] = field(default_factory=lambda: [255, 255, 255])  # RGB behind the emoji
    flip: bool = False
    crop_prob: float = bounded(0.5, ge=0.0, le=1.0)  # domains view: chance of the random resized crop


@dataclass
class Hdf5Config(DataConfig):
    """Decoded uint8 images packed by `ganforge data pack`, or BigGAN-PyTorch's packs."""

    path: str | None = None
    crop: Literal["center", "random"] = "center"
    flip: bool = False
    in_memory: bool = False
