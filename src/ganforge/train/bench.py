"""Training speed of a config: seconds per step and per official iteration, images per second,
counted FLOPs against the device's measured peak, and peak memory.

The step is the trainer's own (every phase of the recipe, the EMA update included), run on the
configured data without a run folder, so nothing is written. FLOPs are counted once, on a warm-up
step, with the formulas of PyTorch's ``flop_counter`` (matrix products and convolutions, forward and
backward, the penalties' double backward included); that step is not timed because counting slows
it. (``FlopCounterMode`` itself cannot be used: its module tracker breaks ``autograd.grad`` on
inputs, which the gradient penalties and R1 call.) The
peak is what one large matrix product reaches in the run's compute dtype (bf16 under
``runtime.precision=bf16``), measured after the timed steps so it cannot warm or cool them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ganforge.runtime.cpu import OtherCpuUse
from ganforge.runtime.device import peak_memory_bytes, synchronize

if TYPE_CHECKING:
    from ganforge.train.trainer import Trainer


@dataclass
class BenchReport:
    """One benchmark's numbers; ``table()`` prints them, ``asdict`` serializes them."""

    family: str
    device: str
    precision: str
    threads: int
    batch_size: int
    image_size: int | None
    iterations_per_step: int  # official-loop iterations that one trainer step makes
    optimizer_impl: str = "auto"
    channels_last: bool | list[str] = False
    compiled: list[str] = field(default_factory=list)  # networks runtime.compile compiled
    step_s: list[float] = field(default_factory=list)
    images_per_step: int = 0  # real images drawn from the data per step
    flops_per_step: float = 0.0
    peak_flops: float | None = None
    peak_memory_bytes: int | None = None
    parameters: dict[str, int] = field(default_factory=dict)
    busy_elsewhere: float | None = None  # cores other programs kept busy during the timed steps

    @property
    def median_step_s(self) -> float:
        return statistics.median(self.step_s)

    @property
    def iteration_s(self) -> float:
        """Seconds per iteration as the official training loop counts them."""
        return self.median_step_s / self.iterations_per_step

    @property
    def images_per_s(self) -> float:
        return self.images_per_step / self.median_step_s

    @property
    def achieved_flops(self) -> float:
        return self.flops_per_step / self.median_step_s

    @property
    def peak_fraction(self) -> float | None:
        return self.achieved_flops / self.peak_flops if self.peak_flops else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median_step_s=self.median_step_s, iteration_s=self.iteration_s, images_per_s=self.images_per_s,
                   achieved_flops=self.achieved_flops, peak_fraction=self.peak_fraction)
        return out

    def _layout(self) -> str:
        """``, channels_last`` (every network) or ``, channels_last D`` (the named ones), else nothing."""
        if not self.channels_last:
            return ""
        if isinstance(self.channels_last, list):
            return f", channels_last {'+'.join(self.channels_last)}"
        return ", channels_last"

    def table(self) -> str:
        memory = f"{self.peak_memory_bytes / 2 ** 30:.2f} GiB" if self.peak_memory_bytes else "unknown"
        peak = (f"{self.peak_flops / 1e9:.0f} GFLOP/s ({self.precision} matrix product); reached "
                f"{100 * self.peak_fraction:.1f}%") if self.peak_flops else "not measured"
        spread = f"{min(self.step_s):.3f}-{max(self.step_s):.3f}" if len(self.step_s) > 1 else f"{self.step_s[0]:.3f}"
        rows = [
            f"{self.family} on {self.device}, {self.precision}, {self.threads} thread(s), batch {self.batch_size}"
            + (f", {self.image_size} px" if self.image_size else "")
            + f", optimizers {self.optimizer_impl}" + self._layout()
            + (f", compiled {'+'.join(self.compiled)}" if self.compiled else ""),
            f"  s/step            {self.median_step_s:.3f} (median of {len(self.step_s)}; range {spread})",
            f"  s/iteration       {self.iteration_s:.3f} (official loop; {self.iterations_per_step} per step)",
            f"  images/s          {self.images_per_s:.1f} ({self.images_per_step} real images per step)",
            f"  GFLOP/step        {self.flops_per_step / 1e9:.1f} (counted)",
            f"  achieved          {self.achieved_flops / 1e9:.1f} GFLOP/s",
            f"  device peak       {peak}",
            f"  peak memory       {memory}",
            "  parameters        " + ", ".join(f"{k} {v:,}" for k, v in self.parameters.items()),
        ]
        if self.busy_elsewhere is not None and self.busy_elsewhere >= 0.5:
            rows.append(f"  note              other programs kept {self.busy_elsewhere:.1f} cores busy while these "
                        f"steps ran: the times are slower than this machine's. Measure again when it is idle, or "
                        f"compare runtime.threads=N")
        return "\n".join(rows)


def measure_peak_flops(device: torch.device, dtype: torch.dtype, size: int | None = None, repeats: int = 5) -> float:
    """FLOP/s of the best of ``repeats`` ``size`` x ``size`` matrix products in ``dtype`` on ``device``.

    ``size`` defaults to 2048 on the CPU and 8192 on an accelerator, where a 2048 product is over in
    tens of microseconds and would measure launch latency rather than the matrix units.
    """
    size = size or (2048 if device.type == "cpu" else 8192)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)  # warm-up: kernels chosen, pages touched
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best


class _FlopCount(TorchDispatchMode):
    """Adds up the FLOPs of every operator that ``flop_registry`` has a formula for."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def _one_step(trainer: "Trainer") -> None:
    totals = trainer.train_step()
    synchronize(trainer.device)
    trainer._check_finite(totals, False)
    trainer.step += 1


def bench(trainer: "Trainer", steps: int = 3, warmup: int = 1, measure_peak: bool = True) -> BenchReport:
    """Time ``steps`` training steps of ``trainer`` after ``warmup`` (at least one: it counts FLOPs)."""
    from ganforge.train.phases import count_parameters

    if steps < 1 or warmup < 1:
        raise ValueError(f"bench needs steps >= 1 and warmup >= 1 (got steps={steps}, warmup={warmup})")
    cfg = trainer.cfg
    report = BenchReport(
        family=cfg.family, device=str(trainer.device), precision=trainer.precision.name,
        threads=torch.get_num_threads(), batch_size=cfg.train.batch_size,
        image_size=getattr(cfg.model, "image_size", None),
        iterations_per_step=trainer.spec.official_iterations(cfg), optimizer_impl=cfg.runtime.optimizer_impl,
        channels_last=cfg.runtime.channels_last, compiled=list(trainer.compiled),
        parameters={k: count_parameters(v) for k, v in trainer.recipe.networks.items()})
    try:
        position = trainer.stream.position
        with _FlopCount() as counter:
            _one_step(trainer)
        report.flops_per_step = float(counter.total)
        # Samples per step from the data stream's (global) position: each family draws its own number of batches.
        report.images_per_step = trainer.stream.position - position
        for _ in range(warmup - 1):
            _one_step(trainer)
        with OtherCpuUse() as others:
            for _ in range(steps):
                t0 = time.perf_counter()
                _one_step(trainer)
                report.step_s.append(time.perf_counter() - t0)
        report.busy_elsewhere = others.cores
        report.peak_memory_bytes = peak_memory_bytes(trainer.device)
    finally:
        trainer.stream.close()
    if measure_peak:
        report.peak_flops = measure_peak_flops(trainer.device, trainer.precision.dtype)
    return report
