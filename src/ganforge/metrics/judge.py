"""Judges: offline quality on real image sets, as the shapes oracle gives it on the built-in shapes.

A judge is a small CNN classifier trained from a fixed recipe (:class:`JudgeRecipe`) on the training
split of a real, labelled dataset (``fashion_mnist``: its ten classes; ``emoji``: the run's groups or
subgroups), and measured on its test split. Its 256-d penultimate features are the feature space of
judge-FID/KID/precision/recall/density/coverage, and its classes give class accuracy for
class-conditional models (the requested class read back). It is trained once per recipe and data
(Fashion-MNIST: 6.5 minutes on 2 CPU cores) and cached under ``cache_dir("judge")`` by a hash of both;
the package ships the default recipe's Fashion-MNIST judge (``judge_weights/``, the data of Debian's
``dataset-fashion-mnist``), so evaluating there trains nothing. Nothing is downloaded. Every image is
read at 32 x 32 RGB, as the oracle reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.metric_names import EvalError
from ganforge.metrics.oracle import prepare, rgb_uint8
from ganforge.paths import cache_dir
from ganforge.runtime.progress import progress

JUDGED = ("fashion_mnist", "emoji")  # datasets with a labelled train and test split to train a judge on


@dataclass(frozen=True)
class JudgeRecipe:
    """Everything about a judge's training but the data; with the data's hash it names the cache."""

    version: int = 1
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 32
    seed: int = 0
    noise_std: float = 0.04  # augmentation: generated images are noisy, the judge must not care
    shift: int = 2  # augmentation: random translation by up to this many pixels

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


class JudgeNet(nn.Module):
    """Three conv blocks (32 -> 16 -> 8 -> 4 px), a 256-d feature layer, a linear classifier."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2)]

        self.trunk = nn.Sequential(*block(3, width), *block(width, 2 * width), *block(2 * width, 4 * width))
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * 16, 256), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 32, 32) in [0, 1] -> (features (N, 256), class logits)."""
        f = self.features(self.trunk(x * 2 - 1))
        return f, self.classifier(f)


@dataclass
class Judge:
    net: JudgeNet
    recipe: JudgeRecipe
    class_names: list[str]
    accuracy: float  # on the test split

    @torch.no_grad()
    def read(self, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (N, 256) and predicted classes (N,) of any images (float [-1, 1] or uint8, any size)."""
        self.net.eval()
        feats, classes = [], []
        for start in range(0, len(images), batch_size):
            f, logits = self.net(prepare(images[start:start + batch_size]))
            feats.append(f)
            classes.append(logits.argmax(1))
        return torch.cat(feats), torch.cat(classes)


def default_recipe(dataset: str) -> JudgeRecipe:
    """The recipe a dataset's judge is trained from: 3,000 steps of batch 128 for Fashion-MNIST's
    60,000 images; 1,000 for the emoji, whose few hundred training images that repeats about 300 times
    (more only fits them harder, and costs minutes at the first evaluation of every new group list)."""
    return JudgeRecipe(steps=1000) if dataset == "emoji" else JudgeRecipe()


def judge_data(data_cfg: Any) -> tuple[Any, Any]:
    """The labelled train and test splits a judge of the run's data learns and is measured on: the
    whole training split (a run's ``data.fraction`` does not shrink its judge), 32 px, RGB."""
    from ganforge.data import build_dataset

    if data_cfg.name not in JUDGED:
        raise EvalError(f"judges exist for {', '.join(JUDGED)}; this run's data is '{data_cfg.name}'. Use fid,kid "
                        f"(any data) or oracle (the built-in shapes) instead")
    changes: dict[str, Any] = {"image_size": 32}
    if data_cfg.name == "fashion_mnist":
        changes.update(classes=True, channels=3, fraction=1.0, flip=False)
    else:
        changes.update(view="class", flip=False)
    base = dataclasses.replace(data_cfg, **changes)
    return (build_dataset(dataclasses.replace(base, split="train")),
            build_dataset(dataclasses.replace(base, split="test")))


