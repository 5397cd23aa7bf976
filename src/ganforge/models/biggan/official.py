"""Import BigGAN-PyTorch weights (``G.pth``, ``G_ema.pth``, ``D.pth``, optimizers, ``state_dict.pth``).

The official ``utils.save_weights`` writes plain state dicts into ``weights/<experiment>/``; our
networks use the same module and buffer names and the same parameter order, so weights and Adam
states load as they are. Only the batch-norm buffers of runs trained with ``--mybn`` or
``--cross_replica`` (``*.bn.stored_mean``, ``*.bn.running_mean``, ...) are renamed to the default
layout's ``stored_mean``/``stored_var``.

The architecture and training flags come from the official ``state_dict.pth`` (its ``config``) when
it lies beside the weights, else from a preset plus ``key=value`` overrides. Every file is read with
``weights_only=True``. The result is a run folder (config.yaml + checkpoints/step-N.pt, N = the
official ``itr``) that ``sample``, ``evaluate``, ``export`` and ``ganforge.load`` accept and that
``resume`` continues (with the official optimizer states when they were imported).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from ganforge.config import RunConfig, to_dict
from ganforge.presets import load_config
from ganforge.run.store import new_run_folder, write_new_run
from ganforge.models.biggan.networks import BigganDiscriminator, BigganGenerator
from ganforge.run.checkpoint import CheckpointError, first_load_problem, read_weights_only

GENERATOR_FILES = ("G_ema.pth", "G.pth")
# Official flags with a value we cannot reproduce, and the values we can.
SUPPORTED_FLAGS = {"model": ("BigGAN",), "norm_style": ("bn",), "G_nl": ("relu", "inplace_relu", "ir"),
                   "D_nl": ("relu", "inplace_relu", "ir")}


# What BigGAN-PyTorch pickles besides tensors and plain data: train.py puts the activation modules
# (utils.activation_dict) into the run config that utils.save_weights writes into state_dict.pth.
OFFICIAL_PICKLED_CLASSES = (torch.nn.ReLU,)


def _read(path: Path, what: str) -> Any:
    return read_weights_only(path, f"official BigGAN {what}", allowed=OFFICIAL_PICKLED_CLASSES)


def rename_bn_buffers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``--mybn``/``--cross_replica`` BN buffers -> the default ``stored_mean``/``stored_var`` names."""
    out = {}
    for key, value in state.items():
        m = re.match(r"(.*)\.bn\.(stored_mean|stored_var|running_mean|running_var|accumulation_counter|"
                     r"num_batches_tracked)$", key)
        if m is None:
            out[key] = value
        elif m.group(2) in ("stored_mean", "running_mean"):
            out[f"{m.group(1)}.stored_mean"] = value
        elif m.group(2) in ("stored_var", "running_var"):
            out[f"{m.group(1)}.stored_var"] = value
    return out


def _attention(text: Any) -> list[int]:
    return [int(t) for t in str(text).split("_") if int(t) > 0]


def overrides_from_official(config: dict[str, Any]) -> list[str]:
    """``key=value`` overrides that reproduce an official run's ``config`` (from its state_dict.pth)."""
    for flag, allowed in SUPPORTED_FLAGS.items():
        if flag in config and config[flag] not in allowed:
            raise CheckpointError(f"the official run used --{flag} {config[flag]}; ganforge's BigGAN supports "
                                  f"{', '.join(allowed)}")
    if config.get("num_G_SVs", 1) != config.get("num_D_SVs", 1) or \
            config.get("num_G_SV_itrs", 1) != config.get("num_D_SV_itrs", 1):
        raise CheckpointError("the official run used different SN settings for G and D (num_G_SVs/num_D_SVs or "
                              "their itrs); ganforge uses one setting for both")
    c = config
    sets = {
        "model.image_size": c.get("resolution"), "model.num_classes": c.get("n_classes"),
        "model.g_ch": c.get("G_ch"), "model.d_ch": c.get("D_ch"), "model.dim_z": c.get("dim_z"),
        "model.g_shared": c.get("G_shared"), "model.shared_dim": c.get("shared_dim"), "model.hier": c.get("hier"),
        "model.d_wide": c.get("D_wide"), "model.g_param": c.get("G_param"), "model.num_svs": c.get("num_G_SVs"),
        "model.num_sv_itrs": c.get("num_G_SV_itrs"), "model.sn_eps": c.get("SN_eps"), "model.bn_eps": c.get("BN_eps"),
        "model.g_init": c.get("G_init"), "model.d_init": c.get("D_init"),
        "recipe.g_lr": c.get("G_lr"), "recipe.d_lr": c.get("D_lr"), "recipe.adam_eps": c.get("adam_eps"),
        "recipe.num_d_steps": c.get("num_D_steps"), "recipe.num_d_accumulations": c.get("num_D_accumulations"),
        "recipe.num_g_accumulations": c.get("num_G_accumulations"), "recipe.g_batch_size": c.get("G_batch_size"),
        "recipe.split_d": c.get("split_D"), "recipe.g_ortho": c.get("G_ortho"), "recipe.d_ortho": c.get("D_ortho"),
        "train.batch_size": c.get("batch_size"), "train.ema.enabled": c.get("ema"),
        "train.ema.decay": c.get("ema_decay"), "train.ema.start": c.get("ema_start"),
    }
    out = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in sets.items() if v is not None]
    for key, flag in (("model.g_attention", "G_attn"), ("model.d_attention", "D_attn")):
        if flag in c:
            out.append(f"{key}=[{','.join(map(str, _attention(c[flag])))}]")
    for key, b1, b2 in (("recipe.g_betas", "G_B1", "G_B2"), ("recipe.d_betas", "D_B1", "D_B2")):
        if b1 in c and b2 in c:
            out.append(f"{key}=[{c[b1]},{c[b2]}]")
    if "G_eval_mode" in c:
        out.append(f"model.eval_bn={'stored' if c['G_eval_mode'] else 'batch'}")
    if "resolution" in c:
        out.append(f"data.image_size={c['resolution']}")
    return out


