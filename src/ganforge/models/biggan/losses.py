"""BigGAN's losses, as BigGAN-PyTorch's ``train_fns.GAN_training_function`` and ``utils.ortho``
compute them: hinge losses (``losses.loss_hinge_dis``/``loss_hinge_gen``) of the official ``G_D``
forward, and the modified orthogonal regularization's gradient."""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge.losses import discriminator_loss_parts, generator_loss
from ganforge.runtime.precision import Precision


@torch.no_grad()
def add_ortho_gradient(module: nn.Module, strength: float, exclude: list[nn.Parameter] | None = None) -> None:
    """Add the modified orthogonal regularization's gradient to every weight with 2+ dims.

    For W reshaped to (out, -1): ``grad += strength * 2 (W W^T * (1 - I)) W``, the gradient of
    ``strength * ||W W^T * (1 - I)||_F^2 / 2`` (the official ``utils.ortho``).
    """
    skip = {id(p) for p in exclude or []}
    for p in module.parameters():
        if p.dim() < 2 or id(p) in skip or p.grad is None:
            continue
        w = p.reshape(p.shape[0], -1)
        gram = w @ w.t()
        gram.fill_diagonal_(0.0)
        p.grad.add_((2 * gram @ w).reshape(p.shape), alpha=strength)


def discriminator_scores(G: nn.Module, D: nn.Module, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor,
                         y: torch.Tensor, split_d: bool, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """D's outputs (real, fake) on real images and on fakes G(z, y) made without a graph (the official
    ``G_D``). ``split_d``: two D forwards (fake, then real) instead of one on the concatenated batch."""
    with torch.no_grad(), precision.autocast():
        fake = G(z, y)
    with precision.autocast():
        if split_d:
            d_fake, d_real = D(fake, y), D(real, labels)
        else:
            out = D(torch.cat([fake, real]), torch.cat([y, labels]))
            d_fake, d_real = out[:len(fake)], out[len(fake):]
    return d_real, d_fake


def discriminator_losses(G: nn.Module, D: nn.Module, real: torch.Tensor, labels: torch.Tensor, z: torch.Tensor,
                         y: torch.Tensor, split_d: bool, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """D's hinge loss on real images and on fakes (see :func:`discriminator_scores`)."""
    d_real, d_fake = discriminator_scores(G, D, real, labels, z, y, split_d, precision)
    return discriminator_loss_parts(d_real, d_fake, "hinge")


def compute_g_loss(G: nn.Module, D: nn.Module, z: torch.Tensor, y: torch.Tensor, precision: Precision) -> torch.Tensor:
    """G's hinge loss on D's scores of G(z, y)."""
    with precision.autocast():
        out = D(G(z, y), y)
    return generator_loss(out, "hinge")
