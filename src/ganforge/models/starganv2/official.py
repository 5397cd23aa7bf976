"""Import clovaai/stargan-v2 checkpoints (``{iter:06d}_nets_ema.ckpt``, ``_nets.ckpt``, ``_optims.ckpt``,
``wing.ckpt``) into a ganforge run.

The official ``CheckpointIO`` saves one dict per file, keyed by network name (``generator``,
``mapping_network``, ``style_encoder``, ``discriminator``, and ``fan`` when ``w_hpf > 0``), each a plain
state dict whose keys our networks share. Files re-saved from the ``DataParallel`` wrappers carry
``module.`` prefixes; they are removed. The architecture is read off the tensors. Given any one of the
three files, the others with the same iteration are looked for beside it:

- ``_nets_ema.ckpt`` becomes the run's EMA (what sampling, evaluation and export use);
- ``_nets.ckpt`` the trained networks (G, F, E and D); without it they start from the EMA weights and
  D from its initialization;
- ``_optims.ckpt`` (with ``_nets.ckpt``) the Adam states: G's, F's and E's become the three parameter
  groups of ganforge's one generator-side optimizer, so ``resume`` continues at the official
  iteration with the official moments (and ``lambda_ds`` computed from that iteration).

The FAN comes from the checkpoint's ``fan`` entry, or else from ``wing.ckpt`` (``--fan`` /
``recipe.fan_weights``, or a ``wing.ckpt`` beside the file or one folder up, where the official
``expr/checkpoints`` keeps it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from ganforge.config import RunConfig, to_dict
from ganforge.presets import load_config
from ganforge.run.store import new_run_folder, write_new_run
from ganforge.models.starganv2.networks import Discriminator, HighPass, Starganv2ModelConfig
from ganforge.models.starganv2.translator import Starganv2Translator, load_fan_weights
from ganforge.run.checkpoint import CheckpointError, first_load_problem, read_weights_only

FILE_PATTERN = re.compile(r"^(\d+)_(nets_ema|nets|optims)\.ckpt$")
PARTS = ("generator", "mapping_network", "style_encoder")  # the translator's sub-modules, in optimizer order


def official_files(path: str | Path) -> tuple[int, dict[str, Path]]:
    """The iteration and the ``nets_ema``/``nets``/``optims`` files of that iteration beside ``path``."""
    path = Path(path)
    m = FILE_PATTERN.match(path.name)
    if not m:
        raise CheckpointError(f"'{path}' is not named like an official StarGAN v2 checkpoint "
                              f"(e.g. 100000_nets_ema.ckpt, 100000_nets.ckpt)")
    if not path.is_file():
        raise CheckpointError(f"official checkpoint '{path}' does not exist")
    found = {kind: path.with_name(f"{m.group(1)}_{kind}.ckpt") for kind in ("nets_ema", "nets", "optims")}
    return int(m.group(1)), {k: p for k, p in found.items() if p.is_file()}


def read_nets(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """One official file: network name -> state dict (``module.`` prefixes removed)."""
    data = read_weights_only(path, "official StarGAN v2 checkpoint")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise CheckpointError(f"'{path}' is not an official StarGAN v2 checkpoint (a dict of per-network dicts)")
    return {name.removeprefix("module."): {str(k).removeprefix("module."): v for k, v in state.items()}
            for name, state in data.items()}


def official_model_config(nets: dict[str, dict[str, torch.Tensor]]) -> Starganv2ModelConfig:
    """The architecture the official state dicts describe."""
    for name in ("generator", "mapping_network", "style_encoder"):
        if name not in nets:
            raise CheckpointError(f"the checkpoint has no '{name}' (found: {', '.join(nets) or 'nothing'})")
    g, f, e = nets["generator"], nets["mapping_network"], nets["style_encoder"]
    heads = sorted({int(k.split(".")[1]) for k in f if k.startswith("unshared.")})
    blocks = sorted({int(k.split(".")[1]) for k in e if k.startswith("shared.") and k.endswith(".conv1.weight")})
    first_dim = g["from_rgb.weight"].shape[0]
    image_size = 2 ** (len(blocks) + 2)  # E halves the image per block down to 4x4
    w_hpf = 0.0
    if "hpf.filter" in g:
        # The buffer is the Laplacian kernel / w_hpf, loaded as saved; w_hpf is read off its centre
        # (8 / w_hpf), or is the official 1 when the kernel is not of that form.
        kernel = g["hpf.filter"].float()
        w_hpf = float(8.0 / kernel[1, 1]) if kernel[1, 1] > 0 else 1.0
        if not torch.allclose(kernel * w_hpf, HighPass(1.0).filter, atol=1e-4):
            w_hpf = 1.0
    widths = [t.shape[0] for k, t in e.items() if k.endswith(".conv2.weight")]
    return Starganv2ModelConfig(image_size=image_size, num_domains=len(heads), latent_dim=f["shared.0.weight"].shape[1],
                                style_dim=e["unshared.0.weight"].shape[0], max_conv_dim=max(widths),
                                w_hpf=round(w_hpf, 6),
                                base_dim=0 if first_dim == 2 ** 14 // image_size else first_dim)


def _translator_state(nets: dict[str, dict[str, torch.Tensor]], cfg: Starganv2ModelConfig,
                      fan_path: str | Path | None, where: Path) -> dict[str, torch.Tensor]:
    net = Starganv2Translator(cfg)
    state = {f"{part}.{k}": v for part in PARTS for k, v in nets[part].items()}
    if net.fan is not None:
        if "fan" in nets:
            state.update({f"fan.{k}": v for k, v in nets["fan"].items()})
        elif fan_path:
            load_fan_weights(net.fan, fan_path)
            state.update({f"fan.{k}": v for k, v in net.fan.state_dict().items()})
        else:
            raise CheckpointError(f"'{where}' has no FAN (the model uses landmark masks, w_hpf={cfg.w_hpf:g}): pass "
                                  f"--fan wing.ckpt")
    try:
        net.load_state_dict(state)  # a missing or extra key fails here, naming it
    except RuntimeError as err:
        raise CheckpointError(f"'{where}' does not fit the inferred architecture: {first_load_problem(err)}") from None
    return net.state_dict()


def merge_optimizers(optims: dict[str, dict[str, Any]], where: Path) -> dict[str, Any]:
    """The official generator, mapping-network and style-encoder Adam states as one state with three
    parameter groups (the parameters keep their order, so the moments map one to one)."""
    state: dict[int, Any] = {}
    groups: list[dict[str, Any]] = []
    offset = 0
    for part in PARTS:
        if part not in optims:
            raise CheckpointError(f"'{where}' has no '{part}' optimizer (found: {', '.join(optims)})")
        (group,) = optims[part]["param_groups"]  # the official optimizers have one group each
        ids = list(group["params"])
        for new, old in enumerate(ids):
            if old in optims[part]["state"]:
                state[offset + new] = optims[part]["state"][old]
        groups.append({**group, "params": list(range(offset, offset + len(ids)))})
        offset += len(ids)
    return {"state": state, "param_groups": groups}


def import_official(path: str | Path, out_dir: str | Path, preset: str | None = None,
                    overrides: Sequence[str] = (), fan: str | Path | None = None) -> Path:
    """Write a ganforge run folder from official StarGAN v2 checkpoints; returns the checkpoint path.
    ``preset`` gives the rest of the config (default: starganv2/celeba_hq with the high-pass path,
    else starganv2/afhq)."""
    path = Path(path)
    iteration, files = official_files(path)
    out = new_run_folder(out_dir)  # refused before any official file is read if it holds checkpoints
    ema_nets = read_nets(files["nets_ema"]) if "nets_ema" in files else None
    raw_nets = read_nets(files["nets"]) if "nets" in files else None
    model = official_model_config(ema_nets or raw_nets)  # type: ignore[arg-type]
    preset = preset or ("starganv2/celeba_hq" if model.w_hpf > 0 else "starganv2/afhq")
    sets = [f"model.{k}={v}" for k, v in to_dict(model).items()]
    sets += [f"data.image_size={model.image_size}", f"name={out.name}", f"out_dir={out.parent.as_posix()}",
             "train.ema.enabled=true"]
    cfg: RunConfig = load_config(preset, [*sets, *overrides])
    fan = fan or cfg.recipe.fan_weights or next(
        (str(p) for p in (path.with_name("wing.ckpt"), path.parent.parent / "wing.ckpt") if p.is_file()), None)
    if fan and cfg.model.w_hpf > 0:
        cfg.recipe.fan_weights = str(fan)  # resume rebuilds the recipe, which loads the FAN from it
    networks: dict[str, Any] = {}
    ema = _translator_state(ema_nets, cfg.model, fan, files["nets_ema"]) if ema_nets else None
    networks["G"] = _translator_state(raw_nets, cfg.model, fan, files["nets"]) if raw_nets else ema
    if raw_nets and "discriminator" in raw_nets:
        D = Discriminator(cfg.model)
        try:
            D.load_state_dict(raw_nets["discriminator"])
        except RuntimeError as err:
            raise CheckpointError(f"'{files['nets']}': the discriminator does not fit: {first_load_problem(err)}") from None
        networks["D"] = D.state_dict()
    state: dict[str, Any] = {"family": "starganv2", "generator": "G", "config": to_dict(cfg), "networks": networks,
                             "ema": ema if ema is not None else networks["G"],
                             "imported_from": {k: str(p) for k, p in files.items()}}
    if "optims" in files and "D" in networks:
        optims = read_nets(files["optims"])
        if "discriminator" not in optims:
            raise CheckpointError(f"'{files['optims']}' has no 'discriminator' optimizer")
        state["optimizers"] = {"G": merge_optimizers(optims, files["optims"]), "D": optims["discriminator"]}
    return write_new_run(out, cfg, state, iteration)
