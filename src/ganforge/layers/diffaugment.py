"""Differentiable Augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"), with the official policies and parameters.

Every image the discriminator sees, real or fake, in D steps and G steps alike, goes through the same
random, differentiable transforms, so G's gradient passes through them and D cannot overfit the few
real images it has. Policies, combinable as ``color,translation,cutout``:

- ``color``: brightness + U(-0.5, 0.5); saturation x (2 U) around the per-pixel channel mean;
  contrast x (U + 0.5) around the image mean (images in [-1, 1], as the official code assumes);
- ``translation``: a shift of up to 1/8 of the side (rounded), per image and axis, zeros brought in;
- ``cutout``: a square of half the side (rounded) set to zero at a uniformly drawn centre, clipped at
  the borders.

Random numbers come from a ``torch.Generator`` on the CPU (the trainer's checkpointed ``augment``
stream), so a resumed run draws the same augmentations; only the per-image draws move to the device.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
Draw = Callable[..., torch.Tensor]


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) per image, shaped (N, 1, 1, 1), in ``x``'s dtype on its device."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator).to(device=x.device, dtype=x.dtype)


def _integers(low: int, high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """n integers in [low, high), on ``device``."""
    return torch.randint(low, high, (n,), generator=generator).to(device)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Brightness, saturation and contrast, in that order, each with its own draw per image."""
    x = x + (_uniform(x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image shifted by whole pixels, up to ``TRANSLATION_RATIO`` of its side; zeros come in."""
    n, _, h, w = x.shape
    sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _integers(-sh, sh + 1, n, generator, x.device)
    dx = _integers(-sw, sw + 1, n, generator, x.device)
    padded = F.pad(x, [sw, sw, sh, sh])
    rows = torch.arange(h, device=x.device)[None, :] + dy[:, None] + sh  # (N, H) rows of the padded image
    cols = torch.arange(w, device=x.device)[None, :] + dx[:, None] + sw  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A square of ``CUTOUT_RATIO`` of the side zeroed per image; its centre drawn as the official code
    draws it (so an even-sized square may start one pixel before the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = _integers(0, h + (1 - ch % 2), n, generator, x.device) - ch // 2
    left = _integers(0, w + (1 - cw % 2), n, generator, x.device) - cw // 2
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    inside_r = (r >= top[:, None]) & (r < top[:, None] + ch)  # (N, H)
    inside_c = (c >= left[:, None]) & (c < left[:, None] + cw)  # (N, W)
    keep = ~(inside_r[:, :, None] & inside_c[:, None, :])
    return x * keep[:, None].to(x.dtype)


POLICIES: dict[str, Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout}


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> its policies in the given order; "" -> none. Errors name the
    unknown one and the valid ones."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"DiffAugment policy '{unknown[0]}' is not one of {', '.join(POLICIES)} "
                         f"(combine them as color,translation,cutout)")
    return names


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...], generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """``x`` (N, C, H, W) through ``policy``'s transforms in order; ``x`` itself when the policy is empty.
    The memory format (channels_last or not) and the dtype are kept."""
    names = parse_policy(policy) if isinstance(policy, str) else policy
    if not names:
        return x
    channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    for name in names:
        x = POLICIES[name](x, generator)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def attach(network: torch.nn.Module, policy: str, generator: torch.Generator | None = None
           ) -> torch.utils.hooks.RemovableHandle:
    """Augment the first input (the images) of every call of ``network`` from now on; parameter names
    and checkpoints are unchanged. Returns the hook's handle (``.remove()`` undoes it)."""
    names = parse_policy(policy)

    def augment_input(module: torch.nn.Module, args: tuple) -> tuple:
        return (diff_augment(args[0], names, generator), *args[1:])

    return network.register_forward_pre_hook(augment_input)
