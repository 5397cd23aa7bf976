"""Out-of-memory on the device: say which ``train.batch_size`` fits instead of a bare CUDA error.

When the first steps of a run exhaust the accelerator's memory, the failing trainer is released and
the batch size is probed downwards (halving, one training step each, nothing written): the error
then names the largest batch that ran and the ``train.grad_accum`` that keeps the configured
effective batch. Under torchrun no probe is made (a probe on one rank would stall the others); the
message suggests gradient accumulation instead. Running out while the networks are being placed on
the device (before any batch exists) is a different error: the model itself does not fit.
"""

from __future__ import annotations

import copy
import gc
from typing import Any, Callable

import torch

_OOM_TYPES = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
                   if isinstance(t, type))


class DeviceMemoryError(RuntimeError):
    """A run does not fit in the accelerator's memory; the message says what to change."""


class BatchTooLarge(DeviceMemoryError):
    """The configured batch does not fit in the device's memory; the message says what does."""


class ModelTooLarge(DeviceMemoryError):
    """The networks (with their EMA copy and, on resume, the checkpoint) do not fit before any batch."""


def is_out_of_memory(err: BaseException) -> bool:
    """True for PyTorch's out-of-memory errors on any accelerator (CUDA, ROCm, MPS, XPU)."""
    return isinstance(err, _OOM_TYPES) or (isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _memory_of(device: torch.device) -> str:
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory / 2 ** 30
        return f"{device} ({total:.1f} GiB)"
    return str(device)


def candidate_batches(batch: int, multiple: int) -> list[int]:
    """Smaller global batch sizes to try, halving, each a multiple of ``multiple`` (processes x grad_accum)."""
    out, b = [], batch // 2
    while b >= multiple:
        b -= b % multiple
        if b and (not out or b < out[-1]):
            out.append(b)
        b //= 2
    return out


def probe_largest_batch(cfg: Any, fits: Callable[[Any], bool]) -> int | None:
    """The largest candidate ``train.batch_size`` for which ``fits(cfg_copy)`` is True (None if none)."""
    tr = cfg.train
    for batch in candidate_batches(tr.batch_size, tr.grad_accum):
        trial = copy.deepcopy(cfg)
        trial.train.batch_size = batch
        if fits(trial):
            return batch
    return None


def model_too_large(cfg: Any, device: torch.device, err: BaseException) -> ModelTooLarge:
    """The error for an out-of-memory raised while the trainer was being built: no batch size helps."""
    return ModelTooLarge(f"building the {cfg.family} networks on {_memory_of(device)} ran out of memory before the "
                         f"first training step, so no train.batch_size would help: the networks, their EMA copy and "
                         f"their optimizer state do not fit. Use a smaller model (e.g. a smaller model.image_size), "
                         f"runtime.device=cpu, or a device with more memory (PyTorch said: {str(err).strip()[:200]})")


def explain(cfg: Any, device: torch.device, world_size: int, largest: int | None) -> BatchTooLarge:
    """The error for a batch that does not fit, with the probed size (or the accumulation to use)."""
    tr = cfg.train
    where = _memory_of(device)
    head = f"train.batch_size={tr.batch_size} does not fit in the memory of {where}"
    if world_size > 1:
        return BatchTooLarge(f"{head} (per process: {tr.batch_size // world_size}). Keep the effective batch with "
                             f"gradient accumulation, e.g. train.grad_accum={2 * tr.grad_accum}, or lower "
                             f"train.batch_size (no probe is made under torchrun)")
    if largest is None:
        return BatchTooLarge(f"{head}, and no smaller batch fits either (tried down to {tr.grad_accum}): use a smaller "
                             f"model or model.image_size, runtime.precision=bf16, or a larger device")
    # The smallest accumulation whose micro-batches are no larger than the probed ones and divide the batch.
    accum = -(-tr.grad_accum * tr.batch_size // largest)
    while tr.batch_size % accum:
        accum += 1
    return BatchTooLarge(f"{head}: the largest batch that fits is {largest} (probed with one training step). Set "
                         f"train.batch_size={largest}, or keep the effective batch of {tr.batch_size} with "
                         f"train.grad_accum={accum} (micro-batches of {tr.batch_size // accum})")
