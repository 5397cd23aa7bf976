"""Host memory: keep freed blocks in the process instead of handing them back to the OS (glibc).

PyTorch's CPU tensors come from ``malloc``. glibc serves every block above its mmap threshold (at
most 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so each large temporary of a training
step (activations, casts, gradients of a 128 px batch) is new memory that the kernel must fault in
and zero page by page. On 2 Zen 5 cores, converting a 16 x 16384 x 64 bf16 tensor to fp32 took
18 ms that way and 2.5 ms from reused memory; StarGAN's iteration went from 1.52-1.62 to 1.46 s.
:func:`retain_freed_memory` turns that off for the process: every block comes from the heap, and
freed memory stays there for the next step. Peak memory is that of the largest step, as before; the
process just does not shrink between steps. Other allocators (jemalloc or tcmalloc preloaded, musl)
are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_TRIM_THRESHOLD = 2 ** 31 - 1  # the largest value mallopt's int takes: 2 GiB of free heap top kept

_applied = False


def _glibc_mallopt():
    """glibc's ``mallopt``, or None where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it; musl's mallopt is a no-op
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def retain_freed_memory() -> bool:
    """Serve all of this process's ``malloc`` calls from the heap and keep freed memory for reuse
    (``runtime.retain_freed_memory``, on by default). Returns whether glibc took the settings; False
    (and nothing changed) on other platforms or C libraries. Idempotent."""
    global _applied
    if _applied:
        return True
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    if mallopt(M_MMAP_MAX, 0) != 1 or mallopt(M_TRIM_THRESHOLD, _TRIM_THRESHOLD) != 1:
        log.debug("glibc refused the allocator settings; large blocks keep coming from mmap")
        return False
    _applied = True
    return True


__all__ = ["retain_freed_memory"]
