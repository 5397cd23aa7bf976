"""The losses of DCGAN (non-saturating BCE) and WGAN-GP (Wasserstein with the gradient penalty of
Algorithm 1): plain functions of the networks and tensors, on the shared primitives."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from ganforge.losses import discriminator_loss, generator_loss, gradient_penalty
from ganforge.runtime.precision import Precision

Parts = dict[str, torch.Tensor]


def compute_d_loss(G: nn.Module, D: nn.Module, real: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor | None,
                   kind: str, gp_lambda: float, prec: Precision,
                   regularize: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                   ) -> tuple[torch.Tensor, Parts]:
    """D's ``kind`` loss on real images and on G(z) (made without a graph), plus ``gp_lambda`` times the
    gradient penalty on the interpolates ``alpha`` (in fp32 unless runtime.penalty_precision=autocast),
    plus ``regularize(d_real, d_fake)`` when given (LeCam)."""
    with torch.no_grad(), prec.autocast():  # the D update needs no graph through G
        fake = G(z)
    with prec.autocast():
        d_real, d_fake = D(real), D(fake)
    loss = discriminator_loss(d_real, d_fake, kind)
    parts = {"real": d_real.float().mean(), "fake": d_fake.float().mean()}
    if gp_lambda > 0:
        with prec.penalty():
            gp = gradient_penalty(D, real.float(), fake.float(), alpha)
        loss = loss + gp_lambda * gp
        parts["gp"] = gp.detach()
    if regularize is not None:
        extra = regularize(d_real, d_fake)
        loss, parts["lecam"] = loss + extra, extra.detach()
    if kind == "wgan":
        parts["wasserstein"] = (parts["real"] - parts["fake"]).detach()
    return loss, parts


def compute_g_loss(G: nn.Module, D: nn.Module, z: torch.Tensor, kind: str, prec: Precision) -> torch.Tensor:
    """G's ``kind`` loss on D's outputs for G(z)."""
    with prec.autocast():
        out = D(G(z))
    return generator_loss(out, kind)
