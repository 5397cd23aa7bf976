"""The module a StarGAN v2 run samples from: generator, mapping network, style encoder (and the FAN).

The official code keeps an EMA copy of G, F and E (``nets_ema``); holding the three in one module lets
the trainer's EMA, checkpoints, ``ganforge.load`` and export treat them as "the generator". The
frozen FAN rides along when ``w_hpf > 0`` so that a loaded model makes its own landmark masks.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ganforge.models.starganv2.fan import FAN
from ganforge.models.starganv2.networks import Generator, MappingNetwork, Starganv2ModelConfig, StyleEncoder

Masks = tuple[torch.Tensor, torch.Tensor]


class Starganv2Translator(nn.Module):
    """``forward(x, y, z)``: latent-guided translation of images x (N, 3, H, W) to domains y (N,) with
    latent codes z (N, latent_dim); ``reference(x, ref, y)``: reference-guided."""

    def __init__(self, cfg: Starganv2ModelConfig):
        super().__init__()
        self.model_config = cfg
        self.generator = Generator(cfg)
        self.mapping_network = MappingNetwork(cfg)
        self.style_encoder = StyleEncoder(cfg)
        self.fan = FAN() if cfg.w_hpf > 0 else None

    def make_inputs(self, n: int, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Example inputs for export and shape checks: images in [-1, 1], target domains, latent codes."""
        cfg = self.model_config
        images = torch.rand(n, 3, cfg.image_size, cfg.image_size, generator=generator) * 2 - 1
        domains = torch.randint(0, cfg.num_domains, (n,), generator=generator)
        return images, domains, torch.randn(n, cfg.latent_dim, generator=generator)

    def masks(self, x: torch.Tensor) -> Masks | None:
        """The landmark masks of images x (None without the high-pass path)."""
        return self.fan.masks(x) if self.fan is not None else None

    def translate(self, x: torch.Tensor, s: torch.Tensor, masks: Masks | None = None) -> torch.Tensor:
        """G(x, s) with the masks of x (computed here unless given)."""
        return self.generator(x, s, masks if masks is not None else self.masks(x))

    def forward(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.translate(x, self.mapping_network(z, y))

    def reference(self, x: torch.Tensor, ref: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.translate(x, self.style_encoder(ref, y))


def he_init(module: nn.Module) -> None:
    """The official initialization (``utils.he_init``): Kaiming normal (fan-in, ReLU) for convolutions
    and linear layers, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def load_fan_weights(fan: FAN, path: str | Path) -> None:
    """Load the official ``wing.ckpt`` (a dict whose ``state_dict`` entry holds the weights, keys with or
    without ``module.``). Every FAN key must be present: the official loader silently keeps random
    weights for missing keys, which would give meaningless masks."""
    from ganforge.run.checkpoint import read_official_state_dict

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model.fan_weights: '{path}' does not exist (the FAN landmark weights, wing.ckpt "
                                f"of clovaai/stargan-v2's expr/checkpoints)")
    state = read_official_state_dict(path, "FAN (wing.ckpt)", "state_dict")["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = fan.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"'{path}' is not a FAN checkpoint: {len(missing)} of its {len(own)} keys are missing, "
                         f"e.g. '{missing[0]}'")
    bad = [k for k in own if state[k].shape != own[k].shape]
    if bad:
        raise ValueError(f"'{path}': '{bad[0]}' has shape {tuple(state[bad[0]].shape)}, the FAN needs "
                         f"{tuple(own[bad[0]].shape)}")
    fan.load_state_dict({k: state[k] for k in own})
