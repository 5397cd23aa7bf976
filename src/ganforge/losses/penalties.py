"""Gradient penalties. Both build the gradient with ``create_graph=True``: without it the penalty
is a constant to the optimizer and silently does nothing. Both are computed in at least fp32; the
caller decides the precision of the forward (``Precision.penalty()``)."""

from __future__ import annotations

from typing import Callable

import torch

from ganforge.runtime.precision import at_least_fp32


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, alpha: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)||_2 - target)^2] on random interpolates.

    ``alpha`` has shape (N, 1, 1, 1) with values in [0, 1]; it is passed in so that the caller owns
    the random stream (deterministic across devices and ranks).
    """
    x_hat = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return (norm - target).square().mean()


def r1_penalty(real_out: torch.Tensor, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``gamma / 2 * E[||grad D(x)||^2]`` on real images ``real`` (which
    must require grad). StarGAN v2's ``lambda_reg * r1_reg`` is ``gamma = lambda_reg``."""
    (grad,) = torch.autograd.grad(real_out.sum(), real, create_graph=True)
    return 0.5 * gamma * at_least_fp32(grad).pow(2).flatten(1).sum(1).mean(0)
