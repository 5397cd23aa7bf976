"""``emoji``: the colour bitmaps of the Noto Color Emoji font, labelled by Unicode's emoji groups.

Debian ships the font in ``fonts-noto-color-emoji`` and the list of emoji with their groups and
subgroups (``emoji-test.txt``: Smileys & Emotion / face-smiling, Animals & Nature / animal-mammal, ...)
in ``unicode-data``. Each fully-qualified emoji the font draws is rendered once (Pillow's
``embedded_color``, the font's bitmap size 109), centred on a square canvas, composited on
``data.background`` and resized to ``data.image_size``; the set is cached under the cache folder by a
hash of everything that shapes it. Emoji the font does not draw (newer than the font) are left out.

Labels: ``data.labels=group`` or ``subgroup``; ``data.groups`` keeps only the listed groups (or
subgroups), in that order, which become the classes (BigGAN) or the domains (StarGAN v2,
``data.view=domains``). The split is fixed: every tenth emoji of each label, in file order, is test.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.domains import DomainView, square_image
from ganforge.data.images import DataError, to_tensor
from ganforge.paths import cache_dir

DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
DEFAULT_LIST = "/usr/share/unicode/emoji/emoji-test.txt"
BITMAP_SIZE = 109  # the one size at which the font's colour bitmaps (136 x 128) are drawn
CANVAS = 136
TEST_EVERY = 10
RENDER_VERSION = 1  # part of the cache key: bump when rendering changes


@dataclass(frozen=True)
class Emoji:
    text: str
    name: str
    group: str
    subgroup: str


def read_emoji_list(path: Path) -> list[Emoji]:
    """The fully-qualified emoji of ``emoji-test.txt`` with their names, groups and subgroups."""
    if not path.is_file():
        raise DataError(f"data.emoji_list: '{path}' does not exist; `apt-get install unicode-data` installs it "
                        f"at {DEFAULT_LIST}")
    group = subgroup = ""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif "; fully-qualified" in line and "#" in line:
            codes = line.split(";", 1)[0].split()
            name = line.split("#", 1)[1].strip().split(" ", 2)[-1]
            found.append(Emoji("".join(chr(int(c, 16)) for c in codes), name, group, subgroup))
    if not found:
        raise DataError(f"'{path}' lists no fully-qualified emoji: is it Unicode's emoji-test.txt?")
    return found


def render(emoji: Emoji, font, background: tuple[int, int, int], size: int) -> np.ndarray | None:  # noqa: ANN001
    """uint8 (size, size, 3): the emoji's bitmap centred on a square, on ``background``; None when the
    font draws nothing for it."""
    from PIL import ImageDraw

    glyph = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    ImageDraw.Draw(glyph).text((CANVAS // 2, CANVAS // 2), emoji.text, font=font, embedded_color=True, anchor="mm")
    alpha = np.asarray(glyph)[:, :, 3]
    if alpha.max() == 0 or (alpha > 0).mean() < 0.02:  # nothing, or a box for a missing glyph
        return None
    canvas = Image.new("RGBA", (CANVAS, CANVAS), (*background, 255))
    picture = Image.alpha_composite(canvas, glyph).convert("RGB")
    return np.asarray(picture.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _cache_key(font: Path, listing: Path, background: tuple[int, int, int], size: int) -> str:
    digest = hashlib.sha256()
    for path in (font, listing):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps([list(background), size, RENDER_VERSION]).encode())
    return digest.hexdigest()[:20]


def rendered_set(font: Path, listing: Path, background: tuple[int, int, int], size: int
                 ) -> tuple[np.ndarray, list[Emoji]]:
    """Every emoji the font draws, rendered at ``size`` (cached): uint8 (N, size, size, 3) and the emoji."""
    from PIL import ImageFont

    if not font.is_file():
        raise DataError(f"data.font: '{font}' does not exist; `apt-get install fonts-noto-color-emoji` installs it "
                        f"at {DEFAULT_FONT}")
    emoji = read_emoji_list(listing)
    cache = cache_dir("emoji") / f"{_cache_key(font, listing, background, size)}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            drawn = set(stored["drawn"].tolist())
            return stored["images"], [e for k, e in enumerate(emoji) if k in drawn]
    try:
        face = ImageFont.truetype(str(font), BITMAP_SIZE)
    except OSError as err:
        raise DataError(f"data.font: '{font}' is not a colour bitmap font Pillow can open at size {BITMAP_SIZE} "
                        f"({err})") from None
    images, drawn = [], []
    for k, e in enumerate(emoji):
        picture = render(e, face, background, size)
        if picture is not None:
            images.append(picture)
            drawn.append(k)
    stacked = np.stack(images)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, images=stacked, drawn=np.asarray(drawn))
    tmp.replace(cache)
    return stacked, [emoji[k] for k in drawn]


def select(emoji: list[Emoji], labels: str, groups: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Indices kept, their label indices, and the label names (``groups`` in order, else all in file order)."""
    names = [getattr(e, labels) for e in emoji]
    known = list(dict.fromkeys(names))
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise DataError(f"data.groups: '{unknown[0]}' is not a {labels} of the emoji list; its {labels}s: "
                        f"{', '.join(known)}")
    chosen = list(groups) or known
    lookup = {g: i for i, g in enumerate(chosen)}
    keep = np.asarray([k for k, n in enumerate(names) if n in lookup], dtype=np.int64)
    return keep, np.asarray([lookup[names[k]] for k in keep], dtype=np.int64), chosen


