"""Class sheets of class-conditional generators (``(z, y)`` inputs): one row per class, each column one
shared noise vector, as BigGAN-PyTorch's ``sample_sheet`` lays them out; and the ``--classes`` syntax.
Any family of kind ``class`` draws them with these functions."""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn as nn

from ganforge.sample.grid import GridLabels
from ganforge.sample.noise import truncated_normal


def parse_classes(text: str | None, num_classes: int) -> list[int]:
    """``0-9`` or ``3,7,11`` -> class indices, checked against the model's class count (none: the first 20)."""
    if not text:
        return list(range(min(num_classes, 20)))
    classes: list[int] = []
    for part in text.split(","):
        try:
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                classes += list(range(lo, hi + 1))
            else:
                classes.append(int(part))
        except ValueError:
            raise ValueError(f"--classes: '{part}' is not an index or a range like 0-9") from None
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"--classes: {bad} outside 0..{num_classes - 1} (the model has {num_classes} classes)")
    return classes


@torch.no_grad()
def class_sheet(net: nn.Module, classes: list[int], samples_per_class: int = 10, seed: int = 0,
                truncation: float | None = None) -> tuple[torch.Tensor, int]:
    """One row per class, ``samples_per_class`` samples each, column j sharing one z (the official
    sample sheets); ``net`` takes ``(z, y)`` and has ``make_inputs``. Images in [-1, 1] on the CPU, and
    the number per row."""
    num = max(int(getattr(getattr(net, "model_config", getattr(net, "cfg", None)), "num_classes", 0) or 0), 1)
    bad = [c for c in classes if not 0 <= c < num]
    if bad:
        raise ValueError(f"classes {bad} are outside 0..{num - 1}")
    z_shape = tuple(net.make_inputs(1)[0].shape[1:])
    gen, device = torch.Generator().manual_seed(seed), next(net.parameters()).device
    y = torch.tensor(classes, dtype=torch.long, device=device)
    columns = []
    for _ in range(samples_per_class):
        z = truncated_normal((len(classes), *z_shape), truncation, gen).to(device)
        columns.append(net(z, y).float().cpu())
    return torch.stack(columns, 1).reshape(-1, *columns[0].shape[1:]), samples_per_class  # row = class


def sheet_labels(opened: Any, weights: str, classes: list[int], args: argparse.Namespace) -> GridLabels:
    """A row label per class (its name where the run's data tells it, else its number) and a title."""
    from ganforge.data import class_names

    data = (opened.record or {}).get("config", {}).get("data", {}) if opened.record is not None else {}
    names = class_names(data) or []
    trunc = f", truncation {args.truncation}" if getattr(args, "truncation", None) else ""
    return GridLabels(title=f"one row per class; each column shares one z (seed {args.seed}{trunc}; {weights} "
                            f"weights, step {opened.step})",
                      rows=[f"{c}: {names[c]}" if c < len(names) else f"class {c}" for c in classes])
