"""StoryGAN's losses, as the official ``miscc/utils.py`` computes them (``compute_discriminator_loss``,
``compute_generator_loss``, ``KL_loss``): plain functions of the networks and tensors.

The D's pre-sigmoid scores go through BCE-with-logits: the official ``BCELoss`` on sigmoid outputs is
the same function (it clamps log at -100 where the logits form has no limit), and it is the one that
autocast allows in bf16/fp16.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.losses import bce

Parts = dict[str, torch.Tensor]


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), averaged over every element, as the official ``KL_loss``."""
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


def discriminator_loss(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor,
                       labels: torch.Tensor | None, category_weight: float, autocast: Callable[[], Any]
                       ) -> tuple[torch.Tensor, Parts]:
    """Official ``compute_discriminator_loss`` (no unconditional logits, as both StoryGAN D's):
    ``real + (fake + wrong) / 2``, wrong pairs being the real images ``[:-1]`` with conditions ``[1:]``,
    plus the category loss of real frames when ``labels`` are given."""
    cond = condition.detach()
    with autocast():
        real_features = D(real)
        fake_features = D(fake.detach())
        real_logits = D.get_cond_logits.logits(real_features, cond)
        wrong_logits = D.get_cond_logits.logits(real_features[:-1], cond[1:])
        fake_logits = D.get_cond_logits.logits(fake_features, cond)
    err_real, err_wrong, err_fake = bce(real_logits.float(), 1.0), bce(wrong_logits.float(), 0.0), \
        bce(fake_logits.float(), 0.0)
    loss = err_real + (err_fake + err_wrong) * 0.5
    parts = {"real": err_real.detach(), "wrong": err_wrong.detach(), "fake": err_fake.detach()}
    if labels is not None:
        with autocast():
            categories = D.categories(real_features)
        err_cat = F.multilabel_soft_margin_loss(categories.float(), labels)
        loss = loss + category_weight * err_cat
        parts["category"] = err_cat.detach()
    return loss, parts


def generator_loss(D: nn.Module, fake: torch.Tensor, condition: torch.Tensor, labels: torch.Tensor | None,
                   category_weight: float, autocast: Callable[[], Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Official ``compute_generator_loss``: (adversarial + weighted category loss, category loss)."""
    with autocast():
        features = D(fake)
        logits = D.get_cond_logits.logits(features, condition.detach())
    loss = bce(logits.float(), 1.0)
    if labels is None:
        return loss, None
    with autocast():
        categories = D.categories(features)
    err_cat = F.multilabel_soft_margin_loss(categories.float(), labels)
    return loss + category_weight * err_cat, err_cat


def story_generator_loss(D_im: nn.Module, D_st: nn.Module, image: Any, story: Any, image_labels: torch.Tensor | None,
                         category_weight: float, story_weight: float, kl_weight: float,
                         autocast: Callable[[], Any]) -> tuple[torch.Tensor, Parts]:
    """G's whole loss on a fake image batch and fake stories (``GeneratorOutput``s): both D's
    adversarial terms, the image D's category term and the KL terms, ``image + story_weight * story``."""
    im_err, im_cat = generator_loss(D_im, image.images, image.condition, image_labels, category_weight, autocast)
    st_err, _ = generator_loss(D_st, story.images, story.condition, None, 0.0, autocast)
    kl = kl_loss(image.kl_mu.float(), image.kl_logvar.float()) + story_weight * kl_loss(story.kl_mu.float(),
                                                                                          story.kl_logvar.float())
    loss = im_err + story_weight * st_err + kl_weight * kl
    parts = {"image": im_err.detach(), "story": st_err.detach(), "kl": kl.detach()}
    if im_cat is not None:
        parts["category"] = im_cat.detach()
    return loss, parts
