"""R3GAN's training loop, as brownvc/R3GAN's ``training/training_loop.py`` runs it.

Per step (one official iteration): a D update on one batch of reals with fresh z, then a G update on
another batch of reals with fresh z (the relativistic G loss needs reals too). Fakes take the
labels of the reals they are paired with (class-conditional models). Everything that changes over
training is a cosine decay over the images seen, ``step * batch_size``, from a base value to a final
value reached at ``decay_nimg`` (and held after): the learning rate of both networks, D's
penalty weight gamma, Adam's beta2 (beta1 is 0, eps 1e-8), the EMA's half-life in images (from 0:
the EMA starts as a copy of G), and the probability of StyleGAN2-ADA's augmentation of everything D
sees (from 0; ``ganforge.layers.augment_pipe``, the official ``--aug=1`` operations). Each is read at the step being trained, as the official loop reads
them at ``cur_nimg`` before counting the batch. A pure function of the step: resume needs no
schedule state.

Precision: under ``runtime.precision=bf16`` the stages of ``model.bf16_stages`` run in bfloat16 (the
official FP16Stages, which are bfloat16 in the official code); everything else, the optimizer states
and the penalties' sums stay in float32. fp16 is refused (the official code has no loss scaling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge.config import ConfigError, RunConfig, bounded, model_classes, non_negative, positive
from ganforge.layers.augment_pipe import R3GAN_AUGMENT, AugmentPipe
from ganforge.models.r3gan.losses import Augment, discriminator_loss, generator_loss, no_augment
from ganforge.models.r3gan.networks import R3ganDiscriminator, R3ganGenerator
from ganforge.train.phases import Phase, Recipe, RecipeContext


@dataclass
class R3ganRecipeConfig:
    """The official schedules (``lr_scheduler``, ``gamma_scheduler``, ``beta2_scheduler``, ``ema_scheduler``:
    base and final values over ``decay_nimg`` images); defaults: the CIFAR-10 preset."""

    lr: float = positive(2e-4)
    lr_final: float = non_negative(5e-5)
    gamma: float = non_negative(0.05)
    gamma_final: float = non_negative(0.005)
    beta2: float = bounded(0.9, ge=0.0, le=1.0)
    beta2_final: float = bounded(0.99, ge=0.0, le=1.0)
    ema_nimg: float = non_negative(5e6)  # the EMA's half-life in images at the end of the decay (from 0)
    # StyleGAN2-ADA's pipeline with train.py's --aug=1 settings on everything D sees, its probability rising
    # from 0 to augment_p over decay_nimg (the official aug_scheduler); 0: no augmentation.
    augment_p: float = bounded(0.55, ge=0.0, le=1.0)
    decay_nimg: float = positive(2e7)
    adam_eps: float = positive(1e-8)


def cosine_decay(nimg: float, base: float, final: float, total: float) -> float:
    """``base`` at 0 images, ``final`` at ``total`` and after, a half cosine between (the official
    ``cosine_decay_with_warmup`` without warmup or hold, which the presets do not use)."""
    if nimg > total:
        return final
    decay = 0.5 * (1 + math.cos(math.pi * nimg / float(total)))
    return base + (1 - decay) * (final - base)


@dataclass(frozen=True)
class Schedules:
    """Every scheduled value at a step, from the recipe config and the global batch."""

    cfg: R3ganRecipeConfig
    batch_size: int

    def _at(self, step: int, base: float, final: float) -> float:
        return cosine_decay(step * self.batch_size, base, final, self.cfg.decay_nimg)

    def lr(self, step: int) -> float:
        return self._at(step, self.cfg.lr, self.cfg.lr_final)

    def gamma(self, step: int) -> float:
        return self._at(step, self.cfg.gamma, self.cfg.gamma_final)

    def beta2(self, step: int) -> float:
        return self._at(step, self.cfg.beta2, self.cfg.beta2_final)

    def augment_p(self, step: int) -> float:
        return self._at(step, 0.0, self.cfg.augment_p)

    def ema_decay(self, step: int) -> float:
        """The official ``0.5 ** (batch / max(ema_nimg, 1e-8))``: 0 (a copy) while the half-life is 0."""
        return 0.5 ** (self.batch_size / max(self._at(step, 0.0, self.cfg.ema_nimg), 1e-8))


def _augmenter(sched: Schedules, ctx: RecipeContext, seed: int) -> Augment:
    """The official preprocessor: the pipeline in float32 at the step's probability, back to the input's
    dtype. Its draws come from a CPU stream seeded by (seed, rank, step) at the step's first call, so each
    rank augments differently and a resume continues exactly without storing the stream."""
    pipe, generator, seeded = AugmentPipe(R3GAN_AUGMENT), torch.Generator(), [-1]

    def augment(x: torch.Tensor) -> torch.Tensor:
        if seeded[0] != ctx.step:
            generator.manual_seed(seed + 7919 * (1 + ctx.dist.rank) + 104_729 * ctx.step)
            seeded[0] = ctx.step
        return pipe(x.to(torch.float32), sched.augment_p(ctx.step), generator).to(x.dtype)

    return augment


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    """Networks, Adam with betas (0, beta2) and eps 1e-8, and the two phases (D, then G), on the schedules."""
    m, r = cfg.model, cfg.recipe
    m.num_classes = model_classes(m.num_classes, int(getattr(ctx.dataset, "num_classes", 0) or 0))
    G, D = ctx.place(R3ganGenerator(m)), ctx.place(R3ganDiscriminator(m))
    for net in (G, D):
        net.set_reduced_precision(ctx.precision.name == "bf16")
    opt_g = torch.optim.Adam(G.parameters(), lr=r.lr, betas=(0.0, r.beta2), eps=r.adam_eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=r.lr, betas=(0.0, r.beta2), eps=r.adam_eps)
    sched = Schedules(r, cfg.train.batch_size)
    n = ctx.local_batch
    augment = _augmenter(sched, ctx, cfg.runtime.seed) if r.augment_p > 0 else no_augment

    def labels(batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return batch["label"].to(ctx.device) if m.conditional else None

    def d_step(batch):
        return discriminator_loss(G, D, ctx.randn(n, m.noise_dim), ctx.images(batch), labels(batch),
                                  sched.gamma(ctx.step), augment)

    def g_step(batch):
        return generator_loss(G, D, ctx.randn(n, m.noise_dim), ctx.images(batch), labels(batch), augment)

    def set_beta2(opt: torch.optim.Optimizer):
        def hook() -> None:
            for group in opt.param_groups:
                group["betas"] = (0.0, sched.beta2(ctx.step))
        return hook

    return Recipe(networks={"G": G, "D": D}, optimizers={"G": opt_g, "D": opt_d},
                  phases=[Phase("D", "D", d_step, before_step=set_beta2(opt_d)),
                          Phase("G", "G", g_step, before_step=set_beta2(opt_g))],
                  lr_schedule=lambda step: sched.lr(step) / r.lr, ema_decay=sched.ema_decay,
                  twice_differentiated=("D",))


def check(cfg: RunConfig) -> None:
    """Cross-section rules, checked before any data or network is touched."""
    m, d, tr, rt = cfg.model, cfg.data, cfg.train, cfg.runtime
    m.validate()
    if m.image_size != d.image_size:
        raise ConfigError(f"model.image_size={m.image_size} and data.image_size={d.image_size} differ; set both")
    if d.image_channels != 3:
        raise ConfigError(f"R3GAN generates RGB images; data.channels={d.image_channels} must be 3 "
                          f"(grey data: data.channels=3 repeats the channel)")
    if rt.precision == "fp16":
        raise ConfigError("runtime.precision=fp16: R3GAN runs its reduced-precision stages in bf16 "
                          "(runtime.precision=bf16) or everything in fp32 (runtime.precision=fp32)")
    if tr.lr_schedule != "constant":
        raise ConfigError("R3GAN schedules its learning rate itself (recipe.lr -> recipe.lr_final over "
                          "recipe.decay_nimg images); leave train.lr_schedule=constant")
