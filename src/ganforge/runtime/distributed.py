"""torchrun integration: process groups, gradient averaging, rank-0-only writes.

We average gradients with one flattened ``all_reduce`` per optimizer step instead of wrapping
networks in ``DistributedDataParallel``: GAN phases toggle ``requires_grad`` between networks and
gradient penalties need double backward (``autograd.grad(create_graph=True)``), neither of which
DDP's reducer supports. The result is the same data-parallel SGD: each rank computes gradients on
its shard of the global batch, and every rank applies the mean.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when torchrun (or any launcher using its variables) started us with WORLD_SIZE > 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_info() -> DistInfo:
    """Rank information from the torchrun environment variables (1 process when absent)."""
    return DistInfo(rank=int(os.environ.get("RANK", "0")),
                    world_size=int(os.environ.get("WORLD_SIZE", "1")),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def backend_for(device: torch.device) -> str:
    """nccl on CUDA, gloo on the CPU, the device's own backend elsewhere (xccl, hccl, ...)."""
    if device.type == "cpu":
        return "gloo"
    if device.type == "cuda":
        return "nccl"
    get = getattr(dist, "get_default_backend_for_device", None)
    return get(device) if get is not None else "gloo"


def init_distributed(device: torch.device, timeout_s: int = 600) -> DistInfo:
    """Join the process group torchrun prepared; a no-op for a single process.

    The timeout bounds how long a rank waits for a lost peer before it fails with an error
    instead of hanging.
    """
    info = env_info()
    if not info.enabled or dist.is_initialized():
        return info
    kwargs: dict = {}
    if device.type != "cpu":
        kwargs["device_id"] = device
    timeout = datetime.timedelta(seconds=timeout_s)
    store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
    # Keys of their own for each torchrun restart: a restarted rank must never read the address a
    # killed rank of the previous attempt left in the agent's store (it would connect to a dead port).
    store = dist.PrefixStore(f"ganforge/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
    _HEARTBEATS.update(store=store, rank=rank, arrived=0)
    dist.init_process_group(backend=backend_for(device), store=store, rank=rank, world_size=world_size,
                            timeout=timeout, **kwargs)
    return info


# The rendezvous store (served by torchrun's agent, so it answers while a worker hangs): before each
# collective of the training step a rank notes there how many it has entered, and after each step the
# step it finished; a collective that times out then names the rank that never arrived.
_HEARTBEATS: dict[str, object] = {}


class PeerTimeout(RuntimeError):
    """A collective got no answer from another rank within ``runtime.dist_timeout_s``."""


def _note(key: str, value: int) -> None:
    store = _HEARTBEATS.get("store")
    if store is not None:
        store.set(f"{key}/{_HEARTBEATS['rank']}", str(value))


def arrive() -> None:
    """Note that this rank enters one more collective (called before each one of the training step)."""
    if "store" in _HEARTBEATS:
        _HEARTBEATS["arrived"] = int(_HEARTBEATS.get("arrived", 0)) + 1
        _note("arrived", int(_HEARTBEATS["arrived"]))


def heartbeat(info: DistInfo, step: int) -> None:
    """Note that this rank finished ``step`` (a no-op for one process)."""
    if info.enabled:
        _note("step", step)


def _read(store: object, key: str) -> int | None:
    try:
        return int(store.get(key)) if store.check([key]) else None
    except RuntimeError:  # the store itself is gone: nothing to read
        return None


def silent_ranks(info: DistInfo) -> dict[int, int | None]:
    """The ranks that entered fewer collectives than this one, or every other rank when none did (one of
    them stopped inside the collective); rank -> the last step it finished."""
    store = _HEARTBEATS.get("store")
    if store is None:
        return {}
    ours = int(_HEARTBEATS.get("arrived", 0))
    others = {rank: _read(store, f"arrived/{rank}") or 0 for rank in range(info.world_size) if rank != info.rank}
    behind = [rank for rank, count in others.items() if count < ours] or list(others)
    return {rank: _read(store, f"step/{rank}") for rank in behind}


def explain_timeout(err: Exception, info: DistInfo, step: int, timeout_s: int) -> PeerTimeout | None:
    """A PeerTimeout naming the silent rank(s) for a collective that timed out or lost its peer; None for
    any other error."""
    text = str(err)
    if not any(s in text for s in ("Timed out", "timed out", "Connection reset", "Connection closed")):
        return None
    silent = silent_ranks(info)
    named = ", ".join(f"rank {r} (last finished step {last if last is not None else 'none'})"
                      for r, last in sorted(silent.items())) or "another rank"
    return PeerTimeout(f"rank {info.rank}: no answer from {named} within runtime.dist_timeout_s={timeout_s} s at "
                       f"step {step}; it hung or was lost. The run stops here (its last checkpoint is intact); "
                       f"`ganforge resume` continues it on any number of processes.")


def shutdown() -> None:
    """Leave the process group (safe to call when none exists)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params: Iterable[torch.nn.Parameter], world_size: int) -> None:
    """Replace each gradient by its mean over ranks, with one collective call."""
    if world_size <= 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    arrive()
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def broadcast_module(module: torch.nn.Module, world_size: int) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if world_size <= 1:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, world_size: int) -> torch.Tensor:
    """Mean of a tensor over ranks (for logging)."""
    if world_size <= 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world_size
