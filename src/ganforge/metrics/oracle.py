"""The shapes oracle: a small CNN that reads every attribute of a ``shapes`` image.

It is trained from a recipe (:class:`OracleRecipe`) on scenes drawn from a stream that the ``shapes``
dataset never uses. The default recipe's weights ship with the package (``oracle_weights/``, named by
the recipe's hash), so every machine reads generated images with the same oracle and evaluation needs
no training; any other recipe is trained once and cached under ``cache_dir("oracle")`` by its hash.
Held-out accuracy is measured on the ``shapes`` dataset itself (the images models train on) and stored
with the weights.

Heads (all from one 256-d hidden vector; their 35 outputs, as probabilities and position, are the
oracle feature space for oracle-FID/KID/precision/recall/density/coverage):

- ``count``: number of objects, 1..4 (softmax);
- ``shape`` (3), ``color`` (6), ``size`` (2), ``object`` (18 = shape x color): which are present
  (independent sigmoids, so scenes with several objects are read as sets);
- ``position``: the mean of the object centres, in [0, 1] image coordinates (regression).

Every image is read at 32x32: generated or real images of any size are quantised to uint8 (as a
saved PNG would be) and resized with antialiasing by :func:`prepare`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.data.shapes import COLORS, SHAPES, SIZES, Scene, render, sample_scene, with_light_background
from ganforge.paths import cache_dir

log = logging.getLogger(__name__)

RESOLUTION = 32
MAX_OBJECTS = 4
NUM_SHAPES, NUM_COLORS, NUM_SIZES = len(SHAPES), len(COLORS), len(SIZES)
NUM_OBJECTS = NUM_SHAPES * NUM_COLORS
POSITION_TOLERANCE = 0.05  # a position is right when both coordinates are within 5% of the image side
ATTRIBUTES = ("count", "shape", "color", "size", "object", "position")
# The oracle's training scenes come from this seed stream; the shapes dataset uses seed 0.
TRAIN_SEED = 7_919


@dataclass(frozen=True)
class OracleRecipe:
    """Everything that determines the oracle; its hash names the cached weights."""

    version: int = 3  # 3: a quarter of the training scenes have a light background (attributes view)
    train_images: int = 16000
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 32
    seed: int = 0
    noise_std: float = 0.04  # augmentation: generated images are noisy; the oracle must not care

    def digest(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------------
# labels


def scene_targets(scenes: Iterable[Scene]) -> dict[str, torch.Tensor]:
    """Ground truth for each head, stacked over ``scenes``."""
    rows = {k: [] for k in ("count", "shape", "color", "size", "object", "position")}
    for scene in scenes:
        objs = scene.objects
        rows["count"].append(len(objs) - 1)
        for key, n, get in (("shape", NUM_SHAPES, lambda o: o.shape), ("color", NUM_COLORS, lambda o: o.color),
                            ("size", NUM_SIZES, lambda o: o.size), ("object", NUM_OBJECTS, lambda o: o.class_id)):
            v = np.zeros(n, dtype=np.float32)
            for o in objs:
                v[get(o)] = 1.0
            rows[key].append(v)
        rows["position"].append([np.mean([o.x for o in objs]), np.mean([o.y for o in objs])])
    return {"count": torch.tensor(rows["count"], dtype=torch.long),
            **{k: torch.from_numpy(np.stack(rows[k])) for k in ("shape", "color", "size", "object")},
            "position": torch.tensor(rows["position"], dtype=torch.float32)}


# ----------------------------------------------------------------------------------------------
# network


class OracleNet(nn.Module):
    """(N, 3, 32, 32) float in [0, 1] -> features (N, 256) and one logit tensor per head.

    Presence is a question about anywhere in the image, so the trunk ends in global max and mean
    pooling; a narrow 8x8 map kept whole and two coordinate channels on the input (CoordConv) say where.
    """

    HEADS = {"count": MAX_OBJECTS, "shape": NUM_SHAPES, "color": NUM_COLORS, "size": NUM_SIZES,
             "object": NUM_OBJECTS, "position": 2}

    def __init__(self, width: int = 32):
        super().__init__()
        w = width

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.trunk = nn.Sequential(
            *block(5, w, 1), *block(w, w, 2),                  # 32 -> 16
            *block(w, 2 * w, 1), *block(2 * w, 2 * w, 2),      # 16 -> 8
            *block(2 * w, 4 * w, 1), *block(4 * w, 4 * w, 1))  # 8
        self.where = nn.Conv2d(4 * w, 8, 1)  # a small map kept whole: where things are, for count and position
        self.embed = nn.Sequential(nn.Linear(8 * w + 8 * 64, 256), nn.ReLU(inplace=True))
        self.heads = nn.Linear(256, sum(self.HEADS.values()))
        ramp = torch.linspace(-1, 1, RESOLUTION)
        self.register_buffer("coords", torch.stack([ramp[None, :].expand(RESOLUTION, -1),
                                                    ramp[:, None].expand(-1, RESOLUTION)])[None], persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = torch.cat([x, self.coords.expand(len(x), -1, -1, -1).to(x.dtype)], 1)
        h = self.trunk(x)
        features = self.embed(torch.cat([h.amax((2, 3)), h.mean((2, 3)), self.where(h).flatten(1)], 1))
        logits = self.heads(features)
        out, start = {}, 0
        for name, n in self.HEADS.items():
            out[name] = logits[:, start:start + n]
            start += n
        return features, out


def head_losses(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    loss = F.cross_entropy(out["count"], target["count"])
    for key in ("shape", "color", "size", "object"):
        loss = loss + F.binary_cross_entropy_with_logits(out[key], target[key])
    # L1-like beyond 0.05 so the position term does not drown the class terms early on.
    return loss + F.smooth_l1_loss(out["position"], target["position"], beta=0.05)


# ----------------------------------------------------------------------------------------------
# input


def rgb_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images as uint8 RGB (N, 3, H, W): [-1, 1] floats are rounded as a saved PNG would be."""
    from ganforge.sample.grid import to_uint8

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 3 or 1, H, W), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def prepare(images: torch.Tensor) -> torch.Tensor:
    """Any images (float [-1, 1] or uint8, any size) -> the oracle's (N, 3, 32, 32) float in [0, 1]."""
    x = rgb_uint8(images).float() / 255.0
    if x.shape[-2:] != (RESOLUTION, RESOLUTION):
        x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", antialias=True, align_corners=False)
    return x