def find_files(path: str | Path) -> dict[str, Path]:
    """The official files for ``path``: a weights folder, or one generator file with its siblings.

    Keys: ``G`` (raw), ``G_ema``, ``D``, ``G_optim``, ``D_optim``, ``state`` (state_dict.pth); a
    ``_<suffix>`` such as ``G_ema_best0.pth`` selects the files of that suffix."""
    path = Path(path)
    if path.is_dir():
        folder, suffix = path, ""
        if not any((folder / f).is_file() for f in GENERATOR_FILES):
            raise CheckpointError(f"'{folder}' holds no G_ema.pth or G.pth (an official weights folder has them)")
    else:
        m = re.match(r"(G_ema|G)(_.+)?\.pth$", path.name)
        if m is None:
            raise CheckpointError(f"'{path}': expected an official generator file named G.pth or G_ema.pth "
                                  f"(optionally with a suffix such as G_ema_best0.pth), or its folder")
        if not path.is_file():
            raise CheckpointError(f"official BigGAN generator '{path}' does not exist")
        folder, suffix = path.parent, m.group(2) or ""
    names = {"G": "G", "G_ema": "G_ema", "D": "D", "G_optim": "G_optim", "D_optim": "D_optim", "state": "state_dict"}
    found = {key: folder / f"{name}{suffix}.pth" for key, name in names.items()}
    found = {k: p for k, p in found.items() if p.is_file()}
    if not path.is_dir():  # a single G file given: use exactly that as the generator
        found["G_ema" if path.name.startswith("G_ema") else "G"] = path
    return found


def import_official(path: str | Path, out_dir: str | Path, preset: str = "biggan/imagenet128",
                    overrides: Sequence[str] = ()) -> Path:
    """Write a ganforge run folder from official BigGAN-PyTorch files; returns the checkpoint path."""
    files = find_files(path)
    official: dict[str, Any] = _read(files["state"], "state_dict.pth") if "state" in files else {}
    sets = overrides_from_official(official["config"]) if isinstance(official.get("config"), dict) else []
    out = new_run_folder(out_dir)  # refused before any official file is read if it holds checkpoints
    cfg: RunConfig = load_config(preset, [*sets, f"name={out.name}", f"out_dir={out.parent.as_posix()}", *overrides])
    if cfg.family != "biggan":
        raise CheckpointError(f"preset '{preset}' is a '{cfg.family}' preset; use a biggan one (biggan/imagenet128)")
    if cfg.model.num_classes == 0:
        raise CheckpointError("the number of classes is unknown: pass model.num_classes=N")
    raw = files.get("G") or files.get("G_ema")
    ema = files.get("G_ema")
    networks: dict[str, Any] = {}
    try:
        networks["G"] = _load_into(BigganGenerator(cfg.model), _read(raw, "generator"))
        ema_state = _load_into(BigganGenerator(cfg.model), _read(ema, "EMA generator")) if ema else None
        if "D" in files:
            networks["D"] = _load_into(BigganDiscriminator(cfg.model), _read(files["D"], "discriminator"))
    except RuntimeError as err:
        raise CheckpointError(f"the official weights do not fit the configured architecture (from "
                              f"{'state_dict.pth' if sets else preset} and overrides): {first_load_problem(err)}"
                              ) from None
    if ema_state is not None and not cfg.train.ema.enabled:
        cfg.train.ema.enabled = True  # G_ema.pth exists: keep it as the run's EMA
    state: dict[str, Any] = {"family": "biggan", "generator": "G", "config": to_dict(cfg), "networks": networks,
                             "ema": ema_state, "imported_from": {k: str(p) for k, p in files.items()}}
    if {"G_optim", "D_optim", "D"} <= set(files) and "G" in files:
        # Same parameter order as the official modules, so Adam's state maps one to one.
        state["optimizers"] = {"G": _read(files["G_optim"], "G optimizer"), "D": _read(files["D_optim"], "D optimizer")}
    return write_new_run(out, cfg, state, int(official.get("itr", 0)))


def _load_into(net: torch.nn.Module, state: Any) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or "linear.weight" not in state:
        raise CheckpointError("not an official BigGAN state dict (no 'linear.weight' key)")
    net.load_state_dict(rename_bn_buffers(state))
    return net.state_dict()
