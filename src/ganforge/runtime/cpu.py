"""How many CPU threads to train with, and noticing when another program takes the CPU.

PyTorch starts one intra-op thread per core, and OpenMP keeps its threads spinning between parallel
regions. That is the fastest choice on an idle machine and a very slow one beside another busy
program: every parallel region waits for the thread whose core the other program holds (StarGAN v2 on
2 cores: 0.46 s/step alone, 1.9 s/step beside one busy process, 0.71 s/step there on one thread). A
passive OpenMP wait policy would soften the second case but costs 40% alone, so ganforge keeps the
spinning threads and instead uses only the cores that are free when a run starts
(``runtime.threads`` unset), and warns when steps later slow down far beyond their early pace.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

# PyTorch's own choice (one thread per core, or OMP_NUM_THREADS), read before anything changes it.
_TORCH_DEFAULT_THREADS = torch.get_num_threads()
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc's clock ticks per second
_auto_choice: "ThreadChoice | None" = None


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count and why it was picked."""

    threads: int
    cores: int  # the cores this process may use
    busy_elsewhere: float | None  # cores other programs kept busy at the start (None: not measured)
    source: str  # runtime.threads | checkpoint | free cores

    def describe(self) -> str:
        """One line for the log: the count and where it came from."""
        if self.source == "runtime.threads":
            return f"{self.threads} CPU thread(s) (runtime.threads)"
        if self.source == "checkpoint":
            return (f"{self.threads} CPU thread(s), as the checkpoint was computed, so the run continues bit for "
                    f"bit (runtime.threads=N to choose)")
        if self.busy_elsewhere is None or self.threads == self.cores:
            return f"{self.threads} CPU thread(s), one per core"
        return (f"{self.threads} CPU thread(s): other programs keep {self.busy_elsewhere:.1f} of {self.cores} cores "
                f"busy (runtime.threads=N to choose)")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), capped by PyTorch's own thread default."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        allowed = os.cpu_count() or 1
    return max(1, min(allowed, _TORCH_DEFAULT_THREADS))


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and its live children (data workers), Linux ``/proc`` for the latter."""
    total = time.process_time()
    try:
        children = [pid for task in os.listdir("/proc/self/task")
                    for pid in _read(f"/proc/self/task/{task}/children").split()]
        for pid in children:
            fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    except (OSError, ValueError, IndexError):
        pass  # not Linux, or a child just ended: its share counts as another program's
    return total


class OtherCpuUse:
    """Measures, over a ``with`` block, how many cores other programs kept busy (Linux ``/proc/stat``;
    this process's own threads excluded). ``cores`` is None where it cannot be measured."""

    def __enter__(self) -> "OtherCpuUse":
        self.cores: float | None = None
        self._start, self._own, self._t0 = _cpu_jiffies(), _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        end, own, elapsed = _cpu_jiffies(), _own_cpu_seconds(), time.perf_counter() - self._t0
        if self._start is None or end is None or end[1] <= self._start[1] or elapsed <= 0:
            return
        busy_s = (end[0] - self._start[0]) / _TICK - (own - self._own)
        self.cores = max(0.0, busy_s / elapsed)


def busy_cores_elsewhere(window_s: float = 0.15, windows: int = 2) -> float | None:
    """Cores kept busy by other programs: the least of ``windows`` windows of ``window_s`` seconds
    (a program that is just ending, such as the previous command, is not counted); None off Linux."""
    seen = []
    for _ in range(windows):
        with OtherCpuUse() as use:
            time.sleep(window_s)
        if use.cores is None:
            return None
        seen.append(use.cores)
    return min(seen)


def choose_threads(requested: int | None, checkpoint_threads: int | None = None) -> ThreadChoice:
    """``runtime.threads`` when given; else the count a resumed checkpoint was computed with (the order
    of sums in a convolution depends on it, so only that count continues bit for bit), if this machine
    has the cores; else the cores free at the first call in this process.

    The free cores are measured once per process, so every run of a session picks the same count."""
    global _auto_choice
    cores = usable_cores()
    if requested:
        return ThreadChoice(requested, cores, None, "runtime.threads")
    if checkpoint_threads and checkpoint_threads <= cores:
        return ThreadChoice(checkpoint_threads, cores, None, "checkpoint")
    if _auto_choice is None:
        busy = busy_cores_elsewhere()
        free = cores if busy is None else max(1, min(cores, round(cores - busy)))
        _auto_choice = ThreadChoice(free, cores, busy, "free cores")
    return _auto_choice


def apply_threads(requested: int | None, checkpoint_threads: int | None = None) -> ThreadChoice:
    """Choose the intra-op thread count (see ``choose_threads``) and set it in PyTorch."""
    choice = choose_threads(requested, checkpoint_threads)
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


class SlowdownWatch:
    """Notices when steps become far slower than the run's own early pace (another program on the CPU).

    The pace is the median of steps 2-6 after a start (step 1 warms up); each later window of
    ``window`` steps is compared with it. ``add`` answers the window's median once, the first time it
    exceeds ``factor`` times the pace, and None otherwise."""

    def __init__(self, factor: float = 3.0, window: int = 5) -> None:
        self.factor, self.window = factor, window
        self.pace: float | None = None
        self._times: list[float] = []
        self._skipped_first = False
        self.warned = False

    def add(self, step_s: float) -> float | None:
        """Record one step's seconds; the slow window's median the first time one is too slow."""
        if self.warned:
            return None
        if not self._skipped_first:
            self._skipped_first = True
            return None
        self._times.append(step_s)
        if len(self._times) < self.window:
            return None
        median = sorted(self._times)[len(self._times) // 2]
        self._times = []
        if self.pace is None:
            self.pace = median
            return None
        if median <= self.factor * self.pace:
            return None
        self.warned = True
        return median
