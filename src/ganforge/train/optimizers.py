"""Which implementation of its update rule each optimizer runs: fused kernels, foreach, or a loop.

The recipes build their optimizers exactly as the official code (Adam with the official betas, lr and
weight decay); how the update is computed is a runtime matter. PyTorch's default on the CPU is the
per-parameter loop, which costs a 45M-parameter discriminator about as much as a quarter of
its forward and backward pass; the fused kernel computes the same rule in one pass (equal up to
float rounding, not bit for bit, so a run keeps one implementation from start to resume).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch.optim.optimizer import _get_fused_kernels_supported_devices

IMPLEMENTATIONS = ("auto", "fused", "foreach", "for_loop")


def _supports_fused(opt: torch.optim.Optimizer, device: torch.device) -> bool:
    # Only optimizers whose constructor takes `fused` (Adam, AdamW, SGD, Adagrad) have the kernels.
    return "fused" in opt.defaults and device.type in _get_fused_kernels_supported_devices()


def use_implementation(optimizers: Iterable[torch.optim.Optimizer], name: str, device: torch.device) -> None:
    """Switch ``optimizers`` in place to ``name``: ``auto`` is fused where the device has the kernels,
    else PyTorch's default; ``fused`` refuses an optimizer or device without them."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"runtime.optimizer_impl: '{name}' is not one of {', '.join(IMPLEMENTATIONS)}")
    for opt in optimizers:
        fused = _supports_fused(opt, device)
        if name == "fused" and not fused:
            raise ValueError(f"runtime.optimizer_impl=fused: {type(opt).__name__} on {device.type} has no fused "
                             f"kernels; use auto, foreach or for_loop")
        if name == "auto" and not fused:
            continue
        flags = {"fused": name in ("auto", "fused"), "foreach": name == "foreach"}
        opt.defaults.update(flags)
        for group in opt.param_groups:
            group.update(flags)
        # What the constructor sets for fused optimizers: a GradScaler then hands them the scale and
        # the inf flag instead of unscaling the gradients first.
        opt._step_supports_amp_scaling = flags["fused"]