def split_mask(label_ids: np.ndarray, split: str) -> np.ndarray:
    """Every ``TEST_EVERY``-th emoji of each label (in file order) is test; the rest train."""
    rank = np.zeros(len(label_ids), dtype=np.int64)
    for c in np.unique(label_ids):
        members = np.flatnonzero(label_ids == c)
        rank[members] = np.arange(len(members))
    test = rank % TEST_EVERY == TEST_EVERY - 1
    return {"train": ~test, "test": test, "all": np.ones_like(test)}[split]


class EmojiDataset(DomainView):
    """Rendered emoji with their group or subgroup as class (``view=class``) or domain (``view=domains``)."""

    def __init__(self, image_size: int = 64, font: str | Path = DEFAULT_FONT, emoji_list: str | Path = DEFAULT_LIST,
                 labels: str = "group", groups: list[str] | None = None, split: str = "train",
                 background: tuple[int, int, int] = (255, 255, 255), view: str = "class", flip: bool = False,
                 augment: bool = True, crop_prob: float = 0.5):
        images, emoji = rendered_set(Path(font), Path(emoji_list), tuple(background), image_size)
        keep, label_ids, names = select(emoji, labels, list(groups or []))
        mask = split_mask(label_ids, split)
        self.images, self.labels = images[keep[mask]], label_ids[mask]
        self.emoji = [emoji[k] for k in keep[mask]]
        if not len(self.labels):
            raise DataError(f"emoji: no images in split '{split}' for {labels}s {', '.join(names)}")
        self.domains = self.class_names = names
        self.image_size, self.view, self.flip, self.augment, self.crop_prob = image_size, view, flip, augment, crop_prob
        self._index_domains()

    def load(self, index: int, rng: np.random.Generator | None) -> torch.Tensor:
        """Image ``index`` as StarGAN v2 reads a domain image (its training transform with ``rng``)."""
        aug = rng if self.augment else None
        return square_image(Image.fromarray(self.images[index]), self.image_size, aug, self.crop_prob, self.flip)

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        if self.view == "domains":
            return super().get(index, rng)
        image = to_tensor(self.images[index], self.image_size, "center", self.flip, rng)
        return {"image": image, "label": torch.tensor(int(self.labels[index]), dtype=torch.long)}
