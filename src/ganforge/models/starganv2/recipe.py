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
import torch.nn.functional as F

from ganforge.config import ConfigError, RunConfig, non_negative, positive
from ganforge.data.domains import DomainTrainingPairs
from ganforge.models.starganv2.networks import Discriminator, Starganv2ModelConfig
from ganforge.models.starganv2.translator import Starganv2Translator, he_init, load_fan_weights
from ganforge.runtime.precision import at_least_fp32
from ganforge.train.phases import Phase, Recipe, RecipeContext, StepBatches


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


def diversity_weight(step: int, lambda_ds: float, ds_iter: int) -> float:
    """The official ``lambda_ds`` during (0-based) step ``step``: linear from ``lambda_ds`` to zero at
    ``ds_iter``, then zero."""
    return lambda_ds * max(0.0, 1.0 - step / ds_iter)


def adversarial_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Non-saturating BCE against 1 (real) or 0 (fake), in fp32 (or float64)."""
    logits = at_least_fp32(logits)
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def r1_penalty(d_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Zero-centred gradient penalty on real images: 0.5 * mean over the batch of |dD/dx|^2."""
    (grad,) = torch.autograd.grad(d_out.sum(), x, create_graph=True)
    return 0.5 * at_least_fp32(grad).pow(2).flatten(1).sum(1).mean(0)


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    """Networks (he-initialized), optimizers and the four phases of an official iteration."""
    m, r, tr = cfg.model, cfg.recipe, cfg.train
    data = ctx.dataset
    if data.num_classes != m.num_domains:
        raise ConfigError(f"the data has {data.num_classes} domains ({', '.join(getattr(data, 'domains', []))}): set "
                          f"model.num_domains={data.num_classes} (the config has {m.num_domains})")
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
    T, D = ctx.place(T), ctx.place(D)
    adam = {"betas": r.betas, "weight_decay": r.weight_decay}
    opt_g = torch.optim.Adam([{"params": T.generator.parameters(), "lr": r.lr},
                              {"params": T.mapping_network.parameters(), "lr": r.f_lr},
                              {"params": T.style_encoder.parameters(), "lr": r.lr}], **adam)
    opt_d = torch.optim.Adam(D.parameters(), lr=r.lr, **adam)
    prec, n = ctx.precision, ctx.local_batch
    batches = StepBatches(tr.grad_accum)

    def style(x: dict, guide: str, second: bool = False) -> torch.Tensor:
        if guide == "latent":
            return T.mapping_network(x["z2" if second else "z"], x["y_trg"])
        return T.style_encoder(x["ref2" if second else "ref"], x["y_trg"])

    def d_loss(x: dict, guide: str):
        real = x["x"].detach().requires_grad_()
        with prec.penalty():  # R1: fp32 as the official code, unless runtime.penalty_precision=autocast
            out = D(real, x["y"])
            loss_real = adversarial_loss(out, 1.0)
            reg = r1_penalty(out, real)
        with torch.no_grad(), prec.autocast():
            fake = T.generator(x["x"], style(x, guide), x["masks"])
        with prec.autocast():
            loss_fake = adversarial_loss(D(fake, x["y_trg"]), 0.0)
        loss = loss_real + loss_fake + r.lambda_reg * reg
        return loss, {"real": loss_real.detach(), "fake": loss_fake.detach(), "reg": reg.detach()}

    def g_loss(x: dict, guide: str):
        lambda_ds = diversity_weight(ctx.step, r.lambda_ds, r.ds_iter)
        with prec.autocast():
            s_trg = style(x, guide)
            fake = T.generator(x["x"], s_trg, x["masks"])
            loss_adv = adversarial_loss(D(fake, x["y_trg"]), 1.0)
            loss_sty = (at_least_fp32(T.style_encoder(fake, x["y_trg"])) - at_least_fp32(s_trg)).abs().mean()
            fake2 = T.generator(x["x"], style(x, guide, second=True), x["masks"]).detach()
            loss_ds = (at_least_fp32(fake) - at_least_fp32(fake2)).abs().mean()
            rec = T.generator(fake, T.style_encoder(x["x"], x["y"]), T.masks(fake))
            loss_cyc = (at_least_fp32(rec) - at_least_fp32(x["x"])).abs().mean()
        loss = loss_adv + r.lambda_sty * loss_sty - lambda_ds * loss_ds + r.lambda_cyc * loss_cyc
        return loss, {"adv": loss_adv.detach(), "sty": loss_sty.detach(), "ds": loss_ds.detach(),
                      "cyc": loss_cyc.detach(), "lambda_ds": torch.tensor(lambda_ds)}

    def d_latent(batch):
        dev = ctx.device
        x = {"x": ctx.images(batch), "y": batch["label"].to(dev), "ref": ctx.images(batch, "ref"),
             "ref2": ctx.images(batch, "ref2"), "y_trg": batch["ref_label"].to(dev),
             "z": ctx.randn(n, m.latent_dim), "z2": ctx.randn(n, m.latent_dim)}
        x["masks"] = T.masks(x["x"])  # once per iteration, as the official loop
        batches.add(x)
        return d_loss(x, "latent")

    phases = [
        Phase("D_latent", "D", d_latent),
        Phase("D_ref", "D", lambda _: d_loss(batches.next("D_ref"), "reference"), needs_batch=False),
        Phase("G_latent", "G", lambda _: g_loss(batches.next("G_latent"), "latent"), needs_batch=False,
              submodules=("generator", "mapping_network", "style_encoder")),
        Phase("G_ref", "G", lambda _: g_loss(batches.next("G_ref"), "reference"), needs_batch=False,
              submodules=("generator",)),
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
    if d.name != "domains" and not (d.name == "shapes" and d.view == "domains"):
        raise ConfigError(f"StarGAN v2 reads domain folders: data.name=domains with data.path=<folder of domain "
                          f"sub-folders>, or the built-in data.name=shapes with data.view=domains (got "
                          f"data.name='{d.name}'" + (f", data.view='{d.view}')" if d.name == "shapes" else ")"))
    if m.image_size != d.image_size:
        raise ConfigError(f"model.image_size={m.image_size} and data.image_size={d.image_size} differ; set both")
    if m.image_size < 16 or m.image_size & (m.image_size - 1):
        raise ConfigError(f"model.image_size={m.image_size}: StarGAN v2 needs a power of two of at least 16")
    if d.channels != 3:
        raise ConfigError("StarGAN v2 works on RGB images: data.channels must be 3")
    if cfg.train.lr_schedule != "constant":
        raise ConfigError("StarGAN v2 trains at constant learning rates: leave train.lr_schedule at constant")
