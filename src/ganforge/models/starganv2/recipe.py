"""StarGAN v2's training recipe, as clovaai/stargan-v2's ``core/solver.py`` trains it.

One step is one official iteration on one batch of sources (x, y), references (x_ref, x_ref2 of the
target domain y_trg) and two latent codes (z, z2), in this order:

1. ``D_latent``: D on real x (non-saturating loss, R1 penalty ``lambda_reg`` on real images) and on
   G(x, F(z, y_trg)), the fake made without gradients.
2. ``D_ref``: the same with the style E(x_ref, y_trg).
3. ``G_latent``: adversarial loss of G(x, s) with s = F(z, y_trg); style reconstruction
   |E(G(x, s), y_trg) - s|; diversity ``-lambda_ds * |G(x, s) - G(x, F(z2, y_trg))|`` (the second fake
   detached); cycle |G(G(x, s), E(x, y)) - x| with the fake's own masks. Steps G, F and E.
4. ``G_ref``: the same with s = E(x_ref, y_trg) and E(x_ref2, y_trg). Steps G only (F and E get no update,
   as the official code steps only the generator's optimizer here).

- Adam(lr 1e-4, betas (0, 0.99), weight decay 1e-4) for G, E and D, lr 1e-6 for F (one optimizer with
  three parameter groups: the same per-parameter updates as the official three optimizers).
- ``lambda_ds`` decays linearly to zero at ``ds_iter``, computed from the step, so a resumed run goes
  on with the right weight (the official code subtracts it from a counter that restarts at resume).
- EMA 0.999 of G, F and E (``train.ema``). The official EMA networks are copied before the Kaiming
  initialization, so the official EMA starts from PyTorch's default initialization and forgets it at
  0.999 per step; here it starts from the initialized networks.
- With ``w_hpf > 0`` the FAN (``recipe.fan_weights``, the official ``wing.ckpt``) gives the landmark
  masks of the real images once per step, and of the fakes for the cycle loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ganforge.config import ConfigError, RunConfig, non_negative, positive
from ganforge.data.domains import DomainTrainingPairs
from ganforge.models.starganv2.networks import Discriminator, Starganv2ModelConfig
from ganforge.models.starganv2.translator import Starganv2Translator, he_init, load_fan_weights
from ganforge.models.starganv2.losses import IterationInputs, compute_d_loss, compute_g_loss, diversity_weight
from ganforge.train.phases import Phase, Recipe, RecipeContext


@dataclass
class Starganv2RecipeConfig:
    """Loss weights, optimizer and the diversity schedule (official defaults; AFHQ uses lambda_ds 2)."""

    lambda_reg: float = non_negative(1.0)  # R1
    lambda_sty: float = non_negative(1.0)
    lambda_ds: float = non_negative(1.0)
    lambda_cyc: float = non_negative(1.0)
    ds_iter: int = positive(100000)  # steps over which lambda_ds decays to zero
    lr: float = positive(1e-4)  # G, E, D
    f_lr: float = positive(1e-6)  # the mapping network
    betas: tuple[float, float] = field(default=(0.0, 0.99))
    weight_decay: float = non_negative(1e-4)
    fan_weights: str | None = None  # wing.ckpt, needed when model.w_hpf > 0
    sample_images: int = positive(6)  # sources (and references) of the periodic grids
    sample_latents: int = positive(2)  # latent codes per domain in the latent-guided grid


def build_networks(m: Starganv2ModelConfig, r: Starganv2RecipeConfig) -> tuple[Starganv2Translator, Discriminator]:
    """The translator (G, F, E and the FAN) and D, he-initialized as the official code; the FAN's weights
    from ``recipe.fan_weights``."""
    T = Starganv2Translator(m)
    for net in (T.generator, T.mapping_network, T.style_encoder):
        he_init(net)
    if T.fan is not None:
        if not r.fan_weights:
            raise ConfigError("model.w_hpf > 0 needs the FAN landmark network: set recipe.fan_weights to the official "
                              "wing.ckpt (or model.w_hpf=0 to train without landmark masks)")
        load_fan_weights(T.fan, r.fan_weights)
    D = Discriminator(m)
    he_init(D)
    return T, D


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    """Networks (he-initialized), optimizers and the four phases of an official iteration."""
    m, r = cfg.model, cfg.recipe
    data = ctx.dataset
    if data.num_classes != m.num_domains:
        raise ConfigError(f"the data has {data.num_classes} domains ({', '.join(getattr(data, 'domains', []))}): set "
                          f"model.num_domains={data.num_classes} (the config has {m.num_domains})")
    T, D = (ctx.place(net) for net in build_networks(m, r))
    adam = {"betas": r.betas, "weight_decay": r.weight_decay}
    opt_g = torch.optim.Adam([{"params": T.generator.parameters(), "lr": r.lr},
                              {"params": T.mapping_network.parameters(), "lr": r.f_lr},
                              {"params": T.style_encoder.parameters(), "lr": r.lr}], **adam)
    opt_d = torch.optim.Adam(D.parameters(), lr=r.lr, **adam)
    prec, n = ctx.precision, ctx.local_batch

    def iteration_inputs(batch: dict) -> IterationInputs:
        dev = ctx.device
        x = ctx.images(batch)
        return IterationInputs(x=x, y=batch["label"].to(dev), ref=ctx.images(batch, "ref"),
                               ref2=ctx.images(batch, "ref2"), y_trg=batch["ref_label"].to(dev),
                               z=ctx.randn(n, m.latent_dim), z2=ctx.randn(n, m.latent_dim),
                               masks=T.masks(x))  # once per iteration, as the official loop

    def d_loss(guide: str):
        return lambda x: compute_d_loss(T, D, x, guide, r.lambda_reg, prec)

    def g_loss(guide: str):
        return lambda x: compute_g_loss(T, D, x, guide, r.lambda_sty, diversity_weight(ctx.step, r.lambda_ds, r.ds_iter),
                                        r.lambda_cyc, prec)

    # One iteration's inputs, drawn by D_latent and handed on to the three updates after it.
    phases = [
        Phase("D_latent", "D", d_loss("latent"), prepare=iteration_inputs),
        Phase("D_ref", "D", d_loss("reference"), takes="D_latent"),
        Phase("G_latent", "G", g_loss("latent"), takes="D_latent",
              submodules=("generator", "mapping_network", "style_encoder")),
        Phase("G_ref", "G", g_loss("reference"), takes="D_latent", submodules=("generator",)),
    ]

    fixed = _fixed_images(data, r.sample_images)
    z_fixed = torch.randn(r.sample_latents, m.latent_dim, generator=torch.Generator().manual_seed(cfg.runtime.seed))

    def sample(net):
        from ganforge.models.starganv2.sampling import reference_grid

        return reference_grid(net, fixed[0], fixed[0], fixed[1], ctx.device)

    def extra_samples(net):
        from ganforge.models.starganv2.sampling import latent_grid

        return {"latent": latent_grid(net, fixed[0], z_fixed, m.num_domains, ctx.device)}

    return Recipe(networks={"G": T, "D": D}, optimizers={"G": opt_g, "D": opt_d}, phases=phases,
                  sample=sample, extra_samples=extra_samples,
                  train_data=DomainTrainingPairs(data, seed=cfg.runtime.seed), twice_differentiated=("D",))


def _fixed_images(data, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` unaugmented images taking the domains in turn (first of each, then second, ...)."""
    picks: list[int] = []
    for k in range(max(len(d) for d in data.by_domain)):
        picks += [int(d[k]) for d in data.by_domain if k < len(d)]
    picks = picks[:count]
    images = torch.stack([data.load(i, None) for i in picks])
    return images, torch.tensor([int(data.labels[i]) for i in picks])


def check(cfg: RunConfig) -> None:
    """Cross-section rules, checked before any work."""
    m, d = cfg.model, cfg.data
    if d.name != "domains" and getattr(d, "view", None) != "domains":
        raise ConfigError(f"StarGAN v2 reads domains: data.name=domains with data.path=<folder of domain sub-folders>, "
                          f"or a dataset's domains view (data.name=shapes or emoji with data.view=domains; got "
                          f"data.name='{d.name}'" + (f", data.view='{d.view}')" if hasattr(d, "view") else ")"))
    if m.image_size != d.image_size:
        raise ConfigError(f"model.image_size={m.image_size} and data.image_size={d.image_size} differ; set both")
    if m.image_size < 16 or m.image_size & (m.image_size - 1):
        raise ConfigError(f"model.image_size={m.image_size}: StarGAN v2 needs a power of two of at least 16")
    if d.image_channels != 3:
        raise ConfigError("StarGAN v2 works on RGB images: data.channels must be 3")
    if cfg.train.lr_schedule != "constant":
        raise ConfigError("StarGAN v2 trains at constant learning rates: leave train.lr_schedule at constant")
