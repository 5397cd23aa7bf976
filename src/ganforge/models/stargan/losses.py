"""StarGAN's losses, as yunjey/stargan's ``solver.py`` computes them in ``train()``: plain functions of
the networks and one critic update's inputs (:class:`CriticInputs`)."""

from __future__ import annotations

from typing import Callable, TypedDict

import torch
import torch.nn as nn

from ganforge.losses import gradient_penalty
from ganforge.runtime.precision import Precision

Parts = dict[str, torch.Tensor]
# The classification loss of D's class logits for one dataset's labels: (D's logits, labels) -> loss.
ClassificationLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CriticInputs(TypedDict):
    """Real images ``x`` with their labels, target labels (the batch's own, permuted), both as G's
    condition vectors, and the interpolation weights of the gradient penalty."""

    x: torch.Tensor
    label_org: torch.Tensor
    label_trg: torch.Tensor
    c_org: torch.Tensor
    c_trg: torch.Tensor
    alpha: torch.Tensor


def compute_d_loss(G: nn.Module, D: nn.Module, x: CriticInputs, classification: ClassificationLoss,
                   lambda_cls: float, lambda_gp: float, prec: Precision) -> tuple[torch.Tensor, Parts]:
    """D's WGAN loss on the PatchGAN map, the classification of the real labels and the gradient
    penalty on interpolates (in fp32 unless runtime.penalty_precision=autocast)."""
    with prec.autocast():
        src_real, cls_real = D(x["x"])
    with torch.no_grad(), prec.autocast():
        fake = G(x["x"], x["c_trg"])
    with prec.autocast():
        src_fake, _ = D(fake)
    loss_real, loss_fake = -src_real.float().mean(), src_fake.float().mean()
    loss_cls = classification(cls_real, x["label_org"])
    with prec.penalty():
        gp = gradient_penalty(lambda h: D(h)[0], x["x"].float(), fake.float(), x["alpha"])
    loss = loss_real + loss_fake + lambda_cls * loss_cls + lambda_gp * gp
    return loss, {"real": loss_real.detach(), "fake": loss_fake.detach(), "cls": loss_cls.detach(), "gp": gp.detach()}


def compute_g_loss(G: nn.Module, D: nn.Module, x: CriticInputs, classification: ClassificationLoss,
                   lambda_cls: float, lambda_rec: float, prec: Precision) -> tuple[torch.Tensor, Parts]:
    """G's adversarial loss, the classification of the target labels, and the L1 cycle reconstruction."""
    with prec.autocast():
        fake = G(x["x"], x["c_trg"])
        src, cls = D(fake)
        reconstructed = G(fake, x["c_org"])
    loss_fake = -src.float().mean()
    loss_cls = classification(cls, x["label_trg"])
    loss_rec = (x["x"].float() - reconstructed.float()).abs().mean()
    loss = loss_fake + lambda_rec * loss_rec + lambda_cls * loss_cls
    return loss, {"fake": loss_fake.detach(), "rec": loss_rec.detach(), "cls": loss_cls.detach()}
