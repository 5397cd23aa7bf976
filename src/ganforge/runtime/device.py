"""Pick a torch device from a config string.

``auto`` prefers the accelerator PyTorch reports (CUDA/ROCm, MPS, XPU, Ascend NPU via torch_npu, ...)
and falls back to the CPU. Tested here: CPU. CUDA is exercised on GPU machines; MPS, XPU and NPU go
through the same generic ``torch.accelerator`` path and are documented as untested.
"""

from __future__ import annotations

import torch


def accelerator_type() -> str | None:
    """The type of the accelerator PyTorch exposes here ('cuda', 'mps', 'xpu', 'npu', ...), or None."""
    acc = getattr(torch, "accelerator", None)
    if acc is not None and acc.is_available():
        dev = acc.current_accelerator()
        return dev.type if dev is not None else None
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return None


def resolve_device(spec: str = "auto", local_rank: int | None = None) -> torch.device:
    """Turn ``auto | cpu | cuda | cuda:N | mps | xpu | npu ...`` into a usable torch.device.

    Under torchrun each process takes the accelerator of its LOCAL_RANK when no index is given.
    Raises ValueError naming the request and what is available.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        kind = accelerator_type()
        if kind is None:
            return torch.device("cpu")
        spec = kind
    try:
        device = torch.device(spec)
    except RuntimeError as err:
        raise ValueError(f"runtime.device: '{spec}' is not a device PyTorch knows ({err}). "
                         f"Use auto, cpu, cuda, cuda:N, mps, xpu or npu.") from None
    if device.type == "cpu":
        return device
    available = accelerator_type()
    if available != device.type:
        raise ValueError(f"runtime.device: '{spec}' was asked for but this machine's PyTorch "
                         f"{torch.__version__} has {available or 'no accelerator'}; use runtime.device=auto or cpu.")
    if device.index is None and local_rank is not None:
        device = torch.device(device.type, local_rank)
    if device.index is not None:
        count = _device_count(device.type)
        if device.index >= count:
            raise ValueError(f"runtime.device: '{device}' does not exist; {count} {device.type} device(s) here.")
    return device


def _device_count(kind: str) -> int:
    acc = getattr(torch, "accelerator", None)
    if acc is not None and acc.is_available():
        return acc.device_count()
    mod = getattr(torch, kind, None)
    return mod.device_count() if mod is not None and hasattr(mod, "device_count") else 1


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on the CPU); used for honest timings."""
    if device.type == "cpu":
        return
    mod = getattr(torch, device.type, None)
    if mod is not None and hasattr(mod, "synchronize"):
        mod.synchronize(device)


def peak_memory_bytes(device: torch.device) -> int | None:
    """Peak memory of this process on ``device``: allocator peak on accelerators, max RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    if device.type == "cpu":
        try:
            import resource
            import sys

            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB
        except ImportError:  # Windows
            return None
    return None
