"""Training recipes on the DCGAN architecture: ``dcgan`` (BCE) and ``wgan_gp`` (Wasserstein + GP).

Defaults follow the papers. DCGAN: Adam(lr 2e-4, betas 0.5/0.999), one D update per G update, batch
norm in both networks. WGAN-GP (Algorithm 1): Adam(lr 1e-4, betas 0/0.9), n_critic 5, lambda 10,
a critic without batch norm (layer norm by default), the penalty on random interpolates of real and
fake images, computed in fp32 even under mixed precision (unless runtime.penalty_precision=autocast).
"""

from __future__ import annotations

import typing

from dataclasses import dataclass, field
from typing import Literal

import torch

from ganforge.config import ConfigError, RunConfig, bounded, non_negative, positive
from ganforge.losses import LecamAnchors, lecam_step
from ganforge.models.dcgan.losses import compute_d_loss, compute_g_loss
from ganforge.models.dcgan.networks import DcganDiscriminator, DcganGenerator, DcganModelConfig
from ganforge.train.phases import Phase, Recipe, RecipeContext


@dataclass
class DcganRecipeConfig:
    """Loss and optimizer settings of the DCGAN recipe."""

    loss: Literal["bce", "hinge", "wgan"] = "bce"
    gp_lambda: float = non_negative(0.0)  # > 0 adds the WGAN-GP gradient penalty
    n_critic: int = positive(1)  # discriminator updates per generator update
    lr_g: float = positive(2e-4)
    lr_d: float = positive(2e-4)
    betas: tuple[float, float] = (0.5, 0.999)
    # LeCam regularization (Tseng et al. 2021; ganforge.losses.lecam) for the bce and hinge losses: its
    # weight (0 = off, the papers), the anchors' decay and the iterations before it starts.
    lecam: float = non_negative(0.0)
    lecam_decay: float = bounded(0.9, ge=0.0, le=1.0)
    lecam_start: int = non_negative(1000)


@dataclass
class WganGpModelConfig(DcganModelConfig):
    d_norm: Literal["batch", "instance", "layer", "none"] = "layer"


@dataclass
class WganGpRecipeConfig(DcganRecipeConfig):
    loss: Literal["bce", "hinge", "wgan"] = "wgan"
    gp_lambda: float = non_negative(10.0)
    n_critic: int = positive(5)
    lr_g: float = positive(1e-4)
    lr_d: float = positive(1e-4)
    betas: tuple[float, float] = field(default=(0.0, 0.9))


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    """Networks, Adam optimizers and the two phases (D x n_critic, then G)."""
    m, r = cfg.model, cfg.recipe
    G = ctx.place(DcganGenerator(m))
    D = ctx.place(DcganDiscriminator(m))
    opt_g = torch.optim.Adam(G.parameters(), lr=r.lr_g, betas=r.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=r.lr_d, betas=r.betas)
    prec, n = ctx.precision, ctx.local_batch
    anchors = LecamAnchors(r.lecam_decay, r.lecam_start) if r.lecam > 0 else None

    def lecam(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return lecam_step(anchors, d_real, d_fake, ctx.step + 1, r.lecam, ctx.dist.world_size)

    def d_step(batch):
        real, z = ctx.images(batch), ctx.randn(n, m.z_dim)
        alpha = ctx.rand(n, 1, 1, 1) if r.gp_lambda > 0 else None
        return compute_d_loss(G, D, real, z, alpha, r.loss, r.gp_lambda, prec, lecam if anchors else None)

    def g_step(_):
        return compute_g_loss(G, D, ctx.randn(n, m.z_dim), r.loss, prec), {}

    return Recipe(networks={"G": G, "D": D}, optimizers={"G": opt_g, "D": opt_d},
                  phases=[Phase("D", "D", d_step, repeats=r.n_critic),
                          Phase("G", "G", g_step, takes="nothing")],
                  twice_differentiated=("D",) if r.gp_lambda > 0 else (), state=anchors)


def check(cfg: RunConfig) -> None:
    """Cross-section rules, checked before any work."""
    m, d = cfg.model, cfg.data
    if m.image_size != d.image_size:
        sizes = typing.get_args(typing.get_type_hints(type(m))["image_size"])
        size = min(sizes, key=lambda s: (abs(s - d.image_size), -s))  # the supported size nearest the data's
        raise ConfigError(f"model.image_size={m.image_size} and data.image_size={d.image_size} differ; set both, "
                          f"e.g. model.image_size={size} data.image_size={size} (this model draws "
                          f"{', '.join(map(str, sizes))} px)")
    if m.channels != d.image_channels:
        raise ConfigError(f"model.channels={m.channels} and data.channels={d.image_channels} differ; set both")
    if cfg.recipe.lecam > 0 and cfg.recipe.loss == "wgan":
        raise ConfigError("recipe.lecam regularizes the bce and hinge losses (the LeCam paper's); with recipe.loss=wgan "
                          "the critic's outputs are not bounded classifier scores. Use recipe.lecam=0")
    if cfg.recipe.gp_lambda > 0 and m.d_norm == "batch":
        raise ConfigError("model.d_norm=batch cannot be used with a gradient penalty (recipe.gp_lambda > 0): "
                          "batch norm mixes the samples the penalty treats one by one. Use layer, instance or none.")

