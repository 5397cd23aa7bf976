"""An endless, shardable, resumable stream of sample indices.

The global stream concatenates one seeded permutation per epoch. Rank r of W takes, from every
global batch of B samples, the slice [r*B/W, (r+1)*B/W): the union over ranks of one step's
batches is exactly the batch a single process would see, which is what makes a torchrun run
comparable with a one-process run. Batches never come up short (a batch may span an epoch
boundary), so a dataset smaller than a batch or a last partial batch cannot crash the loop.

Each yielded item is ``(index, sample_seed)``: random crops and flips draw from a generator seeded
by the sample's global position, so augmentation is the same with any number of workers or ranks
and after a resume.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class InfiniteShardedSampler(Sampler):
    """Yield ``(dataset_index, sample_seed)`` forever, starting at global position ``start``."""

    def __init__(self, length: int, global_batch: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True, start: int = 0):
        if length <= 0:
            raise ValueError("cannot sample from an empty dataset")
        if global_batch % world_size:
            raise ValueError(f"batch {global_batch} does not split over {world_size} ranks")
        self.length, self.global_batch = length, global_batch
        self.rank, self.world_size = rank, world_size
        self.local_batch = global_batch // world_size
        self.seed, self.shuffle, self.start = seed, shuffle, start

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.length)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.length, generator=g)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        pos = self.start - self.start % self.global_batch  # positions are whole global batches
        epoch, order = -1, None
        while True:
            base = pos + self.rank * self.local_batch
            for k in range(self.local_batch):
                g = base + k
                e = g // self.length
                if e != epoch:
                    epoch, order = e, self._epoch_order(e)
                yield int(order[g % self.length]), sample_seed(self.seed, g)
            pos += self.global_batch

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**62


def sample_seed(seed: int, position: int) -> int:
    """A well-mixed 63-bit seed for the sample at global ``position``."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1, np.uint64)[0] >> 1)


class SeededDataset(Dataset):
    """Adapter: ``ds[(index, seed)]`` calls ``ds.get(index, rng)`` with a generator from ``seed``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        return self.dataset.get(index, np.random.default_rng(seed))
