"""``ganforge.load``: a generator ready to sample, without the trainer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ganforge.config import _convert
from ganforge.registry import get_family


class LoadedGenerator(nn.Module):
    """A family's generator plus what it needs to be used alone: its config and ``sample``.

    ``weights`` says which weights ``net`` holds: ``ema`` or ``raw`` from a checkpoint (``raw`` when
    ``ema`` was asked for but the run kept no EMA), or ``exported`` for an exported model."""

    def __init__(self, family: str, model_config: Any, net: nn.Module, weights: str = "exported"):
        super().__init__()
        self.family, self.model_config, self.net, self.weights = family, model_config, net, weights

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
    model_cfg = _convert(model_raw, spec.model_config, "model")
    return model_cfg, spec.build_generator(model_cfg)


def load(path: str | Path, weights: str = "ema", device: str | torch.device = "cpu") -> LoadedGenerator:
    """Load a generator from a run folder, a checkpoint file, or an exported folder/``.safetensors``.

    ``weights``: ``ema`` (falls back to raw weights when the run kept no EMA) or ``raw``.
    """
    from ganforge.train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint

    path = Path(path)
    if path.is_dir() and (path / "model.safetensors").is_file():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        meta_path = path.with_name("config.json")
        if not meta_path.is_file():
            raise FileNotFoundError(f"'{path}' needs its config.json beside it (written by `ganforge export`)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        model_cfg, net = build_generator(meta["family"], meta["model"])
        net.load_state_dict(load_file(str(path)))
        return _ready(LoadedGenerator(meta["family"], model_cfg, net), device)
    if path.is_dir():
        ckpt = latest_checkpoint(path / "checkpoints")
        if ckpt is None:
            raise CheckpointError(f"'{path}' has no checkpoint and no model.safetensors")
        path = ckpt
    return generator_from_checkpoint(load_checkpoint(path), weights, device)


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


def drawing_command(family: str | None, source: str | Path) -> str:
    """The command that draws with a model of ``family`` from ``source``: the hint a verb gives when it
    refuses a model of another kind."""
    if family == "stargan":
        return f"ganforge translate {source} --input IMAGES"
    if family == "starganv2":
        return f"ganforge sample {source} --src IMAGES --ref DOMAIN_FOLDERS"
    if family == "storygan":
        return f"ganforge story {source} --descriptions FILE"
    return f"ganforge sample {source}"
