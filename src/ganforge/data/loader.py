"""The loader that feeds the trainer: an endless, resumable, sharded stream of batches."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader

from ganforge.config import DataConfig
from ganforge.data.cifar import CifarDataset
from ganforge.data.sampler import InfiniteShardedSampler, SeededDataset


def auto_num_workers() -> int:
    """Worker processes that are safe and useful here.

    0 where a worker process would break: an interactive session under the ``spawn`` start method
    (Windows, macOS) cannot re-import ``__main__``. Otherwise one core is left for the training
    step, at most 4 workers.
    """
    import multiprocessing as mp

    main = sys.modules.get("__main__")
    interactive = main is None or not getattr(main, "__file__", None)
    if interactive and mp.get_start_method(allow_none=True) in (None, "spawn", "forkserver") and sys.platform != "linux":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


WORKER_SIGTERM_GRACE_S = 600  # longer than a training step plus a checkpoint at the official sizes on a CPU


def _start_sigterm_grace(signum: int, frame: Any) -> None:
    # The grace counts from the first SIGTERM: a later one (the DataLoader's own terminate(), a second
    # scheduler signal) must not push the end further out.
    pending = signal.alarm(WORKER_SIGTERM_GRACE_S)
    if pending:  # one was already running: put it back as it was
        signal.alarm(pending)


def _worker_init(worker_id: int) -> None:
    # Keep a worker from oversubscribing the cores that the training step is using.
    torch.set_num_threads(1)
    # A preemption SIGTERM often reaches the whole process group (a scheduler, `kill -- -PGID`). The
    # main process finishes its step and writes a checkpoint first; a worker that died on the same
    # signal would make the DataLoader raise in the middle of that step. So a worker outlives SIGTERM
    # for WORKER_SIGTERM_GRACE_S (the main process closes it long before), and then SIGALRM's default
    # action ends it even if it is stuck in C code.
    if hasattr(signal, "alarm"):  # POSIX; on Windows a terminated worker is ended by the OS as before
        signal.signal(signal.SIGTERM, _start_sigterm_grace)
    # Ctrl-C in a terminal reaches the whole process group. A forked worker inherited the trainer's
    # handler, which would announce the stop a second time; the main process alone decides, and
    # closes the workers when it has written its checkpoint.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class BatchStream:
    """An endless iterator of batches that knows its position in the global sample stream.

    ``position`` counts global samples consumed by the trainer (not prefetched by workers), so a
    checkpoint records exactly where to restart.
    """

    def __init__(self, dataset: Any, local_batch: int, world_size: int, rank: int, seed: int, num_workers: int,
                 pin_memory: bool, start: int = 0, mp_context: str | None = None):
        self.dataset, self.local_batch, self.world_size = dataset, local_batch, world_size
        self.global_batch = local_batch * world_size
        self.position = start
        sampler = InfiniteShardedSampler(len(dataset), self.global_batch, rank, world_size, seed, start=start)
        kwargs: dict[str, Any] = {}
        if num_workers > 0:
            kwargs = dict(persistent_workers=True, prefetch_factor=4, worker_init_fn=_worker_init,
                          multiprocessing_context=mp_context)
        self.loader = DataLoader(SeededDataset(dataset), batch_size=local_batch, sampler=sampler,
                                 num_workers=num_workers, pin_memory=pin_memory, drop_last=False, **kwargs)
        self._it: Iterator | None = None

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            self._it = iter(self.loader)
        batch = next(self._it)
        self.position += self.global_batch
        return batch

    def close(self) -> None:
        # Drops the iterator so persistent workers exit now, not at interpreter shutdown.
        self._it = None


def build_loader(dataset: Any, cfg: DataConfig, local_batch: int, world_size: int = 1, rank: int = 0,
                 seed: int = 0, start: int = 0, device: torch.device | None = None) -> BatchStream:
    """A BatchStream over ``dataset`` with ``cfg.num_workers`` (``auto`` picks a safe number)."""
    workers = auto_num_workers() if cfg.num_workers == "auto" else int(cfg.num_workers)
    if getattr(cfg, "in_memory", False) or isinstance(dataset, CifarDataset):
        workers = 0 if cfg.num_workers == "auto" else workers  # nothing to decode: workers only add IPC
    pin = device is not None and device.type == "cuda"
    return BatchStream(dataset, local_batch, world_size, rank, seed, workers, pin, start)
