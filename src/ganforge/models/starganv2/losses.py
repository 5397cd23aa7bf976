"""StarGAN v2's losses, as ``core/solver.py`` computes them: plain functions of the networks and one
iteration's inputs (:class:`IterationInputs`), each usable and testable alone."""

from __future__ import annotations

from typing import Any, TypedDict

import torch

from ganforge.losses import bce, r1_penalty
from ganforge.runtime.precision import Precision, at_least_fp32

Parts = dict[str, torch.Tensor]


class IterationInputs(TypedDict):
    """One official iteration: sources ``x`` of domains ``y``, references ``ref``/``ref2`` of the target
    domains ``y_trg``, latent codes ``z``/``z2``, and the sources' landmark masks (None without FAN)."""

    x: torch.Tensor
    y: torch.Tensor
    ref: torch.Tensor
    ref2: torch.Tensor
    y_trg: torch.Tensor
    z: torch.Tensor
    z2: torch.Tensor
    masks: Any


def diversity_weight(step: int, lambda_ds: float, ds_iter: int) -> float:
    """The official ``lambda_ds`` during (0-based) step ``step``: linear from ``lambda_ds`` to zero at
    ``ds_iter``, then zero."""
    return lambda_ds * max(0.0, 1.0 - step / ds_iter)


def target_style(T: torch.nn.Module, x: IterationInputs, guide: str, second: bool = False) -> torch.Tensor:
    """The target style: the mapping network of a latent code, or the style encoder of a reference."""
    if guide == "latent":
        return T.mapping_network(x["z2" if second else "z"], x["y_trg"])
    return T.style_encoder(x["ref2" if second else "ref"], x["y_trg"])


def compute_d_loss(T: torch.nn.Module, D: torch.nn.Module, x: IterationInputs, guide: str, lambda_reg: float,
                   prec: Precision) -> tuple[torch.Tensor, Parts]:
    """D's loss: real sources against 1 with R1 (``lambda_reg``), fakes made without gradients against 0."""
    real = x["x"].detach().requires_grad_()
    with prec.penalty():  # R1: fp32 as the official code, unless runtime.penalty_precision=autocast
        out = D(real, x["y"])
        loss_real = bce(out, 1.0)
        reg = r1_penalty(out, real, gamma=lambda_reg)
    with torch.no_grad(), prec.autocast():
        fake = T.generator(x["x"], target_style(T, x, guide), x["masks"])
    with prec.autocast():
        loss_fake = bce(D(fake, x["y_trg"]), 0.0)
    loss = loss_real + loss_fake + reg
    return loss, {"real": loss_real.detach(), "fake": loss_fake.detach(), "reg": reg.detach()}


def compute_g_loss(T: torch.nn.Module, D: torch.nn.Module, x: IterationInputs, guide: str, lambda_sty: float,
                   lambda_ds: float, lambda_cyc: float, prec: Precision) -> tuple[torch.Tensor, Parts]:
    """G's loss: adversarial, style reconstruction, diversity (subtracted; the second fake detached)
    and cycle consistency with the fake's own masks."""
    with prec.autocast():
        s_trg = target_style(T, x, guide)
        fake = T.generator(x["x"], s_trg, x["masks"])
        loss_adv = bce(D(fake, x["y_trg"]), 1.0)
        loss_sty = (at_least_fp32(T.style_encoder(fake, x["y_trg"])) - at_least_fp32(s_trg)).abs().mean()
        fake2 = T.generator(x["x"], target_style(T, x, guide, second=True), x["masks"]).detach()
        loss_ds = (at_least_fp32(fake) - at_least_fp32(fake2)).abs().mean()
        rec = T.generator(fake, T.style_encoder(x["x"], x["y"]), T.masks(fake))
        loss_cyc = (at_least_fp32(rec) - at_least_fp32(x["x"])).abs().mean()
    loss = loss_adv + lambda_sty * loss_sty - lambda_ds * loss_ds + lambda_cyc * loss_cyc
    return loss, {"adv": loss_adv.detach(), "sty": loss_sty.detach(), "ds": loss_ds.detach(),
                  "cyc": loss_cyc.detach(), "lambda_ds": torch.tensor(lambda_ds)}
