"""``celeba``: images with CelebA's attribute file (``list_attr_celeba.txt``), as StarGAN reads them.

The attribute file has the image count on its first line, the 40 attribute names on the second,
then one row per image: the file name and a 1/-1 value per attribute. ``selected_attrs`` picks the
attributes that become the label vector (1 -> 1.0, -1 -> 0.0).

The train/test split is StarGAN's: the rows are shuffled with Python's ``random.seed(1234)`` and the
first ones go to test. The official code tests ``(i + 1) < 2000``, so its test split has 1,999
images (``test_split: official``, the default, for comparable numbers); ``test_split: exact`` puts the
first 2,000 there, as the paper says.

Preprocessing follows the official loader: center crop ``crop_size`` (178 for aligned CelebA) at full
resolution, resize to ``image_size``, random horizontal flip on the train split.
"""

from __future__ import annotations

import difflib
import logging
import random
from pathlib import Path

import numpy as np
import torch

from ganforge.data.images import DataError, array_to_pil, decode_file, tensor_to_array, to_tensor

log = logging.getLogger(__name__)

OFFICIAL_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_COLORS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")  # exclusive, as StarGAN treats them
CROP_SIZE = 178  # the official center crop of aligned CelebA (178x218)
SPLIT_SEED = 1234
TEST_SIZE = 2000


def find_image_dir(root: Path) -> Path:
    """The folder that holds the images: ``images/`` or ``img_align_celeba/`` under ``root``, else ``root``."""
    for name in ("images", "img_align_celeba"):
        if (root / name).is_dir():
            return root / name
    return root


def read_attr_file(path: Path, selected: tuple[str, ...]) -> tuple[list[str], list[str], np.ndarray]:
    """(all attribute names, file names in file order, (N, len(selected)) 0/1 array).

    Errors name the file and line: a missing file, a selected attribute the header lacks (with the
    closest name), a row with the wrong number of values or a value other than 1/-1, a row count
    other than the count line's."""
    if not path.is_file():
        raise DataError(f"CelebA attribute file '{path}' does not exist (set data.attr_file, or put "
                        f"list_attr_celeba.txt in data.path)")
    lines = [line.rstrip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    if len(lines) < 3:
        raise DataError(f"'{path}' is not a CelebA attribute file: expected a count line, a line of attribute "
                        f"names and one row per image")
    names = lines[1].split()
    missing = [a for a in selected if a not in names]
    if missing:
        hints = [f"'{a}'" + (f" (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(a, names, 1)) else "")
                 for a in missing]
        raise DataError(f"data.selected_attrs: {', '.join(hints)} not in the header of '{path}'. "
                        f"Its attributes: {' '.join(names)}")
    columns = [names.index(a) for a in selected]
    files, rows = [], []
    for lineno, line in enumerate(lines[2:], start=3):
        if not line:
            continue
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise DataError(f"'{path}' line {lineno}: expected a file name and {len(names)} values, got "
                            f"{len(parts) - 1} values")
        values = [parts[1 + c] for c in columns]
        if any(v not in ("1", "-1") for v in values):
            raise DataError(f"'{path}' line {lineno}: attribute values must be 1 or -1: {line[:120]}")
        files.append(parts[0])
        rows.append([v == "1" for v in values])
    declared = lines[0].strip()
    if declared.isdigit() and int(declared) != len(files):
        # A truncated or hand-edited file would silently change StarGAN's shuffled split.
        raise DataError(f"'{path}' line 1 declares {int(declared)} images but the file has {len(files)} rows "
                        f"(truncated or edited?); fix the count line or restore the file")
    return names, files, np.asarray(rows, dtype=np.float32).reshape(len(files), len(selected))


def official_split(count: int, split: str, rule: str = "official") -> list[int]:
    """Row indices (file order) of StarGAN's ``split`` (``train``/``test``/``all``) over ``count`` rows.

    The official loader shuffles the list of lines; shuffling the row indices with the same seed
    gives the same permutation."""
    if split == "all":
        return list(range(count))
    order = list(range(count))
    random.Random(SPLIT_SEED).shuffle(order)
    n_test = TEST_SIZE - 1 if rule == "official" else TEST_SIZE
    return order[:n_test] if split == "test" else order[n_test:]


class CelebADataset:
    """CelebA-format images with ``selected_attrs`` labels; items are ``{"image", "attrs"}``."""

    def __init__(self, root: str | Path, selected_attrs: tuple[str, ...] = OFFICIAL_ATTRS,
                 attr_file: str | Path | None = None, image_size: int = 128, crop_size: int = CROP_SIZE,
                 split: str = "train", test_split: str = "official", flip: bool = True, channels: int = 3,
                 strict: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"data.path: '{self.root}' is not a folder (expected a CelebA folder with "
                            f"list_attr_celeba.txt and images/ or img_align_celeba/)")
        if not selected_attrs:
            raise DataError("data.selected_attrs is empty; name at least one attribute, e.g. [Black_Hair, Male]")
        self.attr_names = tuple(selected_attrs)
        self.exclusive_attrs = tuple(a for a in self.attr_names if a in HAIR_COLORS)
        self.image_dir = find_image_dir(self.root)
        path = Path(attr_file) if attr_file else self.root / "list_attr_celeba.txt"
        _, files, labels = read_attr_file(path, self.attr_names)
        rows = official_split(len(files), split, test_split)
        present = [r for r in rows if (self.image_dir / files[r]).is_file()]
        if len(present) < len(rows):
            kept = set(present)
            absent = next(files[r] for r in rows if r not in kept)
            message = (f"{len(rows) - len(present)} of {len(rows)} images listed in '{path}' are missing from "
                       f"'{self.image_dir}' (first: '{absent}')")
            if strict or not present:
                raise DataError(message)
            log.warning("%s; they are skipped", message)
        self.files = [files[r] for r in present]
        self.labels = torch.from_numpy(labels[present])
        self.image_size, self.crop_size, self.channels = image_size, crop_size, channels
        self.flip, self.split = flip and split == "train", split
        self.num_classes = 0

    def __len__(self) -> int:
        return len(self.files)

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        path = self.image_dir / self.files[index]
        try:
            arr = decode_file(path, self.channels, self.image_size, self.crop_size)
        except Exception as err:
            raise DataError(f"cannot decode CelebA image '{path}': {type(err).__name__}: {err}") from None
        return {"image": to_tensor(arr, self.image_size, "center", self.flip, rng), "attrs": self.labels[index]}


def write_celeba(dataset, out: Path, progress: bool = True) -> Path:
    """Write a dataset with ``attr_names`` (the shapes ``attributes`` view) as a CelebA-format folder:
    ``images/000001.png ...`` and ``list_attr_celeba.txt`` with 1/-1 values."""
    from tqdm import tqdm

    names = getattr(dataset, "attr_names", ())
    if not names:
        raise DataError("the celeba format needs attribute labels: write shapes with --view attributes")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in tqdm(range(len(dataset)), desc="writing CelebA format", disable=not progress):
        item = dataset.get(i)
        name = f"{i + 1:06d}.png"
        array_to_pil(tensor_to_array(item["image"])).save(out / "images" / name)
        rows.append(name + " " + " ".join(" 1" if v > 0.5 else "-1" for v in item["attrs"].tolist()))
    text = f"{len(rows)}\n{' '.join(names)}\n" + "\n".join(rows) + "\n"
    (out / "list_attr_celeba.txt").write_text(text, encoding="utf-8")
    return out
