"""What the page draws, without the page: one loaded model and a function per control, each
returning pictures as uint8 arrays or raising :class:`ServeError` with a message for the user.

The functions read only the model's kind and the helpers its family registers (``translate``,
``targets``), never a family's name. One model is loaded once; a lock lets one request draw at a
time, so two browsers never hold two batches of activations at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.sample.grid import generate, grid_image, interpolate_inputs
from ganforge.sample.noise import truncated_normal

MAX_COUNT = 64  # images in one grid
MAX_STEPS = 16  # images in one interpolation strip
MAX_UPLOAD_SIDE = 4096  # pixels: larger uploads are refused before any work


class ServeError(ValueError):
    """A request the model cannot draw: its message is shown on the page as it is."""


@dataclass
class ServedModel:
    """A generator loaded once, with what the page needs to know about it."""

    gen: Any  # ganforge.load.LoadedGenerator
    kind: str
    labels: list[str]  # class, domain or attribute names the controls offer (empty for noise models)
    source: str
    text_encoder: str | None = None  # story models: a local sentence-transformers folder for typed sentences
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def image_size(self) -> int:
        return int(self.gen.model_config.image_size)


def open_model(source: str | Path, device: str = "cpu", weights: str = "ema",
               text_encoder: str | None = None) -> ServedModel:
    """Load ``source`` (a run folder, checkpoint or export folder) for serving."""
    from ganforge.load import load
    from ganforge.registry import get_family

    gen = load(source, weights=weights, device=device)
    kind = get_family(gen.family).kind
    labels = _labels(gen, kind)
    if kind == "class" and len(labels) < 2:  # a class family trained unconditionally has nothing to pick
        kind, labels = "noise", []
    return ServedModel(gen, kind, labels, str(source), text_encoder)


def _labels(gen: Any, kind: str) -> list[str]:
    """The names the controls offer: the model's own targets, or its run's class/domain names, else
    numbers."""
    from ganforge.data.builders import class_names

    if kind == "translation":
        return list(gen.targets())
    if kind not in ("class", "reference"):
        return []
    record = gen.opened.record if gen.opened is not None else None
    names = class_names(record["config"].get("data", {})) if record else None
    count = int(getattr(gen.model_config, "num_classes", 0) or getattr(gen.model_config, "num_domains", 0))
    return list(names) if names and len(names) == count else [str(i) for i in range(count)]


def to_array(images: torch.Tensor, nrow: int | None = None) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> one (H, W, 3) uint8 picture, ``nrow`` per row."""
    grid = grid_image(images.float().clamp(-1, 1), nrow)
    if grid.shape[0] == 1:
        grid = grid.expand(3, -1, -1)
    return grid.permute(1, 2, 0).contiguous().numpy()


def _whole(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high], or a ServeError naming the control."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ServeError(f"{name} must be a whole number; got {value!r}") from None
    if number != float(value) or not low <= number <= high:
        raise ServeError(f"{name} must be a whole number from {low} to {high}; got {value}")
    return number


def _draw(model: ServedModel, inputs: list[torch.Tensor]) -> torch.Tensor:
    device = next(model.gen.parameters()).device
    with model.lock, torch.no_grad():
        return generate(model.gen.net, inputs, device)


def noise_grid(model: ServedModel, seed: Any, count: Any) -> np.ndarray:
    """``count`` samples from ``seed``."""
    seed, count = _whole(seed, "seed", 0, 2**31 - 1), _whole(count, "count", 1, MAX_COUNT)
    return to_array(_draw(model, list(model.gen.make_inputs(count, seed))))


def interpolation(model: ServedModel, seed_a: Any, seed_b: Any, steps: Any) -> np.ndarray:
    """A strip from seed A's sample to seed B's (slerp of the noise; a class switches half-way)."""
    seed_a, seed_b = _whole(seed_a, "seed A", 0, 2**31 - 1), _whole(seed_b, "seed B", 0, 2**31 - 1)
    steps = _whole(steps, "steps", 2, MAX_STEPS)
    path = interpolate_inputs(model.gen.make_inputs(1, seed_a), model.gen.make_inputs(1, seed_b), steps)
    return to_array(_draw(model, path), nrow=steps)


