"""R3GAN's loss (brownvc/R3GAN ``R3GAN/Trainer.py``, ``training/loss.py``): RpGAN with R1 and R2.

The relativistic pairing loss compares each fake with its paired real: D minimises
``softplus(-(D(x) - D(G(z))))`` and G minimises ``softplus(-(D(G(z)) - D(x)))``. D also pays the
zero-centred gradient penalties on both sides, R1 on reals and R2 on fakes, each weighted
``gamma / 2``: ``|grad_x D(x)|^2`` summed over the image, taken with respect to the images before
augmentation (the augmentation is differentiated through), in the dtype the images come in (the
generator's output stage's: bfloat16 for the official presets' fakes). Both losses are means over the
batch of per-sample values, as the official ``accumulate_gradients``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

Augment = Callable[[torch.Tensor], torch.Tensor]


def no_augment(x: torch.Tensor) -> torch.Tensor:
    """The identity: what D sees when augmentation is off."""
    return x


def zero_centered_penalty(samples: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Per-sample ``|d scores / d samples|^2`` summed over C, H, W (R1 on reals, R2 on fakes); keeps the graph."""
    grad, = torch.autograd.grad(outputs=scores.sum(), inputs=samples, create_graph=True)
    return grad.square().sum([1, 2, 3])


def relativistic_loss(preferred: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Per-sample ``softplus(-(preferred - other))``: small when ``preferred`` out-scores its pair."""
    return F.softplus(-(preferred - other))


def discriminator_loss(G: nn.Module, D: nn.Module, z: torch.Tensor, real: torch.Tensor, y: torch.Tensor | None,
                       gamma: float, augment: Augment = no_augment) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's RpGAN loss plus ``gamma / 2 (R1 + R2)``, averaged over the batch; fakes from ``G.synthesize``
    (no graph to G). Returns the loss and its parts (means) for the log."""
    real = real.detach().requires_grad_(True)
    with torch.no_grad():
        fake = G.synthesize(z, y)
    fake = fake.detach().requires_grad_(True)
    d_real = D(augment(real), y)
    d_fake = D(augment(fake), y)
    r1 = zero_centered_penalty(real, d_real)
    r2 = zero_centered_penalty(fake, d_fake)
    adversarial = relativistic_loss(d_real, d_fake)
    loss = (adversarial + (gamma / 2) * (r1 + r2)).mean()
    parts = {"adversarial": adversarial.mean().detach(), "r1": r1.mean().detach(), "r2": r2.mean().detach(),
             "real_minus_fake": (d_real - d_fake).mean().detach()}
    return loss, parts


def generator_loss(G: nn.Module, D: nn.Module, z: torch.Tensor, real: torch.Tensor, y: torch.Tensor | None,
                   augment: Augment = no_augment) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's RpGAN loss against a batch of reals (D's parameters take no gradient: the trainer freezes them)."""
    fake = G.synthesize(z, y)
    d_fake = D(augment(fake), y)
    d_real = D(augment(real.detach()), y)
    adversarial = relativistic_loss(d_fake, d_real)
    return adversarial.mean(), {"fake_minus_real": (d_fake - d_real).mean().detach()}
