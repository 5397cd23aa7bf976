"""How StoryGAN is evaluated: stories drawn from the descriptions of real stories, compared with them.

Metric group ``story`` (every frame of ``n`` stories, fixed noise):

- ``ssim``: SSIM of each generated frame against its ground-truth frame (the paper's CLEVR-SV metric);
- on the shapes story view, read by the shapes oracle and the known scenes:
  - ``object_acc``: the oracle reads exactly the frame's set of objects (shape x color), and
    ``object_acc/frame<t>`` per frame;
  - ``object_acc/slot<k>``: the object added in frame k is read (by shape x color) in the frames that
    show it, k to the last: which of a story's objects the generator loses;
  - ``count_acc``: the oracle counts the frame's objects (t + 1 in frame t);
  - ``in_place``: every earlier object (added in a previous frame) is still where its description
    puts it: the mean color of a patch at its center is nearest to its own color (among the six
    colors and the story's background). Ground truth scores 1.0 on it.
- on Pororo-SV with a character classifier (``--classifier``): ``char_acc`` and ``char_f1``
  (:mod:`ganforge.models.storygan.characters`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.data.story import ShapesStoryDataset
from ganforge.metrics.ssim import ssim
from ganforge.models.storygan.characters import character_scores


class StoryganEvaluation:
    """Family hooks for :class:`ganforge.metrics.evaluate.Evaluator` (metric group ``story``)."""

    task_group = "story"

    def __init__(self, dataset: Any, classifier: Any = None):
        self.dataset = dataset
        self.classifier = classifier  # Pororo-SV: a character classifier (characters.py), when given

    @torch.no_grad()
    def stories(self, net: nn.Module, indices: np.ndarray, batch_size: int, device: torch.device,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(generated, ground truth) stories (N, T, 3, H, W) for the stories at ``indices``."""
        gen = torch.Generator().manual_seed(seed)
        fake, real = [], []
        core = net.net if hasattr(net, "net") else net
        for start in range(0, len(indices), batch_size):
            items = [self.dataset.get(int(i)) for i in indices[start:start + batch_size]]
            d = torch.stack([it["descriptions"] for it in items])
            noise = torch.randn(len(d), core.cfg.video_len, core.cfg.noise_dim, generator=gen)
            fake.append(net(d.to(device), noise.to(device)).float().cpu())
            real.append(torch.stack([it["images"] for it in items]))
        return torch.cat(fake), torch.cat(real)

    def task_metrics(self, net: nn.Module, oracle: Any, indices: np.ndarray, batch_size: int,
                     device: torch.device) -> dict[str, float]:
        fake, real = self.stories(net, indices, batch_size, device)
        out = {"ssim": ssim(fake.flatten(0, 1), real.flatten(0, 1)).mean().item()}
        if isinstance(self.dataset, ShapesStoryDataset) and oracle is not None:
            out.update(shapes_story_metrics(self.dataset, indices, fake, oracle))
        if self.classifier is not None:
            out.update(character_scores(self.classifier, fake.flatten(0, 1), self._labels(indices)))
        return out

    def _labels(self, indices: np.ndarray) -> torch.Tensor:
        return torch.cat([self.dataset.get(int(i))["labels"] for i in indices])

    reference_notes = ["reference: what the ground truth itself scores; for ssim (1 against itself), a real story "
                       "against another real story, i.e. what frames unrelated to the description score"]

    def reference(self, oracle: Any, indices: np.ndarray) -> dict[str, float]:
        """The same metrics for the ground truth itself (what a perfect model scores). SSIM, which would
        be 1, is taken between each real story and the next one instead: the score of a story that
        looks real but ignores its description, so a model's SSIM above it means something."""
        real = torch.stack([self.dataset.get(int(i))["images"] for i in indices])
        shuffled = real.roll(1, dims=0)
        out = {"ssim": ssim(shuffled.flatten(0, 1), real.flatten(0, 1)).mean().item() if len(real) > 1
               else float("nan")}
        if isinstance(self.dataset, ShapesStoryDataset) and oracle is not None:
            out.update(shapes_story_metrics(self.dataset, indices, real, oracle))
        if self.classifier is not None:
            out.update(character_scores(self.classifier, real.flatten(0, 1), self._labels(indices)))
        return out


def shapes_story_metrics(dataset: ShapesStoryDataset, indices: np.ndarray, stories: torch.Tensor,
                         oracle: Any) -> dict[str, float]:
    """``object_acc`` (and per frame), ``count_acc`` and ``in_place`` of ``stories`` (N, T, 3, H, W)."""
    from ganforge.data.shapes import NUM_CLASSES

    n, t = stories.shape[:2]
    reading = oracle.read(stories.flatten(0, 1))
    ids = torch.tensor([[obj.class_id for obj in dataset.scenes[int(i)].objects[:t]] for i in indices])  # (n, k)
    shown = torch.ones(t, t, dtype=torch.bool).tril()  # [f, k]: frame f shows the object added in frame k
    # objects[row, f, c]: class c is among frame f's objects (each object present from its frame on)
    objects = (F.one_hot(ids, NUM_CLASSES).bool()[:, None] & shown[None, :, :, None]).any(2)
    read = reading.object.view(n, t, -1)
    hit = (read == objects).all(2)
    counts = torch.arange(1, t + 1).expand(n, t)
    slot_read = read.gather(2, ids[:, None, :].expand(n, t, t))  # [row, f, k]: frame f reads object k's class
    out = {"object_acc": hit.float().mean().item(),
           "count_acc": (reading.count.view(n, t) == counts).float().mean().item(),
           "in_place": in_place(dataset, indices, stories)}
    out.update({f"object_acc/frame{k + 1}": hit[:, k].float().mean().item() for k in range(t)})
    out.update({f"object_acc/slot{k + 1}": slot_read[:, shown[:, k], k].float().mean().item() for k in range(t)})
    return out


def in_place(dataset: ShapesStoryDataset, indices: np.ndarray, stories: torch.Tensor) -> float:
    """Fraction of (frame, earlier object) pairs whose object is still drawn at its place in its color."""
    from ganforge.data.shapes import COLORS, SIZES

    palette = torch.tensor(list(COLORS.values()), dtype=torch.float32)  # (6, 3)
    images = ((stories.float() + 1) * 127.5).clamp(0, 255)
    side = images.shape[-1]
    hits = []
    for row, i in enumerate(indices):
        scene = dataset.scenes[int(i)]
        choices = torch.cat([palette, torch.full((1, 3), float(scene.background))])
        for frame in range(1, images.shape[1]):
            for obj in scene.objects[:frame]:
                # A patch well inside the object whatever its shape (a triangle is widest below its center).
                half = max(1, int(0.3 * SIZES[obj.size] / 2 * side))
                cx, cy = int(obj.x * side), int(obj.y * side)
                patch = images[row, frame, :, cy - half:cy + half + 1, cx - half:cx + half + 1]
                mean = patch.flatten(1).mean(1)
                hits.append(int((choices - mean).norm(dim=1).argmin()) == obj.color)
    return float(np.mean(hits)) if hits else float("nan")
