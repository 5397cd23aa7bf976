"""StoryGAN's training recipe, as yitong91/StoryGAN's ``GANTrainer.train`` runs it.

Each training item is a story (frames, descriptions, labels) plus image samples: a random frame of a
random story with its description, its story's mean description and its labels (the official
``ImageDataset``, which its own loader shuffles independently of the stories). Per step:

1. ``D_im`` then ``D_st``: fakes are drawn once for the step (G's ``sample_images`` for the image
   batch, ``sample_videos`` for the story batch), then each discriminator takes its loss
   (``compute_discriminator_loss``): BCE on real pairs (target 1), wrong pairs (real images
   ``[:-1]`` with the conditions ``[1:]``, target 0) and fake pairs (target 0), combined as
   ``real + (fake + wrong) / 2``; the image D adds ``MultiLabelSoftMarginLoss`` of its category head
   on real frames, weight ``category_weight_d`` (1.0). The official code steps both optimizers after
   both backwards; the two D's share no parameter, so stepping one after the other is the same.
2. ``G``, ``g_updates`` times (2) on the same batch with fresh noise (``compute_generator_loss``):
   BCE of fake pairs against 1 for both D's, the category loss (weight ``category_weight_g``, 0.4)
   through the image D, and the KL terms: ``image + story_weight * story`` for both.
- Adam(2e-4, betas 0.5/0.999) for G and both D's; the lr halves every ``lr_decay_epochs`` epochs
  (20), an epoch being ``len(stories) // story batch`` steps (the official loader drops the last
  partial batch). Snapshots every ``snapshot_epochs`` epochs are ``train.ckpt_every`` in steps.

The losses are in ``losses.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganforge.config import ConfigError, RunConfig, non_negative, positive
from ganforge.models.storygan.losses import discriminator_loss, story_generator_loss
from ganforge.models.storygan.networks import (GeneratorOutput, ImageDiscriminator, StoryDiscriminator,
                                               StoryganGenerator, StoryganModelConfig, init_weights)
from ganforge.train.phases import Phase, Recipe, RecipeContext


@dataclass
class StoryganRecipeConfig:
    """Optimizers, loss weights and batches (official values; the cfg names in comments)."""

    g_lr: float = positive(2e-4)  # TRAIN.GENERATOR_LR
    d_lr: float = positive(2e-4)  # TRAIN.DISCRIMINATOR_LR
    betas: tuple[float, float] = field(default=(0.5, 0.999))
    image_batch_size: int = non_negative(0)  # TRAIN.IM_BATCH_SIZE; 0: train.batch_size (ST_BATCH_SIZE)
    story_weight: float = non_negative(1.0)  # ST_WEIGHT: the story terms' weight in G's loss
    category_weight_d: float = non_negative(1.0)
    category_weight_g: float = non_negative(0.4)
    kl_weight: float = non_negative(1.0)  # the official trainer adds the KL unweighted (TRAIN.COEFF.KL is unread)
    g_updates: int = positive(2)  # G updates per D update
    lr_decay_epochs: int = non_negative(20)  # TRAIN.LR_DECAY_EPOCH: halve every N epochs (0: constant)
    sample_stories: int = positive(8)  # rows of the periodic story strips (fixed stories, fixed noise)


class StoryTrainingView:
    """What the training stream reads: story ``i`` plus ``frames`` image samples, each a random frame
    of a random story drawn from the item's seeded generator (so any worker and a resume draw the same)."""

    def __init__(self, stories: Any, frames: int):
        self.stories, self.frames = stories, frames
        self.num_classes = 0

    def __len__(self) -> int:
        return len(self.stories)

    def get(self, index: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        rng = rng if rng is not None else np.random.default_rng(index)
        item = dict(self.stories.get(index, rng))
        images, descriptions, contents, labels = [], [], [], []
        for _ in range(self.frames):
            j, t = int(rng.integers(len(self.stories))), int(rng.integers(self.stories.video_len))
            story = self.stories.descriptions(j, rng)
            images.append(self.stories.frame(j, t, rng))
            descriptions.append(story[t])
            contents.append(story.mean(0))
            labels.append(self.stories.frame_label(j, t))
        item.update(frame_images=torch.stack(images), frame_descriptions=torch.stack(descriptions),
                    frame_contents=torch.stack(contents), frame_labels=torch.stack(labels))
        return item


def micro_batch(batch: dict[str, torch.Tensor], image_batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The stories and descriptions of a micro-batch, and the first ``image_batch`` of its image samples
    (each story item carries ``frames`` of them), on ``device``."""
    take = {k: batch[k].flatten(0, 1)[:image_batch]
            for k in ("frame_images", "frame_descriptions", "frame_contents", "frame_labels")}
    return {"stories": batch["images"].to(device, non_blocking=True),
            "descriptions": batch["descriptions"].to(device, non_blocking=True),
            "images": take["frame_images"].to(device, non_blocking=True),
            "image_descriptions": take["frame_descriptions"].to(device, non_blocking=True),
            "image_contents": take["frame_contents"].to(device, non_blocking=True),
            "image_labels": take["frame_labels"].to(device, non_blocking=True)}


def steps_per_epoch(stories: int, story_batch: int) -> int:
    """Official iterations per epoch: the story loader drops its last partial batch."""
    return max(1, stories // story_batch)


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    """Networks (official init), Adam optimizers and the phases D_im, D_st, G x g_updates."""
    m, r, tr = cfg.model, cfg.recipe, cfg.train
    data = ctx.dataset
    check_data(m, data, cfg.data.name)
    G, D_im, D_st = StoryganGenerator(m), ImageDiscriminator(m), StoryDiscriminator(m)
    for net in (G, D_im, D_st):
        init_weights(net)
    G, D_im, D_st = ctx.place(G), ctx.place(D_im), ctx.place(D_st)
    opt = {name: torch.optim.Adam(net.parameters(), lr=lr, betas=r.betas)
           for name, net, lr in (("G", G, r.g_lr), ("D_im", D_im, r.d_lr), ("D_st", D_st, r.d_lr))}
    prec, n = ctx.precision, ctx.local_batch
    image_batch = (r.image_batch_size or tr.batch_size) // ctx.dist.world_size // tr.grad_accum
    # Checked here, not in check(): the per-process sizes depend on how many processes torchrun starts.
    for what, size in (("train.batch_size", n), ("recipe.image_batch_size", image_batch)):
        if size < 2:
            raise ConfigError(f"StoryGAN's wrong pairs shift the conditions within each micro-batch: {what} over "
                              f"{ctx.dist.world_size} process(es) and train.grad_accum={tr.grad_accum} leaves "
                              f"{size} per micro-batch; raise it to at least {2 * ctx.dist.world_size * tr.grad_accum}")
    frames = math.ceil(image_batch / n)
    autocast = prec.autocast

    def draw(x: dict[str, torch.Tensor]) -> tuple[GeneratorOutput, GeneratorOutput]:
        """Fake image batch and fake stories with fresh noise (official: sample_images, sample_videos)."""
        with autocast():
            im = G.image(x["image_descriptions"], x["image_contents"], ctx.randn(len(x["images"]), m.noise_dim))
            st = G.story(x["descriptions"], ctx.randn(n, m.video_len, m.noise_dim))
        return im, st

    def step_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A micro-batch's stories and image samples on the device, and the step's fakes, drawn once."""
        x = micro_batch(batch, image_batch, ctx.device)
        with torch.no_grad():  # the official fakes are detached before D sees them
            im, st = draw(x)
        x["fake_images"], x["image_condition"] = im.images, im.condition
        x["fake_stories"], x["story_condition"] = st.images, st.condition
        return x

    def d_image(x):
        return discriminator_loss(D_im, x["images"], x["fake_images"], x["image_condition"], x["image_labels"],
                                  r.category_weight_d, autocast)

    def d_story(x):
        return discriminator_loss(D_st, x["stories"], x["fake_stories"], x["story_condition"], None, 0.0, autocast)

    def g_step(x):
        im, st = draw(x)
        return story_generator_loss(D_im, D_st, im, st, x["image_labels"], r.category_weight_g, r.story_weight,
                                    r.kl_weight, autocast)

    epoch_steps = steps_per_epoch(len(data), tr.batch_size)

    def schedule(step: int) -> float:
        if not r.lr_decay_epochs:
            return 1.0
        return 0.5 ** ((step // epoch_steps) // r.lr_decay_epochs)

    # Fixed stories and noise for the periodic strips: generated beside the ground truth.
    count = min(r.sample_stories, len(data))
    fixed = [data.get(i) for i in range(count)]
    fixed_descriptions = torch.stack([f["descriptions"] for f in fixed])
    fixed_truth = torch.stack([f["images"] for f in fixed])
    fixed_noise = torch.randn(count, m.video_len, m.noise_dim, generator=torch.Generator().manual_seed(cfg.runtime.seed + 1))

    def sample(net):
        from ganforge.sample.story import story_strips

        with torch.no_grad():
            fake = net(fixed_descriptions.to(ctx.device), fixed_noise.to(ctx.device)).float().cpu()
        return story_strips(fake, fixed_truth)

    # The step's inputs and fakes, drawn by D_im and handed on to D_st and G.
    phases = [Phase("D_im", "D_im", d_image, prepare=step_inputs), Phase("D_st", "D_st", d_story, takes="D_im"),
              Phase("G", "G", g_step, repeats=r.g_updates, takes="D_im")]
    return Recipe(networks={"G": G, "D_im": D_im, "D_st": D_st}, optimizers=opt, phases=phases,
                  lr_schedule=schedule, sample=sample, train_data=StoryTrainingView(data, frames))


def check_data(m: StoryganModelConfig, data: Any, name: str) -> None:
    """The data's frames per story, description length and labels must be the model's."""
    if not hasattr(data, "video_len"):
        raise ConfigError(f"StoryGAN trains on stories; data.name={name} gives single images (use clevr_sv, or "
                          f"shapes with data.view=story)")
    for key, want in (("video_len", data.video_len), ("text_dim", data.text_dim), ("label_num", data.label_num)):
        if getattr(m, key) != want:
            raise ConfigError(f"model.{key}={getattr(m, key)} but the data has {want} ({name}: {key.replace('_', ' ')}"
                              f" {want}); set model.{key}={want}")


def check(cfg: RunConfig) -> None:
    """Cross-section rules, checked before any work."""
    m, d, r, tr = cfg.model, cfg.data, cfg.recipe, cfg.train
    if d.name not in ("clevr_sv", "pororo_sv", "shapes"):
        raise ConfigError(f"StoryGAN reads data.name=clevr_sv, pororo_sv, or shapes with data.view=story; got "
                          f"'{d.name}'")
    if d.name == "shapes" and d.view != "story":
        raise ConfigError(f"StoryGAN trains on stories: with the shapes data set data.view=story (got '{d.view}')")
    if d.name == "shapes" and d.video_len != m.video_len:
        raise ConfigError(f"data.video_len={d.video_len} (frames of the shapes stories) and model.video_len="
                          f"{m.video_len} differ; set both")
    if d.image_size != m.image_size:
        raise ConfigError(f"StoryGAN draws {m.image_size}x{m.image_size} frames: data.image_size must be "
                          f"{m.image_size} (got {d.image_size})")
    if d.image_channels != 3:
        raise ConfigError("StoryGAN works on RGB frames: data.channels must be 3")
    if m.variant == "paper" and m.condition_dim != m.text_dim:
        raise ConfigError(f"variant=paper feeds ca_net's output where the text was: model.condition_dim must equal "
                          f"model.text_dim={m.text_dim} (got {m.condition_dim})")
    if tr.batch_size < 2:
        raise ConfigError("StoryGAN's wrong pairs shift the conditions within the batch: train.batch_size must be "
                          "at least 2")
    image_batch = r.image_batch_size or tr.batch_size
    if image_batch % tr.grad_accum:
        raise ConfigError(f"recipe.image_batch_size={image_batch} must be divisible by train.grad_accum="
                          f"{tr.grad_accum}")
    if cfg.train.lr_schedule != "constant":
        raise ConfigError("StoryGAN halves its learning rate every recipe.lr_decay_epochs epochs; leave "
                          "train.lr_schedule at constant")
