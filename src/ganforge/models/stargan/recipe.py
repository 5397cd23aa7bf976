"""StarGAN's training recipe, as yunjey/stargan's solver trains it.

Per step: ``n_critic`` discriminator updates, each on a fresh batch with target labels drawn by
permuting the batch's own labels; then one generator update on the batches of the last critic
update (the official loop updates G on the same ``x_real``/``c_trg`` as that iteration's D update).

- D: WGAN-GP adversarial loss on the PatchGAN map (``-mean D(x) + mean D(G(x, c'))``), gradient
  penalty ``lambda_gp`` on interpolates (computed in fp32 under mixed precision), classification
  of real images' labels ``lambda_cls``.
- G: ``-mean D(G(x, c'))``, classification of the target labels, and L1 cycle reconstruction
  ``|x - G(G(x, c'), c)|`` with ``lambda_rec``.
- Adam(1e-4, betas 0.5/0.999), batch 16. The official run is 200k D iterations = 40k of our steps
  (n_critic 5), with linear decay over the last half (``train.lr_decay_start``).

Learning-rate decay (``recipe.lr_decay``):
- ``paper`` (default): linear from ``train.lr_decay_start`` to zero at ``train.steps``.
- ``official_code``: what the official code does. It subtracts ``lr / num_iters_decay`` every
  ``lr_update_step`` (1000) iterations, so after the last 100k iterations the lr has dropped by only
  0.1% (to 0.999 x lr). Use it to reproduce official runs exactly.
- ``constant``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from ganforge.config import ConfigError, RunConfig, non_negative, positive
from ganforge.models.stargan.labels import conditioning_for_dataset
from ganforge.models.stargan.losses import CriticInputs, compute_d_loss, compute_g_loss
from ganforge.models.stargan.networks import StarganDiscriminator, StarganGenerator
from ganforge.models.stargan.translate import translation_grid
from ganforge.train.phases import Phase, Recipe, RecipeContext
from ganforge.train.schedules import linear_decay


@dataclass
class StarganRecipeConfig:
    """Loss weights, optimizer and schedule (official defaults)."""

    lambda_cls: float = non_negative(1.0)
    lambda_rec: float = non_negative(10.0)
    lambda_gp: float = non_negative(10.0)
    n_critic: int = positive(5)
    g_lr: float = positive(1e-4)
    d_lr: float = positive(1e-4)
    betas: tuple[float, float] = field(default=(0.5, 0.999))
    lr_decay: Literal["paper", "official_code", "constant"] = "paper"
    lr_update_step: int = positive(1000)  # official_code: D iterations between two decrements
    sample_images: int = positive(8)  # rows of the periodic translation grid (fixed training images)


def official_code_lr_factor(step: int, steps: int, decay_start: int, n_critic: int, update_every: int) -> float:
    """The lr factor the official solver uses during our ``step`` (``n_critic`` D iterations each).

    Official: after iteration k (1-based) with ``k % update_every == 0`` and ``k > num_iters -
    num_iters_decay``, ``lr -= base / num_iters_decay``. The factor is 1 minus the decrements made so
    far divided by num_iters_decay (in iterations)."""
    done = n_critic * step  # iterations finished before this step
    start = n_critic * decay_start  # num_iters - num_iters_decay
    decay_iters = n_critic * (steps - decay_start)
    if decay_iters <= 0 or done <= start:
        return 1.0
    decrements = done // update_every - start // update_every
    return 1.0 - decrements / decay_iters


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    """Networks, Adam optimizers and the phases: D x n_critic then G, once per dataset."""
    m, r, tr = cfg.model, cfg.recipe, cfg.train
    cond = conditioning_for_dataset(ctx.dataset)
    if not m.labels:
        # RaFD's class names are known only now, from the folder; the checkpoint's config keeps them.
        m.labels = list(cond.all_names)
    if cond.c_dim != m.c_dim or cond.cls_dim != m.cls_dim:
        raise ConfigError(f"the data has labels {', '.join(cond.all_names)}: G needs model.c_dim={cond.c_dim} and D "
                          f"model.cls_dim={cond.cls_dim}, the config has {m.c_dim} and {m.cls_dim}")
    G = ctx.place(StarganGenerator(m))
    D = ctx.place(StarganDiscriminator(m))
    opt_g = torch.optim.Adam(G.parameters(), lr=r.g_lr, betas=r.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=r.d_lr, betas=r.betas)
    prec, n = ctx.precision, ctx.local_batch

    def phases_of(k: int) -> list[Phase]:
        """The D and G updates on dataset ``k``'s images (its slice of D's class logits)."""
        part = cond.parts[k]

        def critic_inputs(batch) -> CriticInputs:
            x = ctx.images(batch, part.image_key)
            label_org = batch[part.label_key].to(ctx.device, non_blocking=True)
            label_trg = label_org[ctx.randperm(n)]
            return CriticInputs(x=x, label_org=label_org, label_trg=label_trg, c_org=cond.condition(k, label_org),
                                c_trg=cond.condition(k, label_trg), alpha=ctx.rand(n, 1, 1, 1))

        def classification(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return part.space.classification_loss(cond.logits(k, logits), labels)

        d, g = (f"{net}_{part.name}" if cond.joint else net for net in ("D", "G"))  # D_celeba, G_celeba, ...
        # G updates on the batches of the critic update just made, as the official loop.
        return [Phase(d, "D", lambda x: compute_d_loss(G, D, x, classification, r.lambda_cls, r.lambda_gp, prec),
                      repeats=r.n_critic, prepare=critic_inputs),
                Phase(g, "G", lambda x: compute_g_loss(G, D, x, classification, r.lambda_cls, r.lambda_rec, prec),
                      takes=d)]

    def schedule(step: int) -> float:
        if r.lr_decay == "official_code":
            return official_code_lr_factor(step, tr.steps, tr.lr_decay_start, r.n_critic, r.lr_update_step)
        return linear_decay(step, tr.steps, tr.lr_decay_start) if r.lr_decay == "paper" else 1.0

    # Fixed rows for the sample grid: the first training images (of the first dataset), unaugmented.
    first = cond.parts[0]
    fixed = [ctx.dataset.get(i) for i in range(min(r.sample_images, len(ctx.dataset)))]
    fixed_x = torch.stack([f[first.image_key] for f in fixed])
    fixed_c = first.space.condition(torch.stack([f[first.label_key] for f in fixed]))

    def sample(net):
        return translation_grid(net, fixed_x, cond.official_targets(0, fixed_c), ctx.device)

    phases = [p for k in range(len(cond.parts)) for p in phases_of(k)]
    return Recipe(networks={"G": G, "D": D}, optimizers={"G": opt_g, "D": opt_d}, phases=phases,
                  lr_schedule=schedule, sample=sample, twice_differentiated=("D",))


def fill_labels(cfg: RunConfig) -> None:
    """Name the label entries from the data config where they are known before any file is read."""
    from ganforge.data.celeba import HAIR_COLORS, OFFICIAL_ATTRS
    from ganforge.data.shapes import ATTRIBUTES, EXCLUSIVE_ATTRIBUTES

    m, d = cfg.model, cfg.data
    known: tuple[str, list[str], list[str]] | None = None
    if d.name in ("celeba", "celeba_rafd"):
        names = list(d.selected_attrs) or list(OFFICIAL_ATTRS)
        known = ("attributes", names, [a for a in names if a in HAIR_COLORS])
    elif d.name == "shapes" and d.view == "attributes":
        names = list(d.selected_attrs) or list(ATTRIBUTES)
        unknown = [a for a in names if a not in ATTRIBUTES]
        if unknown:
            raise ConfigError(f"data.selected_attrs: {', '.join(unknown)} not attributes of the shapes data; choose "
                              f"from {', '.join(ATTRIBUTES)}")
        known = ("attributes", names, [a for a in names if a in EXCLUSIVE_ATTRIBUTES])
    elif d.name == "rafd":
        m.label_kind = "classes"
    if d.name == "celeba_rafd" and known is not None:  # CelebA attributes, then RaFD classes (named at build)
        m.label_kind, m.joint_split, m.exclusive = "joint", len(known[1]), known[2]
        return
    if known is not None:
        kind, names, exclusive = known
        if m.labels and list(m.labels) != names:
            raise ConfigError(f"model.labels={m.labels} differ from the data's labels {names}; leave model.labels "
                              f"empty to take the data's")
        m.label_kind, m.labels, m.exclusive = kind, names, exclusive
    if m.labels:
        m.c_dim = m.cls_dim = len(m.labels)


def check(cfg: RunConfig) -> None:
    """Cross-section rules, checked (and label names filled in) before any work."""
    m, d, r = cfg.model, cfg.data, cfg.recipe
    if d.name == "shapes" and d.view != "attributes":
        raise ConfigError(f"StarGAN translates labelled images; with the shapes data set data.view=attributes "
                          f"(got '{d.view}')")
    if d.name not in ("shapes", "celeba", "rafd", "celeba_rafd", "image_folder"):
        raise ConfigError(f"StarGAN reads data.name=celeba, rafd, celeba_rafd (joint) or shapes (view attributes); "
                          f"got '{d.name}'")
    if d.name == "image_folder" and not d.classes:
        raise ConfigError("StarGAN on an image_folder needs class sub-folders: set data.classes=true (or use "
                          "data.name=rafd)")
    if m.image_size != d.image_size:
        raise ConfigError(f"model.image_size={m.image_size} and data.image_size={d.image_size} differ; set both")
    if d.image_channels != 3:
        raise ConfigError("StarGAN works on RGB images: data.channels must be 3")
    if m.image_size % (2 ** m.d_repeat_num):
        raise ConfigError(f"model.image_size={m.image_size} must be divisible by 2^model.d_repeat_num="
                          f"{2 ** m.d_repeat_num} (the classification head's kernel is image_size / 2^d_repeat_num)")
    if m.image_size % 4:
        raise ConfigError(f"model.image_size={m.image_size} must be divisible by 4 (two down-samplings in G)")
    if cfg.train.lr_schedule != "constant":
        raise ConfigError("StarGAN sets its learning-rate schedule with recipe.lr_decay (paper, official_code, "
                          "constant) and train.lr_decay_start; leave train.lr_schedule at constant")
    if r.lr_decay == "official_code" and r.lr_update_step % r.n_critic:
        raise ConfigError(f"recipe.lr_update_step={r.lr_update_step} must be a multiple of recipe.n_critic="
                          f"{r.n_critic}: a step holds n_critic D iterations and the lr is set once per step")
    fill_labels(cfg)
