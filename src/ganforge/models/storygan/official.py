"""Import yitong91/StoryGAN checkpoints (``netG_epoch_*.pth``, ``netD_im_epoch_*.pth``,
``netD_st_epoch_*.pth``) into a ganforge run.

The official files are plain state dicts whose keys our networks share, so the architecture is read
off the tensors' shapes and the weights load as they are. The official trainer saves the
discriminators as ``netD_im_epoch_last.pth`` / ``netD_st_epoch_last.pth``; both that name and the
generator's epoch are looked for beside the generator. The result is a run folder that ``story``,
``evaluate``, ``export``, ``ganforge.load`` and ``resume`` (fresh optimizers: none are saved
officially) accept. The run starts at step 0: an official epoch's length depends on the data.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from ganforge.config import RunConfig, to_dict
from ganforge.presets import load_config
from ganforge.run.store import new_run_folder, write_new_run
from ganforge.models.storygan.networks import (ImageDiscriminator, StoryDiscriminator, StoryganGenerator,
                                               StoryganModelConfig)
from ganforge.run.checkpoint import CheckpointError, read_official_state_dict

G_PATTERN = re.compile(r"netG_epoch_(\w+)\.pth$")


def _sibling(g_path: Path, kind: str) -> Path | None:
    """``netD_{kind}_epoch_{N}.pth`` or ``netD_{kind}_epoch_last.pth`` beside the generator."""
    m = G_PATTERN.search(g_path.name)
    names = ([f"netD_{kind}_epoch_{m.group(1)}.pth"] if m else []) + [f"netD_{kind}_epoch_last.pth"]
    return next((g_path.with_name(n) for n in names if g_path.with_name(n).is_file()), None)


def official_model_config(g: dict[str, torch.Tensor], d_im: dict[str, torch.Tensor] | None,
                          d_st: dict[str, torch.Tensor] | None, video_len: int = 4) -> StoryganModelConfig:
    """The architecture the official state dicts describe (``video_len`` from the story D, else given)."""
    text = g["recurrent.weight_hh"].shape[1]
    cfg = StoryganModelConfig(text_dim=text, noise_dim=g["recurrent.weight_ih"].shape[1] - text,
                              condition_dim=g["ca_net.fc.weight"].shape[0] // 2,
                              gf_dim=g["fc.0.weight"].shape[0] // 64,
                              filter_size=math.isqrt(g["filter_net.0.weight"].shape[0]), video_len=video_len)
    if d_im is not None:
        cfg.df_dim = d_im["encode_img.0.weight"].shape[0]
        cfg.label_num = d_im["cate_classify.weight"].shape[0]
    if d_st is not None:
        cfg.df_dim = d_st["encode_img.0.weight"].shape[0]
        cfg.video_len = d_st["get_cond_logits.conv1.0.weight"].shape[1] // (8 * cfg.df_dim)
    return cfg


def import_official(g_path: str | Path, out_dir: str | Path, d_im_path: str | Path | None = None,
                    d_st_path: str | Path | None = None, preset: str = "storygan/clevr_sv",
                    overrides: Sequence[str] = ()) -> Path:
    """Write a ganforge run folder from official StoryGAN checkpoints; returns the checkpoint path."""
    g_path = Path(g_path)
    d_im_path = Path(d_im_path) if d_im_path else _sibling(g_path, "im")
    d_st_path = Path(d_st_path) if d_st_path else _sibling(g_path, "st")
    g_state = read_official_state_dict(g_path, "StoryGAN generator", "recurrent.weight_ih")
    d_im = read_official_state_dict(d_im_path, "StoryGAN image discriminator", "cate_classify.weight") if d_im_path else None
    d_st = read_official_state_dict(d_st_path, "StoryGAN story discriminator",
                                                                "get_cond_logits.conv1.0.weight") if d_st_path else None
    preset_cfg = load_config(preset, list(overrides))
    model = official_model_config(g_state, d_im, d_st, preset_cfg.model.video_len)
    out = new_run_folder(out_dir)  # refused before any official file is read if it holds checkpoints
    keep = ("variant", "eval_bn", "image_size")  # not stored in the tensors: from the preset/overrides
    sets = [f"model.{k}={v}" for k, v in to_dict(model).items() if k not in keep]
    sets += [f"name={out.name}", f"out_dir={out.parent.as_posix()}"]
    cfg: RunConfig = load_config(preset, [*sets, *overrides])
    networks: dict[str, Any] = {}
    try:
        for name, cls, state in (("G", StoryganGenerator, g_state), ("D_im", ImageDiscriminator, d_im),
                                 ("D_st", StoryDiscriminator, d_st)):
            if state is not None:
                net = cls(cfg.model)
                net.load_state_dict(state)  # a missing or extra key fails here, naming it
                networks[name] = net.state_dict()
    except RuntimeError as err:
        raise CheckpointError(f"official checkpoint does not fit the inferred architecture: "
                              f"{str(err).splitlines()[0][:300]}") from None
    state: dict[str, Any] = {"family": "storygan", "generator": "G", "config": to_dict(cfg), "networks": networks,
                             "ema": None, "imported_from": {"G": str(g_path), "D_im": str(d_im_path) if d_im_path else None,
                                                            "D_st": str(d_st_path) if d_st_path else None}}
    return write_new_run(out, cfg, state, 0)
