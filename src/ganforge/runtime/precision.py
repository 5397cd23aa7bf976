"""Mixed precision: autocast for bf16/fp16, one GradScaler per optimizer for fp16."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast and loss scaling for one device and one precision setting.

    fp32 runs plain. bf16 autocasts (CPU included) and needs no scaling. fp16 autocasts and scales
    the loss, with one scaler per optimizer because each phase steps its own optimizer.
    """

    def __init__(self, name: str, device: torch.device, penalty: str = "fp32"):
        if name not in DTYPES:
            raise ValueError(f"runtime.precision: '{name}' is not one of {', '.join(DTYPES)}")
        if penalty not in ("fp32", "autocast"):
            raise ValueError(f"runtime.penalty_precision: '{penalty}' is not one of fp32, autocast")
        self.name = name
        self.penalty_name = penalty
        self.device = device
        self.dtype = DTYPES[name]

    @property
    def enabled(self) -> bool:
        return self.name != "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context under which forward passes run in the configured precision."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    @contextlib.contextmanager
    def full_precision(self) -> Iterator[None]:
        """Turn autocast off for numerically delicate parts (gradient penalties, R1)."""
        if not self.enabled:
            yield
            return
        with torch.autocast(device_type=self.device.type, enabled=False):
            yield

    def penalty(self) -> contextlib.AbstractContextManager:
        """Context for gradient penalties and R1: full precision (the official codes), or the run's
        autocast when ``runtime.penalty_precision=autocast``. The penalty's forward, backward and double
        backward through the critic are about half the work of a WGAN-GP or StarGAN critic step."""
        if self.penalty_name == "autocast":
            return self.autocast()
        return self.full_precision()

    def make_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is active only for fp16."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is half precision (autocast outputs), else unchanged (float64 stays)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def supported_precisions(device: torch.device) -> dict[str, str]:
    """Try a tiny forward and backward in each precision on ``device``; 'ok' or the error."""
    results = {}
    for name in DTYPES:
        try:
            prec = Precision(name, device)
            layer = torch.nn.Conv2d(3, 4, 3).to(device)
            x = torch.randn(2, 3, 8, 8, device=device)
            with prec.autocast():
                y = layer(x).float().square().mean()
            scaler = prec.make_scaler()
            scaler.scale(y).backward()
            if not torch.isfinite(y):
                raise RuntimeError("non-finite result")
            results[name] = "ok"
        except Exception as err:  # report, never crash `ganforge info`
            results[name] = f"unavailable ({type(err).__name__}: {str(err).splitlines()[0][:80]})"
    return results
