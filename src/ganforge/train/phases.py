"""What a family hands the trainer: networks, optimizers and a list of phases.

A phase is one optimizer update: a name, the network whose parameters it updates, how many times
it repeats per step (a Wasserstein critic's n_critic), how often it runs, what its loss takes, and a loss
function that returns ``(total, {"part": value})``. The trainer does everything else.

What a loss takes (``Phase.takes``): ``"batch"``, a fresh batch from the data stream for every
micro-batch (turned into the loss's inputs by ``Phase.prepare``); ``"nothing"`` (a loss that draws
only noise); or the name of an earlier phase of the step, whose last update's inputs the trainer
hands on, micro-batch by micro-batch (a G update on the batches of the last critic update, or four
updates on one iteration's inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn

from ganforge.layers.conv import DEFAULT_MATMUL_MAX_POSITIONS, set_matmul_max_positions
from ganforge.layers.norm import to_channels_last
from ganforge.runtime.distributed import DistInfo
from ganforge.runtime.precision import Precision

Batch = dict[str, torch.Tensor]
LossFn = Callable[[Any], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Phase:
    name: str
    network: str  # key into Recipe.networks / Recipe.optimizers
    loss: LossFn
    repeats: int = 1  # updates per step, each on a fresh batch
    every: int = 1  # run on steps where step % every == 0
    takes: str = "batch"  # "batch", "nothing", or an earlier phase's name (see the module docstring)
    # takes="batch": the loss's inputs made from the batch (drawn noise, targets); None: the batch itself
    prepare: Callable[[Batch], Any] | None = None
    # Micro-batches per update, on top of train.grad_accum (the official num_D/G_accumulations): the
    # gradients of ``accumulations`` losses, each divided by it, are summed before the optimizer step.
    accumulations: int = 1
    # Called after the gradients are complete (averaged over ranks, unscaled) and before the
    # optimizer step: an orthogonal regularization adds its gradient here.
    before_step: Callable[[], None] | None = None
    # Sub-modules of ``network`` that this phase trains (their parameters alone get gradients and
    # updates); empty: the whole network. A reference-guided G update may step the generator
    # but not the mapping network or style encoder that live in the same module.
    submodules: tuple[str, ...] = ()


@dataclass
class Recipe:
    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    phases: list[Phase]
    generator: str = "G"  # the network that EMA tracks and that sampling and export use
    lr_schedule: Callable[[int], float] | None = None  # factor of the base lr at a step; None: trainer's
    # The EMA's decay at a step (0-based, the step just trained), for recipes that schedule it (a half-life
    # in images that grows over training); None: train.ema.decay from train.ema.start on.
    ema_decay: Callable[[int], float] | None = None
    # EMA of buffers too (some official codes average the whole state dict, BN statistics and SN vectors included);
    # False copies them (StyleGAN, the default).
    ema_averages_buffers: bool = False
    # The periodic sample grid: generator -> (images in [-1, 1], images per row). None: the trainer
    # draws ``generator.make_inputs`` (unconditional and class-conditional families).
    sample: Callable[[nn.Module], tuple[torch.Tensor, int]] | None = None
    # More sheets written beside the grid: generator -> {name: (images, images per row)}
    # (class sheets and interpolations, as an official save_and_sample writes them).
    extra_samples: Callable[[nn.Module], dict[str, tuple[torch.Tensor, int]]] | None = None
    # The network that sample grids and evaluations use, made from the generator (or its EMA) just
    # before (standing batch-norm statistics, computed on a copy). None: the generator itself.
    prepare_sampler: Callable[[nn.Module], nn.Module] | None = None
    # What the batch stream reads, when not the dataset itself (a story family pairs each story with image
    # samples); sample grids and evaluations still use the dataset.
    train_data: Any = None
    # Networks whose graph a penalty differentiates twice (gradient penalty, R1): runtime.compile
    # leaves them eager, since compiled graphs have no double backward.
    twice_differentiated: tuple[str, ...] = ()
    # State of the recipe's own beyond networks and optimizers (LeCam's anchors): an object with
    # state_dict() / load_state_dict(), checkpointed so that a resume continues exactly. None: none.
    state: Any = None


@dataclass
class RecipeContext:
    """What a recipe may use at build and loss time: device, precision, ranks and the noise stream.

    Noise is drawn on the CPU from one generator that has the same seed on every rank: each rank
    draws the whole global batch and keeps its slice. A seed therefore gives the same noise on any
    device and with any number of processes, which is what lets a torchrun run match a 1-process
    run, and what makes resume exact (the generator's state is checkpointed).
    """

    device: torch.device
    precision: Precision
    dist: DistInfo
    local_batch: int  # samples per rank per micro-batch
    channels_last: bool = False
    conv_matmul_positions: int = DEFAULT_MATMUL_MAX_POSITIONS
    noise: torch.Generator = field(default_factory=torch.Generator)
    dataset: Any = None  # the training data (label names, fixed images for sample grids)
    step: int = 0  # the step being trained (0-based), set by the trainer before its phases run

    def _global_slice(self, draw: Callable[..., torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
        n = shape[0]
        full = draw((n * self.dist.world_size, *shape[1:]), generator=self.noise)
        part = full[self.dist.rank * n:(self.dist.rank + 1) * n]
        return part.to(self.device, non_blocking=True)

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal noise of ``shape`` (first dim: this rank's samples), on the device."""
        return self._global_slice(torch.randn, shape)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) noise of ``shape``, on the device."""
        return self._global_slice(torch.rand, shape)

    def randperm(self, n: int) -> torch.Tensor:
        """A random permutation of this rank's ``n`` samples (argsort of uniform noise), on the device."""
        return self.rand(n).argsort()

    def randint(self, high: int, n: int) -> torch.Tensor:
        """``n`` integers in [0, high), on the device."""
        return self._global_slice(lambda s, generator: torch.randint(high, s, generator=generator), (n,))

    def images(self, batch: Batch, key: str = "image") -> torch.Tensor:
        """A batch's images on the device, in the memory format the networks use."""
        x = batch[key].to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def place(self, module: nn.Module) -> nn.Module:
        """Move a freshly built network to the device (and channels_last if configured), with the run's
        choice of matrix products for small-output convolutions on the CPU."""
        module = set_matmul_max_positions(module.to(self.device), self.conv_matmul_positions)
        return to_channels_last(module) if self.channels_last else module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