def _class_index(model: ServedModel, name: Any) -> int:
    if name not in model.labels:
        raise ServeError(f"unknown class {name!r}; this model's classes: {', '.join(model.labels)}")
    return model.labels.index(name)


def _truncated(model: ServedModel, count: int, seed: int, truncation: Any) -> list[torch.Tensor]:
    """The model's (z, y) inputs with z redrawn inside +-``truncation`` (0: none)."""
    try:
        truncation = float(truncation)
    except (TypeError, ValueError):
        raise ServeError(f"truncation must be a number; got {truncation!r}") from None
    if not 0.0 <= truncation <= 4.0:
        raise ServeError(f"truncation must be from 0 (off) to 4; got {truncation}")
    z, y = model.gen.make_inputs(count, seed)
    if truncation > 0:
        z = truncated_normal(tuple(z.shape), truncation, torch.Generator().manual_seed(seed))
    return [z, y]


def class_grid(model: ServedModel, name: Any, truncation: Any, seed: Any, count: Any) -> np.ndarray:
    """``count`` samples of class ``name``."""
    seed, count = _whole(seed, "seed", 0, 2**31 - 1), _whole(count, "count", 1, MAX_COUNT)
    z, y = _truncated(model, count, seed, truncation)
    return to_array(_draw(model, [z, torch.full_like(y, _class_index(model, name))]))


def class_sheet(model: ServedModel, truncation: Any, seed: Any, per_class: Any) -> np.ndarray:
    """One row per class, ``per_class`` samples each (the same noise in every row)."""
    seed, per_class = _whole(seed, "seed", 0, 2**31 - 1), _whole(per_class, "samples per class", 1, 16)
    classes = len(model.labels)
    z, y = _truncated(model, per_class, seed, truncation)
    z = z.repeat(classes, *([1] * (z.dim() - 1)))
    y = torch.arange(classes, dtype=y.dtype).repeat_interleave(per_class)
    return to_array(_draw(model, [z, y]), nrow=per_class)


def _read_picture(path: str | Path, what: str) -> np.ndarray:
    """The picture file an upload left on disk, as an RGB uint8 array, or a ServeError naming it."""
    from PIL import Image, UnidentifiedImageError

    unreadable = ServeError(f"the {what} '{Path(path).name}' is not a picture this page can read (PNG, JPEG, "
                            f"WebP, BMP or GIF)")
    try:
        picture = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError):
        raise unreadable from None
    with picture:  # the size is read from the header: a huge picture is refused before it is decoded
        if max(picture.size) > MAX_UPLOAD_SIDE:
            raise ServeError(f"the {what} '{Path(path).name}' is {picture.size[0]}x{picture.size[1]} pixels; at "
                             f"most {MAX_UPLOAD_SIDE} on a side, please")
        try:
            return np.asarray(picture.convert("RGB"))
        except (OSError, ValueError):  # a header that reads but pixel data that does not
            raise unreadable from None


def read_upload(model: ServedModel, image: Any, what: str = "image") -> torch.Tensor:
    """An uploaded picture (a file path, or an RGB uint8 array) as (1, 3, S, S) in [-1, 1] at the
    model's size: the centre square, resized. A missing, unreadable or oversized upload is a ServeError."""
    if image is None:
        raise ServeError(f"upload an {what} first (PNG or JPEG)")
    array = _read_picture(image, what) if isinstance(image, (str, Path)) else np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise ServeError(f"the {what} is not a picture this page can read (shape {array.shape})")
    if max(array.shape[:2]) > MAX_UPLOAD_SIDE:
        raise ServeError(f"the {what} is {array.shape[1]}x{array.shape[0]} pixels; at most {MAX_UPLOAD_SIDE} "
                         f"on a side, please")
    x = torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).float() / 127.5 - 1.0
    side = min(x.shape[1:])
    top, left = (x.shape[1] - side) // 2, (x.shape[2] - side) // 2
    x = x[:, top:top + side, left:left + side][None]
    size = model.image_size
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def translate(model: ServedModel, image: Any, targets: Any) -> np.ndarray:
    """The input beside its translation to each chosen target."""
    if not targets:
        raise ServeError(f"choose at least one target: {', '.join(model.labels)}")
    x = read_upload(model, image)
    with model.lock:
        try:
            outputs = model.gen.translate(x.to(next(model.gen.parameters()).device), list(targets))
        except ValueError as err:
            raise ServeError(str(err)) from None
    return to_array(torch.cat([x, *outputs.values()]), nrow=len(outputs) + 1)


