"""``image_folder``: every image under a folder (recursive), optionally labelled by sub-folder.

The index (file list, labels, which files are unreadable) is cached under the user cache directory,
keyed by the folder's absolute path, and refreshed per file by size and modification time, so a
second start over 200k images costs one directory walk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganforge.data.images import IMAGE_EXTENSIONS, DataError, check_header, decode_file, to_tensor
from ganforge.paths import cache_dir
from ganforge.runtime.progress import progress

log = logging.getLogger(__name__)

INDEX_VERSION = 1


@dataclass
class FolderIndex:
    """Readable files (relative paths), their labels, class names and the files that were skipped."""

    files: list[str]
    labels: list[int]
    class_names: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> reason


def _walk_images(root: Path) -> list[tuple[str, os.stat_result]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()  # a stable order on every OS and file system
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                full = Path(dirpath) / name
                try:
                    found.append((full.relative_to(root).as_posix(), full.stat()))
                except OSError:
                    continue
    return found


def _class_labels(root: Path, files: list[str], option: str) -> tuple[list[str], list[int]]:
    """Class names (the sorted first-level folders) and each file's label; errors name ``option``."""
    needs = "data.classes=true" if option == "data.path" else option
    top = [f.split("/")[0] if "/" in f else "" for f in files]
    if any(t == "" for t in top):
        loose = next(f for f, t in zip(files, top) if t == "")
        raise DataError(f"{needs} needs every image inside a class sub-folder of '{root}' (one folder per class, "
                        f"e.g. '{root / 'cat' / 'img1.png'}', '{root / 'dog' / 'img2.png'}'), but '{loose}' lies "
                        f"at the top level")
    class_names = sorted(set(top))
    # An empty class folder would silently shift every later label by one: refuse it by name.
    empty = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                   and d.name not in class_names)
    if empty:
        raise DataError(f"{needs}: class folder '{root / empty[0]}' has no readable images"
                        f"{f' (and {len(empty) - 1} more)' if len(empty) > 1 else ''}; labels are the sorted "
                        f"folder names, so add images to it or move it out of '{root}'")
    lookup = {c: i for i, c in enumerate(class_names)}
    labels = [lookup[t] for t in top]
    return class_names, labels


def build_index(root: str | Path, classes: bool = False, strict: bool = False, use_cache: bool = True,
                option: str = "data.path") -> FolderIndex:
    """Scan ``root`` for images; check each file's header once (cached by size and mtime).

    Errors name the folder and ``option``, the setting or command-line option the user gave it by:
    missing, not a folder, no images at all, or (``classes``) no class sub-folders. In ``strict``
    mode the first unreadable file is an error naming it.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{option}: '{root}' does not exist")
    if not root.is_dir():
        raise DataError(f"{option}: '{root}' is not a folder (a folder of images is expected)")
    cache_file = cache_dir("index") / (hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:20] + ".json")
    cached: dict[str, list] = {}
    if use_cache and cache_file.is_file():
        try:
            data = json.loads(cache_file.read_text(encoding="utf-8"))
            if data.get("version") == INDEX_VERSION:
                cached = data["files"]
        except (OSError, ValueError, KeyError):
            cached = {}
    entries: dict[str, list] = {}
    files, skipped = [], {}
    for rel, st in progress(_walk_images(root), desc=f"indexing '{root}'", unit="file"):
        prev = cached.get(rel)
        if prev is not None and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
            reason = prev[2]
        else:
            reason = check_header(root / rel)
        entries[rel] = [st.st_size, st.st_mtime_ns, reason]
        if reason is None:
            files.append(rel)
        else:
            if strict:
                raise DataError(f"unreadable image '{root / rel}': {reason} (data.strict=true stops here; "
                                f"set data.strict=false to skip and count such files)")
            skipped[rel] = reason
    if use_cache and entries != cached:
        from ganforge.run.files import atomic_write_bytes

        try:
            atomic_write_bytes(cache_file, json.dumps({"version": INDEX_VERSION, "root": str(root.resolve()),
                                                       "files": entries}).encode("utf-8"))
        except OSError as err:  # a read-only cache must not stop training
            log.warning("could not write the index cache %s: %s", cache_file, err)
    if not files:
        detail = f" ({len(skipped)} unreadable file(s), e.g. '{next(iter(skipped))}')" if skipped else ""
        raise DataError(f"{option}: no readable images under '{root}'{detail}; "
                        f"expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
    class_names, labels = _class_labels(root, files, option) if classes else ([], [0] * len(files))
    if skipped:
        first = next(iter(skipped.items()))
        log.warning("image_folder '%s': skipped %d unreadable file(s); first: %s (%s)", root, len(skipped), *first)
    return FolderIndex(files=files, labels=labels, class_names=class_names, skipped=skipped)


class ImageFolderDataset:
    """Images from a folder tree, resized and cropped to one square size."""

    def __init__(self, root: str | Path, image_size: int = 64, channels: int = 3, classes: bool = False,
                 crop: str = "center", flip: bool = False, in_memory: bool = False, strict: bool = False,
                 crop_size: int | None = None):
        self.root = Path(root)
        self.crop_size = crop_size  # center crop at full resolution before resizing (StarGAN's RaFD: 256)
        self.index = build_index(self.root, classes=classes, strict=strict)
        self.image_size, self.channels, self.crop, self.flip = image_size, channels, crop, flip
        self.strict = strict
        self.num_classes = len(self.index.class_names) if classes else 0
        self.decode_failures: dict[str, str] = {}
        self._memory: list[np.ndarray | None] | None = None
        if in_memory:
            self._memory = [self._decode(i) for i in range(len(self))]

    def __len__(self) -> int:
        return len(self.index.files)

    @property
    def skipped(self) -> dict[str, str]:
        """Files left out: unreadable headers at indexing and, in this process, failed decodes."""
        return {**self.index.skipped, **self.decode_failures}

    def _decode(self, i: int) -> np.ndarray | None:
        path = self.root / self.index.files[i]
        try:
            return decode_file(path, self.channels, self.image_size, self.crop_size)
        except Exception as err:  # truncated data, decompression bombs, ... -> one clear outcome
            if self.strict:
                raise DataError(f"cannot decode image '{path}': {type(err).__name__}: {err} "
                                f"(data.strict=true stops here)") from None
            if self.index.files[i] not in self.decode_failures:
                log.warning("skipping unreadable image '%s': %s: %s", path, type(err).__name__, err)
            self.decode_failures[self.index.files[i]] = f"{type(err).__name__}: {err}"
            return None

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """Item ``index`` (``rng`` draws the augmentations); unreadable pixels skip to the next file."""
        # A file whose header was fine but whose pixels are not is replaced by the next good one,
        # deterministically, so one broken JPEG cannot end a week-long run.
        for step in range(len(self)):
            i = (index + step) % len(self)
            arr = self._memory[i] if self._memory is not None else self._decode(i)
            if arr is not None:
                item = {"image": to_tensor(arr, self.image_size, self.crop, self.flip, rng)}
                if self.num_classes:
                    item["label"] = torch.tensor(self.index.labels[i], dtype=torch.long)
                return item
        raise DataError(f"no image under '{self.root}' could be decoded")