def _render_set(count: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``count`` scenes with 1..4 objects; half rendered at 32 px, half at 64 px and resized by ``prepare``."""
    rng = np.random.default_rng([TRAIN_SEED, seed])
    scenes = [sample_scene(rng, int(rng.integers(1, MAX_OBJECTS + 1))) for _ in range(count)]
    # Light backgrounds (the attributes view, and what translations produce) must read as well as dark.
    scenes = [with_light_background(s, rng) if rng.random() < 0.25 else s for s in scenes]
    images = []
    for i, scene in enumerate(scenes):
        size = RESOLUTION if i % 2 == 0 else 2 * RESOLUTION
        arr = torch.from_numpy(render(scene, size).copy()).permute(2, 0, 1)[None]
        images.append((prepare(arr) * 255).round().to(torch.uint8))
    return torch.cat(images), scene_targets(scenes)


# ----------------------------------------------------------------------------------------------
# the oracle


@dataclass
class OracleReading:
    """What the oracle reads from a batch of images."""

    features: torch.Tensor  # (N, 35): count softmax, shape/color/size/object sigmoids, position
    count: torch.Tensor  # (N,) 1..4
    shape: torch.Tensor  # (N, 3) bool, present
    color: torch.Tensor  # (N, 6) bool
    size: torch.Tensor  # (N, 2) bool
    object: torch.Tensor  # (N, 18) bool
    position: torch.Tensor  # (N, 2) mean object centre
    logits: dict[str, torch.Tensor]  # raw head outputs
    confident: torch.Tensor  # (N,) bool: every head is decisive (a recognisable scene)

    def single(self, attribute: str) -> torch.Tensor:
        """The one value of ``attribute`` (shape/color/size/object) for one-object images: its argmax."""
        return self.logits[attribute].argmax(1)


class ShapesOracle:
    """A trained :class:`OracleNet` with its recipe and held-out accuracy."""

    def __init__(self, net: OracleNet, recipe: OracleRecipe, accuracy: dict[str, float]):
        self.net, self.recipe, self.accuracy = net.eval(), recipe, accuracy
        for p in self.net.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def read(self, images: torch.Tensor, batch_size: int = 500) -> OracleReading:
        """Read ``images`` (float [-1, 1] or uint8, any size, gray or RGB)."""
        parts = []
        for chunk in images.split(batch_size):
            features, out = self.net(prepare(chunk.cpu()))
            parts.append((features, out))
        out = {k: torch.cat([p[1][k] for p in parts]) for k in OracleNet.HEADS}
        count_p = out["count"].softmax(1)
        probs = {k: out[k].sigmoid() for k in ("shape", "color", "size", "object")}
        # The oracle feature space is what the oracle reads (35 numbers: the head probabilities and
        # the position), not its hidden layer: hidden features of a classifier trained on clean
        # renders separate real from generated by texture alone, so every generator would score
        # precision 0 however right its shapes are.
        features = torch.cat([count_p, *probs.values(), out["position"]], 1)
        decisive = torch.stack([((p < 0.1) | (p > 0.9)).all(1) for p in probs.values()], 1).all(1)
        return OracleReading(
            features=features, count=count_p.argmax(1) + 1,
            shape=probs["shape"] > 0.5, color=probs["color"] > 0.5, size=probs["size"] > 0.5,
            object=probs["object"] > 0.5, position=out["position"], logits=out,
            confident=decisive & (count_p.max(1).values > 0.9))


def attribute_accuracy(reading: OracleReading, target: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-attribute accuracy: sets must match exactly; positions within ``POSITION_TOLERANCE``."""
    acc = {"count": (reading.count == target["count"] + 1).float().mean().item()}
    for key in ("shape", "color", "size", "object"):
        acc[key] = (getattr(reading, key) == target[key].bool()).all(1).float().mean().item()
    acc["position"] = ((reading.position - target["position"]).abs() <= POSITION_TOLERANCE).all(1).float().mean().item()
    return acc


# ----------------------------------------------------------------------------------------------
# task accuracies, for the families that condition on shapes attributes


def class_accuracy(reading: OracleReading, labels: torch.Tensor) -> float:
    """Class-conditional samples (one object each): the object read equals the requested class
    (``shape * 6 + color``, the ``class`` view's label)."""
    return (reading.single("object") == labels.cpu()).float().mean().item()


def target_accuracy(reading: OracleReading, attribute: str, targets: torch.Tensor) -> float:
    """Translation: the fraction of outputs whose ``attribute`` (shape/color/size) is the target value."""
    return (reading.single(attribute) == targets.cpu()).float().mean().item()


def preservation(source: OracleReading, output: OracleReading, attributes: tuple[str, ...] = ("shape", "position")
                 ) -> dict[str, float]:
    """Translation: the fraction of outputs that keep each untouched attribute of their source."""
    return {attribute: kept(source, output, attribute).float().mean().item() for attribute in attributes}


def kept(source: OracleReading, output: OracleReading, attribute: str) -> torch.Tensor:
    """(N,) bool: which outputs keep their source's ``attribute`` (positions within ``POSITION_TOLERANCE``)."""
    if attribute == "position":
        return ((source.position - output.position).abs() <= POSITION_TOLERANCE).all(1)
    if attribute == "count":
        return source.count == output.count
    return (getattr(source, attribute) == getattr(output, attribute)).all(1)


def shapes_attributes(reading: OracleReading, images: torch.Tensor) -> torch.Tensor:
    """The shapes ``attributes`` view's 0/1 vector (Red, Green, Blue, Large, Light_Background) read
    from one-object images: colors and size by the oracle, the background from the border pixels."""
    from ganforge.data.shapes import ATTRIBUTES, EXCLUSIVE_ATTRIBUTES, LIGHT_THRESHOLD, background_level

    color = reading.single("color")
    names = [c.capitalize() for c in COLORS]
    out = torch.zeros(len(color), len(ATTRIBUTES))
    for j, name in enumerate(EXCLUSIVE_ATTRIBUTES):
        out[:, j] = (color == names.index(name)).float()
    out[:, ATTRIBUTES.index("Large")] = (reading.single("size") == 1).float()
    out[:, ATTRIBUTES.index("Light_Background")] = (background_level(images.cpu()) > LIGHT_THRESHOLD).float()
    return out


STRIPED_THRESHOLD = 0.07  # coefficient of variation of the object's brightness: solid renders 0, striped >= 0.11


def read_striped(images: torch.Tensor) -> torch.Tensor:
    """(N,) bool: whether the one object of each image is striped (the shapes domains view's texture).

    The object is every pixel whose brightest channel is more than 30 gray levels from the border's
    background, less a one-pixel rim (anti-aliased edges); it is striped when its brightness varies
    (coefficient of variation above ``STRIPED_THRESHOLD``). Solid renders read 0, striped ones 0.11 to
    0.24, at 32 and 64 px; at 16 px a small object is too few pixels to tell."""
    from ganforge.data.shapes import background_level

    pixels = rgb_uint8(images).cpu()
    bright = pixels.float().amax(1)
    mask = (bright - background_level(pixels)[:, None, None]).abs() > 30
    inner = -F.max_pool2d(-mask.float()[:, None], 3, 1, 1)[:, 0] > 0.5
    inner = torch.where(inner.flatten(1).sum(1)[:, None, None] >= 4, inner, mask)  # tiny objects: keep the rim
    count = inner.flatten(1).sum(1).clamp(min=1)
    values = bright * inner
    mean = values.flatten(1).sum(1) / count
    var = ((bright - mean[:, None, None]) ** 2 * inner).flatten(1).sum(1) / count
    return var.sqrt() / mean.clamp(min=1) > STRIPED_THRESHOLD


def object_set_accuracy(reading: OracleReading, objects: torch.Tensor) -> float:
    """Stories: the fraction of frames whose set of objects (shape x color, (N, 18) 0/1) is read exactly."""
    return (reading.object == objects.bool().cpu()).all(1).float().mean().item()


def train_oracle(recipe: OracleRecipe, progress: bool = True) -> ShapesOracle:
    """Train an oracle from ``recipe`` (about a minute or two on 2 CPU cores)."""
    from ganforge.runtime.progress import progress as progress_bar

    # Local generators only: an oracle trained in the middle of a run must not move its RNG streams.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        images, target = _render_set(recipe.train_images, recipe.seed)
        net = OracleNet(recipe.width)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.steps, pct_start=0.15)
        gen = torch.Generator().manual_seed(recipe.seed)
        net.train()
        bar = progress_bar(range(recipe.steps), desc="training the shapes oracle (once; cached)", unit="step",
                           enabled=progress, delay=0)
        for _ in bar:
            idx = torch.randint(len(images), (recipe.batch_size,), generator=gen)
            x = images[idx].float() / 255.0
            x = (x + recipe.noise_std * torch.rand(len(x), 1, 1, 1, generator=gen)
                 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
            # bf16 autocast: ~3x faster on CPUs with bf16 matrix units; the losses are computed in fp32.
            with torch.autocast("cpu", dtype=torch.bfloat16):
                _, out = net(x)
            loss = head_losses({k: v.float() for k, v in out.items()}, {k: v[idx] for k, v in target.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    oracle = ShapesOracle(net, recipe, {})
    oracle.accuracy = held_out_accuracy(oracle)
    return oracle


def held_out_accuracy(oracle: ShapesOracle, count: int = 2000) -> dict[str, float]:
    """Accuracy on images of the ``shapes`` dataset (seed 0, never seen in training): one-object
    images (the class and attributes views) and the default unconditional view (1-2 objects), at 32
    and 64 px."""
    from ganforge.data.shapes import ShapesDataset

    results: dict[str, list[float]] = {}
    for view, max_objects in (("class", 1), ("attributes", 1), ("unconditional", 2)):
        for size in (32, 64):
            ds = ShapesDataset(length=count, image_size=size, view=view, max_objects=max_objects, seed=0)
            images = torch.stack([torch.from_numpy(ds.image_array(i).copy()).permute(2, 0, 1) for i in range(count)])
            acc = attribute_accuracy(oracle.read(images), scene_targets(ds.scene(i) for i in range(count)))
            for k, v in acc.items():
                results.setdefault(k, []).append(v)
    return {k: float(min(v)) for k, v in results.items()}  # the worst of the six settings


PACKAGED_DIR = Path(__file__).with_name("oracle_weights")


def oracle_path(recipe: OracleRecipe) -> Path:
    """Where ``recipe``'s oracle is cached after training on this machine."""
    return cache_dir("oracle") / f"shapes-oracle-{recipe.digest()}.pt"


def packaged_oracle_path(recipe: OracleRecipe) -> Path:
    """Where the package keeps ``recipe``'s trained weights (present for the default recipe only)."""
    return PACKAGED_DIR / f"shapes-oracle-{recipe.digest()}.safetensors"


def write_packaged_oracle(oracle: ShapesOracle, path: Path) -> None:
    """Save ``oracle`` as safetensors (weights only; recipe and held-out accuracy as metadata)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in oracle.net.state_dict().items()}
    save_file(state, str(path), metadata={"recipe": json.dumps(dataclasses.asdict(oracle.recipe), sort_keys=True),
                                          "accuracy": json.dumps(oracle.accuracy)})


def read_packaged_oracle(path: Path, recipe: OracleRecipe) -> ShapesOracle:
    """Load a safetensors oracle written by :func:`write_packaged_oracle`; its recipe must be ``recipe``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    stored = json.loads(meta.get("recipe", "null"))
    if stored != dataclasses.asdict(recipe):
        raise ValueError(f"oracle weights '{path}' were trained from recipe {stored}, not {dataclasses.asdict(recipe)}")
    net = OracleNet(recipe.width)
    net.load_state_dict(state)
    return ShapesOracle(net, recipe, json.loads(meta["accuracy"]))


def save_oracle(oracle: ShapesOracle, path: Path) -> None:
    from ganforge.run.files import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"recipe": dataclasses.asdict(oracle.recipe), "accuracy": oracle.accuracy,
                "state_dict": oracle.net.state_dict()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_oracle(recipe: OracleRecipe | None = None, train_if_missing: bool = True, progress: bool = True) -> ShapesOracle:
    """The oracle for ``recipe`` (default recipe when None): the package's weights when it ships them,
    else this machine's cached copy, else trained now and cached."""
    recipe = recipe or OracleRecipe()
    packaged = packaged_oracle_path(recipe)
    if packaged.is_file():
        return read_packaged_oracle(packaged, recipe)
    path = oracle_path(recipe)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = OracleNet(recipe.width)
            net.load_state_dict(state["state_dict"])
            return ShapesOracle(net, recipe, dict(state["accuracy"]))
        except Exception as err:  # noqa: BLE001 - a broken cache entry is rebuilt, not fatal
            log.warning("cached oracle '%s' is unreadable (%s); training it again", path, err)
    if not train_if_missing:
        raise FileNotFoundError(f"no cached shapes oracle at '{path}'; run `ganforge oracle` to train it")
    oracle = train_oracle(recipe, progress)
    save_oracle(oracle, path)
    return oracle
