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
def update_ema(ema: nn.Module, module: nn.Module, step: int, decay: float, start: int) -> None:
    """Before ``start`` the average copies the weights; from then on ema <- decay*ema + (1-decay)*w.

    Buffers (batch-norm statistics) are copied, as in BigGAN and StyleGAN.
    """
    beta = decay if step >= start else 0.0
    for e, p in zip(ema.parameters(), module.parameters()):
        e.lerp_(p.detach(), 1.0 - beta)
    for e, b in zip(ema.buffers(), module.buffers()):
        e.copy_(b)