def labelled_tensors(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of ``dataset`` as uint8 RGB (N, 3, 32, 32) and its label."""
    items = [dataset.get(i) for i in progress(range(len(dataset)), desc="reading the judge's data", unit="image")]
    return rgb_uint8(torch.stack([it["image"] for it in items])), torch.stack([it["label"] for it in items])


def _digest(recipe: JudgeRecipe, images: torch.Tensor, labels: torch.Tensor, names: list[str]) -> str:
    digest = hashlib.sha256(recipe.as_json().encode())
    digest.update(images.numpy().tobytes())
    digest.update(labels.numpy().astype(np.int64).tobytes())
    digest.update(json.dumps(names).encode())
    return digest.hexdigest()[:16]


def _augment(x: torch.Tensor, recipe: JudgeRecipe, gen: torch.Generator) -> torch.Tensor:
    """Noise of a random strength and a random shift (zeros brought in), per batch."""
    x = (x + recipe.noise_std * torch.rand(len(x), 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen))
    dy, dx = (int(v) for v in torch.randint(-recipe.shift, recipe.shift + 1, (2,), generator=gen))
    x = torch.roll(F.pad(x, [recipe.shift] * 4), shifts=(dy, dx), dims=(2, 3))
    s = recipe.shift
    return x[:, :, s:s + 32, s:s + 32].clamp(0, 1)


def train_judge(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], names: list[str],
                recipe: JudgeRecipe, show: bool = True) -> Judge:
    """Train a judge on ``train`` (uint8 images, labels) and measure it on ``test``."""
    images, labels = train
    with torch.random.fork_rng(devices=[]):  # a judge trained mid-run must not move the run's streams
        torch.manual_seed(recipe.seed)
        net = JudgeNet(len(names), recipe.width)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.steps, pct_start=0.15)
        gen = torch.Generator().manual_seed(recipe.seed)
        net.train()
        for _ in progress(range(recipe.steps), desc="training the judge (once; cached)", unit="step", enabled=show):
            idx = torch.randint(len(images), (recipe.batch_size,), generator=gen)
            x = _augment(images[idx].float() / 255.0, recipe, gen)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                _, logits = net(x)
            loss = F.cross_entropy(logits.float(), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    judge = Judge(net.eval(), recipe, names, 0.0)
    judge.accuracy = (judge.read(test[0])[1] == test[1]).float().mean().item()
    return judge


PACKAGED_DIR = Path(__file__).with_name("judge_weights")


def load_judge(data_cfg: Any, recipe: JudgeRecipe | None = None, show: bool = True) -> Judge:
    """The judge of a run's data (``data_cfg``): the package's, else this machine's cached one, else
    trained now and cached. The file name holds a hash of the recipe and of the training images."""
    recipe = recipe or default_recipe(data_cfg.name)
    train_ds, test_ds = judge_data(data_cfg)
    names = list(train_ds.class_names)
    train = labelled_tensors(train_ds)
    name = f"{data_cfg.name}-{_digest(recipe, *train, names)}.safetensors"
    for path in (PACKAGED_DIR / name, cache_dir("judge") / name):
        if path.is_file():
            return read_judge(path, recipe, names)
    judge = train_judge(train, labelled_tensors(test_ds), names, recipe, show)
    write_judge(judge, cache_dir("judge") / name)
    return judge


def write_judge(judge: Judge, path: Path) -> None:
    """Save a judge as safetensors (its recipe, classes and test accuracy as metadata), atomically."""
    from safetensors.torch import save

    from ganforge.run.files import atomic_write_bytes

    state = {k: v.detach().contiguous() for k, v in judge.net.state_dict().items()}
    meta = {"recipe": judge.recipe.as_json(), "classes": json.dumps(judge.class_names),
            "accuracy": json.dumps(judge.accuracy)}
    atomic_write_bytes(path, save(state, metadata=meta))


def read_judge(path: Path, recipe: JudgeRecipe, names: list[str]) -> Judge:
    """A judge written by :func:`write_judge`; its recipe and classes must be the expected ones."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("recipe") != recipe.as_json() or json.loads(meta.get("classes", "null")) != names:
        raise EvalError(f"judge weights '{path}' were trained from another recipe or classes; delete the file to "
                        f"train this one again")
    net = JudgeNet(len(names), recipe.width)
    net.load_state_dict(state)
    return Judge(net.eval(), recipe, names, float(json.loads(meta["accuracy"])))
