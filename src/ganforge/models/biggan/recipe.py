"""BigGAN's training function, as BigGAN-PyTorch's ``train_fns.GAN_training_function``.

Per step: ``num_d_steps`` discriminator updates, each summing the gradients of
``num_d_accumulations`` micro-batches of real images with their labels against fakes of fresh z and
uniformly drawn classes (G under no_grad); then one generator update over ``num_g_accumulations``
micro-batches of ``g_batch_size`` fresh samples. Each loss is divided by its accumulation count,
exactly as the official code does, so accumulating k batches of B equals one batch of kB (tested).

- Hinge loss: D ``mean relu(1 - D(x, y)) + mean relu(1 + D(G(z, y'), y'))``, G ``-mean D(G(z, y'), y')``.
- ``split_d``: D sees real and fake in two forwards instead of one concatenated batch; the outputs
  are the same, but each forward runs its own power iteration (as in the official code).
- Orthogonal regularization (``g_ortho``/``d_ortho``, the paper's modified form): the official
  gradient ``2 beta (W W^T * (1 - I)) W`` (that of ``beta/2 ||W W^T * (1 - I)||_F^2``) is added to
  every weight with 2+ dimensions after backward;
  G's shared class embedding is excluded in G, nothing is excluded in D (the official lists).
- Only the network being updated has ``requires_grad`` (the trainer's toggling), as ``toggle_grads``.
- The EMA of G averages every floating-point entry of its state dict, buffers included (BN
  statistics, SN vectors), as the official ``ema`` class; ``train.ema.start`` is ``--ema_start``.
- Adam with separate lr/betas for G and D and ``adam_eps``; the defaults are the official parser's,
  the presets set the launch scripts' values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from ganforge.config import ConfigError, RunConfig, bounded, model_classes, non_negative, positive
from ganforge.losses import LecamAnchors, discriminator_loss_parts, lecam_step
from ganforge.models.biggan.losses import add_ortho_gradient, compute_g_loss, discriminator_scores
from ganforge.models.biggan.networks import BigganDiscriminator, BigganGenerator
from ganforge.models.biggan.sampling import accumulate_standing_stats, class_sheet, interpolation_sheet
from ganforge.train.phases import Phase, Recipe, RecipeContext


@dataclass
class BigganRecipeConfig:
    """Optimizers and the training function's flags (defaults: the official parser's)."""

    g_lr: float = positive(5e-5)
    d_lr: float = positive(2e-4)
    g_betas: tuple[float, float] = field(default=(0.0, 0.999))
    d_betas: tuple[float, float] = field(default=(0.0, 0.999))
    adam_eps: float = positive(1e-8)
    num_d_steps: int = positive(2)
    num_d_accumulations: int = positive(1)
    num_g_accumulations: int = positive(1)
    g_batch_size: int = non_negative(0)  # samples per G micro-batch; as the official code, at least train.batch_size
    split_d: bool = False
    g_ortho: float = non_negative(0.0)  # 1e-4 in the paper; the ImageNet scripts pass 0.0
    d_ortho: float = non_negative(0.0)
    sample_sheets: bool = True  # with each sample grid: a class sheet and the interpolation sheets
    # --accumulate_stats --num_standing_accumulations N: sample grids and evaluations use BN
    # statistics averaged over N batches of samples (0: the stored running statistics)
    standing_stats: int = non_negative(0)
    # LeCam regularization (Tseng et al. 2021; ganforge.losses.lecam): its weight (the official BigGAN
    # scripts: 0.3; 0 = off, the BigGAN paper), the anchors' decay and the iterations before it starts.
    lecam: float = non_negative(0.0)
    lecam_decay: float = bounded(0.9, ge=0.0, le=1.0)
    lecam_start: int = non_negative(1000)


def class_labels(batch: dict[str, torch.Tensor], n: int) -> torch.Tensor:
    """The batch's labels; an unlabelled dataset (checked at build: a 1-class model) is all class 0."""
    return batch["label"] if "label" in batch else torch.zeros(n, dtype=torch.long)


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    """Networks, Adam optimizers and the two phases (D x num_d_steps with accumulation, then G)."""
    m, r = cfg.model, cfg.recipe
    m.num_classes = model_classes(m.num_classes, int(getattr(ctx.dataset, "num_classes", 0) or 0))
    G = ctx.place(BigganGenerator(m))
    D = ctx.place(BigganDiscriminator(m))
    opt_g = torch.optim.Adam(G.parameters(), lr=r.g_lr, betas=r.g_betas, eps=r.adam_eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=r.d_lr, betas=r.d_betas, eps=r.adam_eps)
    prec, n, world = ctx.precision, ctx.local_batch, ctx.dist.world_size
    g_total = max(r.g_batch_size, cfg.train.batch_size)  # the official max(G_batch_size, batch_size)
    if g_total % world:
        raise ConfigError(f"recipe.g_batch_size={g_total} must be divisible by the {world} processes")
    g_batch = g_total // world

    anchors = LecamAnchors(r.lecam_decay, r.lecam_start) if r.lecam > 0 else None

    def d_step(batch):
        real = ctx.images(batch)
        labels = class_labels(batch, len(real)).to(ctx.device)
        z, y = ctx.randn(n, G.dim_z), ctx.randint(m.num_classes, n)
        d_real, d_fake = discriminator_scores(G, D, real, labels, z, y, r.split_d, prec)
        loss_real, loss_fake = discriminator_loss_parts(d_real, d_fake, "hinge")
        parts = {"loss_real": loss_real.detach(), "loss_fake": loss_fake.detach()}
        loss = loss_real + loss_fake
        if anchors is not None:
            penalty = lecam_step(anchors, d_real, d_fake, ctx.step + 1, r.lecam, ctx.dist.world_size)
            loss, parts["lecam"] = loss + penalty, penalty.detach()  # logged every step: 0 before the start
        return loss, parts

    def g_step(_):
        z, y = ctx.randn(g_batch, G.dim_z), ctx.randint(m.num_classes, g_batch)
        return compute_g_loss(G, D, z, y, prec), {}

    def ortho(net: nn.Module, strength: float, exclude: list[nn.Parameter]) -> Callable[[], None] | None:
        return (lambda: add_ortho_gradient(net, strength, exclude)) if strength > 0 else None

    def sheets(net: nn.Module) -> dict[str, tuple[torch.Tensor, int]]:
        # The official save_and_sample's sheets: classes (first 20 here), interpZY, interpZ, interpY.
        out = {"classes": class_sheet(net, list(range(min(m.num_classes, 20))), seed=0)}
        for kind in ("zy", "z", "y") if m.g_shared else ("z",):
            out[f"interp{kind.upper()}"] = interpolation_sheet(net, rows=16, midpoints=8, kind=kind, seed=0)
        return out

    def with_standing_stats(net: nn.Module) -> nn.Module:
        # On a copy: the official code overwrites the EMA's statistics, which its next update then mixes in.
        prepared = copy.deepcopy(net)
        accumulate_standing_stats(prepared, r.standing_stats, batch_size=g_total, seed=cfg.runtime.seed)
        return prepared

    return Recipe(
        networks={"G": G, "D": D}, optimizers={"G": opt_g, "D": opt_d},
        phases=[Phase("D", "D", d_step, repeats=r.num_d_steps, accumulations=r.num_d_accumulations,
                      before_step=ortho(D, r.d_ortho, [])),
                Phase("G", "G", g_step, takes="nothing", accumulations=r.num_g_accumulations,
                      before_step=ortho(G, r.g_ortho, list(G.shared.parameters())))],
        ema_averages_buffers=True, extra_samples=sheets if r.sample_sheets else None, state=anchors,
        prepare_sampler=with_standing_stats if r.standing_stats else None)


