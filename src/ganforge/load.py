"""``ganforge.load``: a generator ready to sample, without the trainer."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ganforge.config import convert
from ganforge.registry import get_family
from ganforge.run.store import OpenedRun, open_run


class LoadedGenerator(nn.Module):
    """A family's generator plus what it needs to be used alone: its config and ``sample``.

    ``weights`` says which weights ``net`` holds: ``ema`` or ``raw`` from a checkpoint (``raw`` when
    ``ema`` was asked for but the run kept no EMA), or ``exported`` for an exported model."""

    def __init__(self, family: str, model_config: Any, net: nn.Module, weights: str = "exported",
                 opened: OpenedRun | None = None):
        super().__init__()
        self.family, self.model_config, self.net, self.weights = family, model_config, net, weights
        self.opened = opened  # the run, checkpoint or export it came from (a family's helpers read it)

    def __getattr__(self, name: str) -> Any:
        """Parameters and modules as any nn.Module; then the helpers the family registers
        (``translate`` for image-to-image models, ``story`` for story models), bound to this model."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            family = self.__dict__.get("family")
            if family is None or name.startswith("_"):
                raise
        helpers = get_family(family).helpers
        if name in helpers:
            return functools.partial(helpers[name], self)
        offered = ", ".join(["sample", *helpers])
        raise AttributeError(f"a {family} model has no '{name}'; it offers {offered}")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(get_family(self.family).helpers))

    def make_inputs(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.net.make_inputs(n, gen)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(*inputs)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1], (n, C, H, W), on the generator's device."""
        device = next(self.net.parameters()).device
        return self.net(*(t.to(device) for t in self.make_inputs(n, seed)))


def build_generator(family: str, model_raw: dict[str, Any]) -> tuple[Any, nn.Module]:
    """Typed model config and a fresh generator for ``family``."""
    spec = get_family(family)
    model_cfg = convert(model_raw, spec.model_config, "model")
    return model_cfg, spec.build_generator(model_cfg)


def load(path: str | Path, weights: str = "ema", device: str | torch.device = "cpu") -> LoadedGenerator:
    """Load a generator from a run folder, a checkpoint file, or an exported folder/``.safetensors``.

    ``weights``: ``ema`` (falls back to raw weights when the run kept no EMA) or ``raw``.
    """
    return generator_from_opened(open_run(path), weights, device)


def generator_from_opened(opened: OpenedRun, weights: str = "ema",
                          device: str | torch.device = "cpu") -> LoadedGenerator:
    """The generator of a model source already opened by the run store."""
    if opened.record is not None:
        gen = generator_from_checkpoint(opened.record, weights, device)
        gen.opened = opened
        return gen
    from safetensors.torch import load_file

    meta = opened.meta
    model_cfg, net = build_generator(meta["family"], meta["model"])
    net.load_state_dict(load_file(str(opened.path)))
    return _ready(LoadedGenerator(meta["family"], model_cfg, net, opened=opened), device)


def generator_from_checkpoint(state: dict[str, Any], weights: str = "ema",
                              device: str | torch.device = "cpu") -> LoadedGenerator:
    """The generator of an already loaded checkpoint ``state`` (see :func:`load` for ``weights``)."""
    model_cfg, net = build_generator(state["family"], state["config"]["model"])
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights='{weights}' is not one of ema, raw")
    used = "ema" if weights == "ema" and state.get("ema") is not None else "raw"
    net.load_state_dict(state["ema"] if used == "ema" else state["networks"][state["generator"]])
    return _ready(LoadedGenerator(state["family"], model_cfg, net, used), device)


def _ready(gen: LoadedGenerator, device: str | torch.device) -> LoadedGenerator:
    gen.eval()
    for p in gen.parameters():
        p.requires_grad_(False)
    return gen.to(device)
