"""Story datasets: a story is ``video_len`` frames, each with a description vector (StoryGAN).

Every story dataset has ``__len__`` (stories), ``video_len``, ``text_dim``, ``label_num`` and:

- ``get(i, rng) -> {"images": (T, C, H, W) in [-1, 1], "descriptions": (T, text_dim),
  "labels": (T, label_num)}``;
- ``frame(i, t, rng) -> (C, H, W)`` and ``frame_label(i, t) -> (label_num,)``, for the image
  batches that StoryGAN's image discriminator sees.

Formats:

- ``clevr_sv`` (:class:`ClevrStoryDataset`): StoryGAN's CLEVR-SV folder, ``images/CLEVR_new_%06d_%d.png``
  (story id, frame 1..T) and ``CLEVR_dict.npy`` (a pickled dict: file name -> 75 floats). A frame's
  vector holds every object present up to that frame: 4 slots x 18 values (shape one-hot 3, color
  one-hot 8, material 2, size 2, x, y, z), then 3 camera values.
- ``pororo_sv`` (:class:`PororoStoryDataset`): StoryGAN's Pororo-SV folder (frame strips, caches of
  each story's frames, description vectors and attributes, character labels, split ids).
- the ``shapes`` story view (:class:`ShapesStoryDataset`): objects added one per frame on a fixed
  background, described in the same 75-value layout, and :func:`write_clevr_sv` writes any story
  dataset as a CLEVR-SV folder.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganforge.data.images import DataError, array_to_pil, tensor_to_array

log = logging.getLogger(__name__)

CLEVR_PATTERN = re.compile(r"CLEVR_new_(\d+)_(\d+)\.png$")
SLOT_SIZE = 18  # values per object slot in a CLEVR-SV description
LABEL_SIZE = 15  # shape 3 + color 8 + material 2 + size 2: the official `super_label` of a slot
CLEVR_SLOTS = 4
CLEVR_TEXT_DIM = CLEVR_SLOTS * SLOT_SIZE + 3  # + camera


def frame_labels_from_description(description: np.ndarray, slots: int = CLEVR_SLOTS) -> np.ndarray:
    """The official image loader's label of a frame: the OR over its slots of each slot's first 15
    values (the objects present, as shape, color, material and size one-hots)."""
    per_slot = np.stack([description[k * SLOT_SIZE:k * SLOT_SIZE + LABEL_SIZE] for k in range(slots)])
    return np.minimum(per_slot.sum(0), 1.0).astype(np.float32)


def story_labels_from_descriptions(descriptions: np.ndarray) -> np.ndarray:
    """The official story loader's labels (T, 15): frame t adds slot t of its own description to the
    labels of frame t-1 (a cumulative OR)."""
    labels, current = [], np.zeros(LABEL_SIZE, np.float32)
    for t, d in enumerate(descriptions):
        current = np.minimum(current + d[t * SLOT_SIZE:t * SLOT_SIZE + LABEL_SIZE], 1.0)
        labels.append(current.copy())
    return np.stack(labels).astype(np.float32)


def frame_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.array(arr, dtype=np.uint8, order="C")).permute(2, 0, 1).float()
    return t / 127.5 - 1.0


def load_clevr_frame(path: Path, image_size: int) -> np.ndarray:
    """A CLEVR-SV frame as the official transform reads it: resized to image_size x image_size
    (bilinear, antialiased, aspect ratio not kept) in the file's own mode, then the first three
    channels (RGBA's alpha is dropped, not composited). Gray and palette files become RGB."""
    with Image.open(path) as img:
        img.load()
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "transparency" in img.info or img.mode in ("LA", "PA") else "RGB")
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)[..., :3]


