"""How StarGAN is evaluated: translations of held-out real images, for FID-style metrics and, on
the shapes attributes view, the oracle's reading of every translation.

Images for distribution metrics: each real input is translated to one official target (image i
to column i mod T), so the generated set covers every target evenly.

Translation metrics (shapes, one column per attribute as in the official test grid):
- ``target_acc``: the attribute the column changes reads as its target value;
- ``preserve_attrs``: every other attribute reads as in the target vector (unchanged from the source);
- ``preserve_shape`` / ``preserve_position``: the object keeps its shape / its position (within
  5% of the image side), which no label mentions and a translation must not touch.
- ``target_acc/<attr>`` and ``preserve_shape/<attr>``: the same for the column of one attribute.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn

from ganforge.models.stargan.labels import conditioning_for_dataset


class StarganEvaluation:
    """Family hooks for :class:`ganforge.metrics.evaluate.Evaluator`."""

    task_group = "translation"

    def __init__(self, dataset: Any):
        self.dataset = dataset
        self.cond = conditioning_for_dataset(dataset)
        self.labels = self.cond.parts[0].space  # images come from the first dataset

    def _batches(self, indices: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        part = self.cond.parts[0]
        for start in range(0, len(indices), batch_size):
            items = [self.dataset.get(int(i)) for i in indices[start:start + batch_size]]
            labels = torch.stack([it[part.label_key] for it in items])
            yield torch.stack([it[part.image_key] for it in items]), part.space.condition(labels)

    @torch.no_grad()
    def images(self, net: nn.Module, indices: np.ndarray, batch_size: int, device: torch.device
               ) -> Iterator[torch.Tensor]:
        """Translations of the real images at ``indices``, image i to official target i mod T."""
        offset = 0
        for x, c in self._batches(indices, batch_size):
            targets = torch.stack([t for _, t in self.cond.official_targets(0, c)], 1)  # (N, T, c_dim)
            pick = (torch.arange(len(x)) + offset) % targets.shape[1]
            offset += len(x)
            yield net(x.to(device), targets[torch.arange(len(x)), pick].to(device)).float().cpu()

    @torch.no_grad()
    def task_metrics(self, net: nn.Module, oracle: Any, indices: np.ndarray, batch_size: int,
                     device: torch.device) -> dict[str, float]:
        """The oracle's reading of every input x official target (shapes attributes view only)."""
        from ganforge.data.shapes import ATTRIBUTES
        from ganforge.metrics.oracle import kept, shapes_attributes

        if not set(self.labels.names) <= set(ATTRIBUTES):
            raise ValueError("translation metrics read the shapes attributes view; this data has labels "
                             f"{', '.join(self.labels.names)}")
        columns = [ATTRIBUTES.index(a) for a in self.labels.names]
        hits: dict[str, list[torch.Tensor]] = {}
        for x, c in self._batches(indices, batch_size):
            src = oracle.read(x)
            for name, target in self.labels.official_targets(c):
                out = net(x.to(device), self.cond.condition(0, target).to(device)).float().cpu()
                reading = oracle.read(out)
                got = shapes_attributes(reading, out)[:, columns]
                changed = [k for k, a in enumerate(self.labels.names)
                           if a == name or (name in self.labels.exclusive and a in self.labels.exclusive)]
                others = [k for k in range(len(columns)) if k not in changed]
                hit = (got[:, changed] == target[:, changed]).all(1)
                hits.setdefault("target_acc", []).append(hit)
                hits.setdefault(f"target_acc/{name}", []).append(hit)
                hits.setdefault("preserve_attrs", []).append((got[:, others] == target[:, others]).all(1))
                shape_kept = kept(src, reading, "shape")
                hits.setdefault("preserve_shape", []).append(shape_kept)
                # per column too: a change of geometry (Large) and a recolouring lose shape differently
                hits.setdefault(f"preserve_shape/{name}", []).append(shape_kept)
                hits.setdefault("preserve_position", []).append(kept(src, reading, "position"))
        means = {k: torch.cat(v).float().mean().item() for k, v in hits.items()}
        # overall numbers first, then the per-attribute ones
        return dict(sorted(means.items(), key=lambda kv: "/" in kv[0]))
