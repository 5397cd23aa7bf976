"""Exponential moving average of a network's weights, as a pure function of the step."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to hold the average."""
    ema = copy.deepcopy(module).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, module: nn.Module, step: int, decay: float, start: int,
               average_buffers: bool = False) -> None:
    """Before ``start`` the average copies the weights; from then on ema <- decay*ema + (1-decay)*w.

    Buffers are copied (batch-norm statistics, as StyleGAN), or with ``average_buffers`` averaged like
    the weights (an EMA of the whole state dict, as some official codes keep; integer buffers are
    still copied).
    """
    beta = decay if step >= start else 0.0
    for e, p in zip(ema.parameters(), module.parameters()):
        e.lerp_(p.detach(), 1.0 - beta)
    for e, b in zip(ema.buffers(), module.buffers()):
        if average_buffers and e.is_floating_point():
            e.lerp_(b, 1.0 - beta)
        else:
            e.copy_(b)