class StoryDatasetBase:
    """Shared access on top of ``_frame_array``, ``descriptions`` and ``labels`` arrays."""

    video_len: int
    text_dim: int
    label_num: int
    image_size: int
    num_classes = 0
    _descriptions: np.ndarray  # (S, T, text_dim) float32
    _labels: np.ndarray  # (S, T, label_num) float32
    _image_labels: np.ndarray  # (S, T, label_num): the image loader's rule

    def __len__(self) -> int:
        return len(self._descriptions)

    def _frame_array(self, index: int, t: int) -> np.ndarray:
        raise NotImplementedError

    def descriptions(self, index: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """(T, text_dim) descriptions of story ``index`` (one description per frame: ``rng`` unused)."""
        return torch.from_numpy(self._descriptions[index])

    def frame(self, index: int, t: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Frame ``t`` (0-based) of story ``index``: (3, H, W) in [-1, 1]."""
        return frame_to_tensor(self._frame_array(index, t))

    def frame_label(self, index: int, t: int) -> torch.Tensor:
        """The image loader's label of frame ``t``: (label_num,) multi-hot."""
        return torch.from_numpy(self._image_labels[index, t])

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        return {"images": torch.stack([self.frame(index, t, rng) for t in range(self.video_len)]),
                "descriptions": self.descriptions(index, rng), "labels": torch.from_numpy(self._labels[index])}


class ClevrStoryDataset(StoryDatasetBase):
    """A CLEVR-SV folder (see the module docstring).

    ``story_range`` keeps the stories whose id lies in ``[first, last]`` (inclusive, as the official
    loader's ``end - start + 1`` length makes it: its train stories are 100..172 and its test
    stories 172..196, so 172 is in both). Frames without a description and stories with missing
    frames are reported once and skipped; the official loader stops with a KeyError on them.
    """

    def __init__(self, root: str | Path, image_size: int = 64, story_range: tuple[int, int] | None = None,
                 in_memory: bool = True, dict_file: str | Path | None = None):
        self.root = Path(root)
        self.image_size = image_size
        images_dir = self.root / "images"
        dict_path = Path(dict_file) if dict_file else self.root / "CLEVR_dict.npy"
        if not images_dir.is_dir():
            raise DataError(f"CLEVR-SV folder '{self.root}' has no 'images' sub-folder (expected "
                            f"images/CLEVR_new_%06d_%d.png and CLEVR_dict.npy)")
        if not dict_path.is_file():
            raise DataError(f"CLEVR-SV descriptions '{dict_path}' do not exist (expected CLEVR_dict.npy beside "
                            f"the images folder, or data.attr_file=PATH)")
        try:
            table = np.load(dict_path, allow_pickle=True, encoding="latin1").item()
        except Exception as err:  # a pickle of something else, a truncated file, ...
            raise DataError(f"'{dict_path}' is not a CLEVR-SV description dict (np.load(...).item() failed: "
                            f"{type(err).__name__}: {err})") from None
        if not isinstance(table, dict) or not table:
            raise DataError(f"'{dict_path}' holds {type(table).__name__}, not a dict of file name -> vector")
        frames: dict[int, dict[int, Path]] = {}
        for path in images_dir.iterdir():
            m = CLEVR_PATTERN.match(path.name)
            if m:
                frames.setdefault(int(m.group(1)), {})[int(m.group(2))] = path
        if not frames:
            raise DataError(f"'{images_dir}' holds no CLEVR_new_%06d_%d.png frames")
        lengths = {len(f) for f in frames.values()}
        self.video_len = max(lengths)
        dims = {np.asarray(v).size for v in table.values()}
        if len(dims) != 1:
            raise DataError(f"'{dict_path}': description vectors of different lengths {sorted(dims)}")
        self.text_dim = dims.pop()
        slots = (self.text_dim - 3) // SLOT_SIZE
        if slots < self.video_len or (self.text_dim - 3) % SLOT_SIZE:
            raise DataError(f"'{dict_path}': {self.text_dim} values per description do not hold {self.video_len} "
                            f"object slots of {SLOT_SIZE} plus 3 camera values (CLEVR-SV has 75)")
        self.label_num = LABEL_SIZE
        keep: list[int] = []
        no_description: list[str] = []
        incomplete: list[int] = []
        for sid in sorted(frames):
            if story_range is not None and not story_range[0] <= sid <= story_range[1]:
                continue
            have = frames[sid]
            if sorted(have) != list(range(1, self.video_len + 1)):
                incomplete.append(sid)
                continue
            missing = [have[t].name for t in sorted(have) if have[t].name not in table]
            if missing:
                no_description += missing
                continue
            keep.append(sid)
        if no_description:
            log.warning("CLEVR-SV '%s': %d frame(s) have no entry in %s and their stories are skipped: %s",
                        self.root, len(no_description), dict_path.name, ", ".join(no_description[:8]) +
                        (" ..." if len(no_description) > 8 else ""))
        if incomplete:
            log.warning("CLEVR-SV '%s': %d stories lack frames 1..%d and are skipped: %s", self.root, len(incomplete),
                        self.video_len, ", ".join(map(str, incomplete[:8])))
        if not keep:
            where = f" with ids in {list(story_range)}" if story_range else ""
            raise DataError(f"CLEVR-SV '{self.root}': no complete, described story{where} (ids found: "
                            f"{min(frames)}..{max(frames)})")
        self.story_ids = keep
        self.skipped = {"no_description": no_description, "incomplete": incomplete}
        self._paths = [[frames[sid][t + 1] for t in range(self.video_len)] for sid in keep]
        self._descriptions = np.stack([np.stack([np.asarray(table[p.name], np.float32).reshape(-1) for p in story])
                                       for story in self._paths])
        self._labels = np.stack([story_labels_from_descriptions(d) for d in self._descriptions])
        self._image_labels = np.stack([[frame_labels_from_description(f, slots) for f in d]
                                       for d in self._descriptions])
        self._cache: dict[tuple[int, int], np.ndarray] | None = {} if in_memory else None

    def _frame_array(self, index: int, t: int) -> np.ndarray:
        if self._cache is not None and (index, t) in self._cache:
            return self._cache[(index, t)]
        path = self._paths[index][t]
        try:
            arr = load_clevr_frame(path, self.image_size)
        except (OSError, ValueError) as err:
            raise DataError(f"CLEVR-SV frame '{path}' cannot be read: {err}") from None
        if self._cache is not None:
            self._cache[(index, t)] = arr
        return arr


def write_clevr_sv(dataset: Any, out: Path, progress: bool = True) -> Path:
    """Write a story dataset as a CLEVR-SV folder: ``images/CLEVR_new_%06d_%d.png`` (stories numbered
    from 0) and ``CLEVR_dict.npy``."""
    from tqdm import tqdm

    if not hasattr(dataset, "video_len"):
        raise DataError("the clevr_sv format holds stories: write shapes with --view story")
    (out / "images").mkdir(parents=True, exist_ok=True)
    table: dict[str, np.ndarray] = {}
    for i in tqdm(range(len(dataset)), desc="writing CLEVR-SV", disable=not progress):
        descriptions = dataset.descriptions(i).numpy()
        for t in range(dataset.video_len):
            name = f"CLEVR_new_{i:06d}_{t + 1}.png"
            array_to_pil(tensor_to_array(dataset.frame(i, t))).save(out / "images" / name)
            table[name] = descriptions[t].astype(np.float64)
    np.save(out / "CLEVR_dict.npy", np.array(table, dtype=object), allow_pickle=True)
    return out


class ShapesStoryDataset(StoryDatasetBase):
    """The ``shapes`` story view: frame t shows the first t+1 objects of a scene on one background,
    so earlier objects stay in place; descriptions use CLEVR-SV's 75-value layout (shape one-hot 3,
    color one-hot 8 of which the six shapes colors are used, material fixed to the first entry, size
    one-hot 2, x and y mapped to CLEVR's -3..3, z 0.35 small / 0.7 large; camera values 0).

    Story ``i`` is drawn from a generator seeded by (seed, i), like every ``shapes`` view."""

    def __init__(self, length: int = 2000, image_size: int = 64, video_len: int = 4, seed: int = 0):
        from ganforge.data.shapes import story_scene

        if not 1 <= video_len <= CLEVR_SLOTS:
            raise DataError(f"the shapes story view has 1..{CLEVR_SLOTS} frames (objects); got video_len={video_len}")
        self.image_size, self.video_len, self.seed = image_size, video_len, seed
        self.text_dim, self.label_num = CLEVR_TEXT_DIM, LABEL_SIZE
        self.scenes = [story_scene(np.random.default_rng([seed, i]), video_len) for i in range(length)]
        self._descriptions = np.stack([shapes_descriptions(s, video_len) for s in self.scenes])
        self._labels = np.stack([story_labels_from_descriptions(d) for d in self._descriptions])
        self._image_labels = np.stack([[frame_labels_from_description(f) for f in d] for d in self._descriptions])

    def frame_scene(self, index: int, t: int) -> Any:
        """The scene of frame ``t`` of story ``index``: its first t+1 objects."""
        from ganforge.data.shapes import Scene

        scene = self.scenes[index]
        return Scene(background=scene.background, objects=scene.objects[:t + 1])

    def _frame_array(self, index: int, t: int) -> np.ndarray:
        from ganforge.data.shapes import render

        return render(self.frame_scene(index, t), self.image_size)


def shapes_descriptions(scene: Any, video_len: int) -> np.ndarray:
    """(video_len, 75) cumulative CLEVR-SV-layout descriptions of a shapes story scene."""
    out = np.zeros((video_len, CLEVR_TEXT_DIM), np.float32)
    for k, obj in enumerate(scene.objects[:video_len]):
        slot = np.zeros(SLOT_SIZE, np.float32)
        slot[obj.shape] = 1.0
        slot[3 + obj.color] = 1.0
        slot[11] = 1.0  # material: one kind
        slot[13 + obj.size] = 1.0
        slot[15:18] = ((obj.x - 0.5) * 6.0, (obj.y - 0.5) * 6.0, 0.35 if obj.size == 0 else 0.7)
        out[k:, k * SLOT_SIZE:(k + 1) * SLOT_SIZE] = slot  # present from frame k on
    return out


def _frame_name(value: Any) -> str:
    """A frame path from Pororo-SV's caches: bytes, numpy bytes, or the text of a bytes literal."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8")
    text = str(value)
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]  # str(b'...') as older caches stored them
    return text.lstrip("/\\")


class PororoStoryDataset(StoryDatasetBase):
    """A Pororo-SV folder, as StoryGAN's Pororo loader reads it.

    - frames: ``<video>/<n>.png`` under ``root``, each a vertical strip of square frames of one shot;
      a frame is one square of the strip (drawn from the item's generator in training, the first
      one without it), resized to ``image_size``;
    - ``img_cache4.npy`` (each story's first frame) and ``following_cache4.npy`` (its following
      frames): a story is the first frame and its followings (5 frames in Pororo-SV);
    - ``descriptions_vec.npy`` and ``descriptions_attr.npy``: frame id -> one sentence embedding
      and one attribute vector per description; a frame's description is the two concatenated
      (one of its descriptions, drawn in training, the first one without a generator);
    - ``labels.npy``: frame id -> character multi-hot (9 characters);
    - ``train_test_ids.npy`` (train, test) or ``train_seen_unseen_ids.npy`` (train, val, test):
      story indices of each split.

    Stories with a frame that lacks its file, description or label are reported and skipped.
    """

    def __init__(self, root: str | Path, image_size: int = 64, split: str = "train", in_memory: bool = False):
        self.root = Path(root)
        self.image_size = image_size

        def load(name: str, required: bool = True) -> Any:
            path = self.root / name
            if not path.is_file():
                if required:
                    raise DataError(f"Pororo-SV folder '{self.root}' has no {name} (expected labels.npy, "
                                    f"descriptions_vec.npy, descriptions_attr.npy, img_cache4.npy, "
                                    f"following_cache4.npy and train_test_ids.npy or train_seen_unseen_ids.npy)")
                return None
            try:
                value = np.load(path, allow_pickle=True, encoding="latin1")
            except Exception as err:
                raise DataError(f"'{path}' cannot be read as a .npy file: {type(err).__name__}: {err}") from None
            return value.item() if value.dtype == object and value.ndim == 0 else value

        labels, vectors, attrs = load("labels.npy"), load("descriptions_vec.npy"), load("descriptions_attr.npy")
        firsts, followings = load("img_cache4.npy"), load("following_cache4.npy")
        self.texts = load("descriptions.npy", required=False) or {}
        ids = load("train_test_ids.npy", required=False)
        ids = ids if ids is not None else load("train_seen_unseen_ids.npy")
        for name, table in (("labels.npy", labels), ("descriptions_vec.npy", vectors),
                            ("descriptions_attr.npy", attrs)):
            if not isinstance(table, dict):
                raise DataError(f"'{self.root / name}' holds {type(table).__name__}, not a dict of frame id -> values")
        if split == "all":
            order = np.arange(len(firsts))
        else:
            parts = list(ids)
            pick = {"train": 0, "test": len(parts) - 1}.get(split)
            if pick is None:
                raise DataError(f"Pororo-SV split '{split}' is not one of train, test, all")
            order = np.asarray(parts[pick]).astype(np.int64)
        stories, missing = [], []
        for s in order:
            names = [_frame_name(firsts[s])] + [_frame_name(f) for f in followings[s]]
            frame_ids = [n[:-4] if n.endswith(".png") else n for n in names]
            lacking = [f for f in frame_ids if f not in vectors or f not in attrs or f not in labels
                       or not (self.root / f"{f}.png").is_file()]
            if lacking:
                missing += lacking
                continue
            stories.append(frame_ids)
        if missing:
            log.warning("Pororo-SV '%s': %d frame(s) lack a file, description or label; their stories are skipped: %s",
                        self.root, len(missing), ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
        if not stories:
            raise DataError(f"Pororo-SV '{self.root}': no complete story in split '{split}'")
        self.frame_ids = stories
        self.skipped = {"incomplete": missing}
        self.video_len = len(stories[0])
        self._vectors = {f: [np.concatenate([np.asarray(v, np.float32).reshape(-1), np.asarray(a, np.float32).reshape(-1)])
                             for v, a in zip(vectors[f], attrs[f])] for story in stories for f in story}
        dims = {v.size for options in self._vectors.values() for v in options}
        if len(dims) != 1:
            raise DataError(f"Pororo-SV '{self.root}': descriptions of different lengths {sorted(dims)}")
        self.text_dim = dims.pop()
        self._labels = np.stack([[np.asarray(labels[f], np.float32).reshape(-1) for f in story] for story in stories])
        self._image_labels = self._labels
        self.label_num = self._labels.shape[-1]
        self._descriptions = np.stack([[self._vectors[f][0] for f in story] for story in stories])
        self._cache: dict[str, Image.Image] | None = {} if in_memory else None

    def _strip(self, frame_id: str) -> Image.Image:
        if self._cache is not None and frame_id in self._cache:
            return self._cache[frame_id]
        path = self.root / f"{frame_id}.png"
        try:
            with Image.open(path) as img:
                strip = img.convert("RGB")
        except (OSError, ValueError) as err:
            raise DataError(f"Pororo-SV frame '{path}' cannot be read: {err}") from None
        if self._cache is not None:
            self._cache[frame_id] = strip
        return strip

    def frame(self, index: int, t: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """One square of the frame's strip (drawn from ``rng``; the first without it), resized."""
        strip = self._strip(self.frame_ids[index][t])
        side = min(strip.size)
        count = max(strip.size) // side
        k = int(rng.integers(count)) if rng is not None else 0
        square = strip.crop((0, k * side, side, (k + 1) * side))
        square = square.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        return frame_to_tensor(np.asarray(square, dtype=np.uint8))

    def descriptions(self, index: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """(T, text_dim): for each frame one of its descriptions (drawn from ``rng``; the first without it)."""
        out = []
        for f in self.frame_ids[index]:
            options = self._vectors[f]
            out.append(options[int(rng.integers(len(options)))] if rng is not None and len(options) > 1 else options[0])
        return torch.from_numpy(np.stack(out))