def reference_guided(model: ServedModel, source: Any, domain: Any, reference: Any, seed: Any) -> np.ndarray:
    """The source beside its translation into ``domain``: in the reference's style when one is
    given, else with a style drawn from ``seed`` (latent guidance)."""
    index = _class_index(model, domain)
    seed = _whole(seed, "seed", 0, 2**31 - 1)
    x = read_upload(model, source, "source image")
    ref = read_upload(model, reference, "reference image") if reference is not None else None
    with model.lock:
        out = model.gen.translate(x, domain=index, reference=None if ref is None else ref[0], seed=seed)
    pictures = [x, out] if ref is None else [x, ref, out]
    return to_array(torch.cat(pictures), nrow=len(pictures))


def data_story(model: ServedModel, index: Any, seed: Any) -> np.ndarray:
    """Story ``index`` of the run's data drawn from ``seed``: its frames, then the real ones."""
    from ganforge.sample.story import story_strips

    index, seed = _whole(index, "story", 0, 10**6), _whole(seed, "seed", 0, 2**31 - 1)
    try:
        descriptions, truth = model.gen.data_story(index)
        with model.lock:
            stories = model.gen.story(descriptions, seed)
    except ValueError as err:
        raise ServeError(str(err)) from None
    images, per_row = story_strips(stories, truth)
    return to_array(images, nrow=per_row)


def file_story(model: ServedModel, path: Any, seed: Any) -> np.ndarray:
    """The stories of an uploaded description file (.npy or .json, as `ganforge story` reads them)."""
    from ganforge.sample.story import story_strips

    seed = _whole(seed, "seed", 0, 2**31 - 1)
    if path is None:
        raise ServeError("upload a description file first (.npy or .json)")
    if Path(path).suffix not in (".npy", ".json"):
        raise ServeError(f"'{Path(path).name}' is not a description file: .npy or .json, please (sentences in "
                         f".txt need a text encoder: `ganforge story --text-encoder`)")
    try:
        with model.lock:
            stories = model.gen.story(str(path), seed)
    except (ValueError, OSError) as err:  # DataError is a ValueError
        raise ServeError(str(err).replace(str(Path(path).parent) + "/", "")) from None
    images, per_row = story_strips(stories)
    return to_array(images, nrow=per_row)


def style_morph(model: ServedModel, source: Any, domain: Any, reference_a: Any, reference_b: Any,
                out_dir: str | Path) -> str:
    """A video of the source translated into ``domain`` as its style moves from reference A's to
    reference B's (the official reference video); returns the .mp4 (or .gif) written in ``out_dir``."""
    import tempfile

    index = _class_index(model, domain)
    x = read_upload(model, source, "source image")
    refs = torch.cat([read_upload(model, reference_a, "reference A"), read_upload(model, reference_b, "reference B")])
    path = Path(tempfile.mkdtemp(dir=out_dir)) / "style-morph.mp4"
    with model.lock:
        return str(model.gen.morph(x, refs, index, path))


def typed_story(model: ServedModel, text: Any, seed: Any, out_dir: str | Path | None = None) -> np.ndarray:
    """A story typed as one sentence per frame, through the served model's local text encoder."""
    import tempfile

    from ganforge.sample.story import story_strips

    seed = _whole(seed, "seed", 0, 2**31 - 1)
    frames = model.gen.model_config.video_len
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    if len(lines) != frames:
        raise ServeError(f"type {frames} sentences, one per line (one per frame); got {len(lines)}")
    if model.text_encoder is None:
        raise ServeError("typed sentences need a local sentence encoder: start the page with "
                         "`ganforge serve RUN --text-encoder PATH` (or upload description vectors)")
    with tempfile.TemporaryDirectory(dir=out_dir) as folder:
        path = Path(folder) / "story.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            with model.lock:
                stories = model.gen.story(str(path), seed, text_encoder=model.text_encoder)
        except ValueError as err:
            raise ServeError(str(err)) from None
    images, per_row = story_strips(stories)
    return to_array(images, nrow=per_row)
