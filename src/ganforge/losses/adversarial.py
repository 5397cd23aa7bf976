"""Adversarial losses on raw critic/discriminator outputs (logits, never probabilities)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("bce", "hinge", "wgan")


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss for outputs on real and on generated images.

    bce: non-saturating GAN (Goodfellow 2014, DCGAN) on logits; hinge: SAGAN/BigGAN;
    wgan: the critic's negative Wasserstein estimate E[D(fake)] - E[D(real)].
    """
    on_real, on_fake = discriminator_loss_parts(real, fake, kind)
    return on_real + on_fake


def discriminator_loss_parts(real: torch.Tensor, fake: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of :func:`discriminator_loss`: the loss on real outputs and on fake outputs."""
    real, fake = real.float(), fake.float()
    if kind == "bce":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "hinge":
        return F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()
    if kind == "wgan":
        return -real.mean(), fake.mean()
    raise ValueError(f"adversarial loss '{kind}' is not one of {', '.join(KINDS)}")


def generator_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """The generator's loss for the discriminator's outputs on generated images."""
    fake = fake.float()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind in ("hinge", "wgan"):
        return -fake.mean()
    raise ValueError(f"adversarial loss '{kind}' is not one of {', '.join(KINDS)}")
