"""Import yunjey/stargan checkpoints (``{iter}-G.ckpt``, ``{iter}-D.ckpt``) into a ganforge run.

The official files are plain state dicts whose keys our networks share (``main.<i>...``, ``conv1``,
``conv2``), so the architecture is read off the tensors' shapes, checked, and loaded as is. The
result is a run folder (config.yaml + checkpoints/step-N.pt) that ``translate``, ``evaluate``,
``export`` and ``ganforge.load`` accept, and that ``resume`` fine-tunes (with fresh optimizers:
the official code does not save them). Official iterations count D updates; our step is
``iter // n_critic``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from ganforge.config import RunConfig, to_dict
from ganforge.presets import load_config
from ganforge.run.store import new_run_folder, write_new_run
from ganforge.data.celeba import HAIR_COLORS, OFFICIAL_ATTRS

# RaFD's expression folders in sorted order: the class indices of torchvision's ImageFolder.
RAFD_EXPRESSIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
from ganforge.models.stargan.networks import StarganDiscriminator, StarganGenerator, StarganModelConfig
from ganforge.run.checkpoint import CheckpointError, read_official_state_dict


def official_model_config(g_state: dict[str, torch.Tensor], d_state: dict[str, torch.Tensor] | None,
                          image_size: int = 128) -> StarganModelConfig:
    """The architecture the official state dicts describe (image size from D's head, else ``image_size``)."""
    first = g_state["main.0.weight"]  # (conv_dim, 3 + c_dim, 7, 7)
    blocks = {int(m.group(1)) for k in g_state if (m := re.match(r"main\.(\d+)\.main\.0\.weight$", k))}
    cfg = StarganModelConfig(image_size=image_size, c_dim=first.shape[1] - 3, cls_dim=first.shape[1] - 3,
                             g_conv_dim=first.shape[0], g_repeat_num=len(blocks))
    if d_state is not None:
        convs = [k for k in d_state if re.match(r"main\.\d+\.weight$", k)]
        kernel = d_state["conv2.weight"].shape[-1]
        cfg.d_conv_dim, cfg.d_repeat_num = d_state["main.0.weight"].shape[0], len(convs)
        cfg.cls_dim = d_state["conv2.weight"].shape[0]
        cfg.image_size = kernel * 2 ** len(convs)
    if d_state is None and cfg.c_dim > 8:
        cfg.cls_dim = cfg.c_dim - 2  # without D: the official joint layout (c_dim + c2_dim + 2) is assumed
    if cfg.cls_dim == cfg.c_dim - 2:
        cfg.label_kind = "joint"
    elif cfg.cls_dim != cfg.c_dim:
        raise CheckpointError(f"G is conditioned on {cfg.c_dim} values but D classifies {cfg.cls_dim}: neither one "
                              f"dataset (equal) nor CelebA+RaFD with the 2-value mask vector (c_dim = cls_dim + 2)")
    return cfg


def import_official(g_path: str | Path, out_dir: str | Path, d_path: str | Path | None = None,
                    labels: Sequence[str] = (), preset: str = "stargan/celeba", image_size: int = 128,
                    overrides: Sequence[str] = ()) -> Path:
    """Write a ganforge run folder from official checkpoints; returns the checkpoint path.

    ``d_path`` defaults to the ``{iter}-D.ckpt`` beside ``g_path`` when it exists. ``labels`` names
    the attributes (default: the official five when c_dim is 5)."""
    g_path = Path(g_path)
    match = re.match(r"(\d+)-G\.ckpt$", g_path.name)
    if d_path is None and match:
        sibling = g_path.with_name(f"{match.group(1)}-D.ckpt")
        d_path = sibling if sibling.is_file() else None
    g_state = read_official_state_dict(g_path, "StarGAN generator", "main.0.weight")
    d_state = read_official_state_dict(Path(d_path), "StarGAN discriminator", "main.0.weight") if d_path is not None else None
    model = official_model_config(g_state, d_state, image_size)
    joint = model.label_kind == "joint"
    if joint:
        # The official joint run: 5 CelebA attributes, then the RaFD expressions (folder names, sorted).
        default = list(OFFICIAL_ATTRS) + (list(RAFD_EXPRESSIONS) if model.cls_dim == 13 else
                                         [f"class_{i}" for i in range(model.cls_dim - len(OFFICIAL_ATTRS))])
        preset = "stargan/celeba_rafd" if preset == "stargan/celeba" else preset
    else:
        default = list(OFFICIAL_ATTRS) if model.c_dim == len(OFFICIAL_ATTRS) else []
    names = list(labels) or default
    if names and len(names) != model.cls_dim:
        raise CheckpointError(f"{len(names)} label names given ({', '.join(names)}) for a model whose D classifies "
                              f"{model.cls_dim} labels")
    out = new_run_folder(out_dir)  # refused before any official file is read if it holds checkpoints
    skip = ("labels", "exclusive", "label_kind", "joint_split")
    sets = [f"model.{k}={v}" for k, v in to_dict(model).items() if k not in skip]
    sets += [f"data.image_size={model.image_size}", f"name={out.name}", f"out_dir={out.parent.as_posix()}"]
    celeba_names = names[:len(OFFICIAL_ATTRS)] if joint else names
    if celeba_names:
        sets += [f"data.selected_attrs=[{','.join(celeba_names)}]"]
    cfg: RunConfig = load_config(preset, [*sets, *overrides])
    if names and cfg.model.labels != names:  # joint, or data other than celeba: record the names on the model
        cfg.model.labels, cfg.model.exclusive = names, [n for n in celeba_names if n in HAIR_COLORS]
        if joint:
            cfg.model.label_kind, cfg.model.joint_split = "joint", len(celeba_names)
    # Load into our networks: a key or shape mismatch fails here, naming the key.
    gen, networks = StarganGenerator(cfg.model), {}
    try:
        gen.load_state_dict(g_state)
        networks["G"] = gen.state_dict()
        if d_state is not None:
            disc = StarganDiscriminator(cfg.model)
            disc.load_state_dict(d_state)
            networks["D"] = disc.state_dict()
    except RuntimeError as err:
        raise CheckpointError(f"official checkpoint does not fit the inferred architecture: "
                              f"{str(err).splitlines()[0][:300]}") from None
    step = int(match.group(1)) // cfg.recipe.n_critic if match else 0
    state: dict[str, Any] = {"family": "stargan", "generator": "G", "config": to_dict(cfg), "networks": networks,
                             "ema": None, "imported_from": {"G": str(g_path), "D": str(d_path) if d_path else None}}
    return write_new_run(out, cfg, state, step)