def check(cfg: RunConfig) -> None:
    """Cross-section rules, checked before any data or network is touched."""
    m, d, tr = cfg.model, cfg.data, cfg.train
    if m.image_size != d.image_size:
        raise ConfigError(f"model.image_size={m.image_size} and data.image_size={d.image_size} differ; set both "
                          f"(BigGAN has architectures for {', '.join(map(str, (32, 64, 128, 256)))})")
    if d.image_channels != 3:
        raise ConfigError(f"BigGAN generates RGB images; data.channels={d.image_channels} must be 3")
    if m.hier and not m.g_shared:
        raise ConfigError("model.hier=true needs model.g_shared=true: the z chunks are concatenated to the shared "
                          "class embedding (the official code fails the same way)")
    if tr.grad_accum != 1:
        raise ConfigError("BigGAN accumulates per phase: use recipe.num_d_accumulations and "
                          "recipe.num_g_accumulations instead of train.grad_accum")
    if tr.lr_schedule != "constant":
        raise ConfigError("BigGAN trains with constant learning rates (train.lr_schedule=constant)")
    for name, values in (("model.g_attention", m.g_attention), ("model.d_attention", m.d_attention)):
        bad = [v for v in values if v & (v - 1) or not 4 <= v <= m.image_size]
        if bad:
            raise ConfigError(f"{name}={values}: attention resolutions must be powers of two between 4 and "
                              f"{m.image_size} (the official '0' is an empty list here)")
