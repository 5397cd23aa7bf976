"""Adversarial losses on raw critic/discriminator outputs (logits, never probabilities).

Every loss is computed in at least fp32 (autocast outputs are upcast; float64 stays float64)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.runtime.precision import at_least_fp32

KINDS = ("bce", "hinge", "wgan")


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` against the constant ``target`` (1: real, 0: fake): the
    non-saturating GAN loss's terms (Goodfellow 2014; DCGAN, StarGAN v2, StoryGAN)."""
    logits = at_least_fp32(logits)
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss for outputs on real and on generated images.

    bce: non-saturating GAN (Goodfellow 2014, DCGAN) on logits; hinge: SAGAN/BigGAN;
    wgan: the critic's negative Wasserstein estimate E[D(fake)] - E[D(real)].
    """
    on_real, on_fake = discriminator_loss_parts(real, fake, kind)
    return on_real + on_fake


def discriminator_loss_parts(real: torch.Tensor, fake: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of :func:`discriminator_loss`: the loss on real outputs and on fake outputs."""
    real, fake = at_least_fp32(real), at_least_fp32(fake)
    if kind == "bce":
        return bce(real, 1.0), bce(fake, 0.0)
    if kind == "hinge":
        return F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()
    if kind == "wgan":
        return -real.mean(), fake.mean()
    raise ValueError(f"adversarial loss '{kind}' is not one of {', '.join(KINDS)}")


def generator_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """The generator's loss for the discriminator's outputs on generated images."""
    fake = at_least_fp32(fake)
    if kind == "bce":
        return bce(fake, 1.0)
    if kind in ("hinge", "wgan"):
        return -fake.mean()
    raise ValueError(f"adversarial loss '{kind}' is not one of {', '.join(KINDS)}")
