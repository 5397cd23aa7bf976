"""Import brownvc/R3GAN network snapshots (``network-snapshot-*.pkl``, the released ``*.pkl``) without
running their code.

An official snapshot is a Python pickle of the training loop's dict: ``G``, ``D``, ``G_ema`` (whole
``nn.Module`` objects of the official classes), ``G_opt_state``/``D_opt_state`` (Adam state dicts),
``cur_nimg`` and ``training_set_kwargs``. Unpickling it the usual way imports and runs the official
code (and, for StyleGAN-style persistent pickles, source code stored in the file). Here a restricted
unpickler builds nothing but plain data:

- the official module classes (``R3GAN.*``, ``training.networks.*``, ``torch.nn`` containers and
  layers) become inert records of their pickled attributes; a persistent-class record
  (``torch_utils.persistence``) is read the same way from its stored state, its source never run;
- tensors are rebuilt by torch's own tensor and parameter constructors, their storages read with
  ``torch.load(weights_only=True)``;
- dtypes, ``OrderedDict`` and ``EasyDict`` (as a dict) are allowed; any other global in the file
  is refused with an error that names it.

The architecture is read from the tensors' shapes (widths, blocks, cardinality, expansion, kernel,
noise and embedding sizes, the resampling filter) and the stages' ``DataType`` (bf16 stages); the
weights map by the naming rule of ``networks.py``. G, D, the EMA, both Adam states and the image
count come in, so ``ganforge resume`` continues the official run on its schedules.
"""

from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import torch

from ganforge.config import ConfigError, RunConfig, to_dict
from ganforge.models.r3gan.networks import R3ganDiscriminator, R3ganGenerator, R3ganModelConfig, lowpass_kernel
from ganforge.presets import load_config
from ganforge.run.checkpoint import CheckpointError
from ganforge.run.store import new_run_folder, write_new_run

# Modules whose classes may appear in an official snapshot; they are read as records, never imported.
MODULE_PREFIXES = ("R3GAN.", "training.networks", "torch.nn.modules.")
DTYPES = {"float16", "float32", "float64", "bfloat16"}


class PickledObject:
    """An object of an official class, as the pickle stored it: its class name and attributes."""

    def __init__(self, qualname: str) -> None:
        self.qualname, self.state = qualname, {}

    def __setstate__(self, state: Any) -> None:
        self.state = state[0] if isinstance(state, tuple) else state  # (dict, slots) or dict

    def __getattr__(self, name: str) -> Any:
        if name in ("qualname", "state"):
            raise AttributeError(name)
        try:
            return self.state[name]
        except KeyError:
            modules = self.state.get("_modules", {})
            if name in modules:
                return modules[name]
            raise AttributeError(f"{self.qualname} has no '{name}'") from None


def _record_class(qualname: str) -> type:
    """A class whose instances record what the pickle gives them (made per official class name). The
    pickle creates them with ``__new__`` alone, then hands them their state."""
    def new(cls: type, *args: Any, **kwargs: Any) -> PickledObject:
        obj = object.__new__(cls)
        PickledObject.__init__(obj, qualname)
        return obj

    return type(qualname.rsplit(".", 1)[-1], (PickledObject,), {"__new__": new, "__init__": lambda self, *a: None})


def _load_storage(data: bytes) -> Any:
    """A storage that torch pickled as bytes (``torch.storage._load_from_bytes``), read as plain weights."""
    return torch.load(io.BytesIO(data), weights_only=True)


def _persistent_record(meta: dict[str, Any]) -> PickledObject:
    """A persistent-class object (``torch_utils.persistence``): its stored state; its stored source is not run."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("a torch_utils.persistence record that is not a class instance")
    obj = PickledObject(str(meta.get("class_name")))
    obj.__setstate__(meta.get("state", {}))
    return obj


class SnapshotUnpickler(pickle.Unpickler):
    """Reads an official snapshot into records and tensors; refuses anything it does not know."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = {("collections", "OrderedDict"): OrderedDict, ("dnnlib.util", "EasyDict"): dict,
                   ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
                   ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
                   ("torch.storage", "_load_from_bytes"): _load_storage,
                   ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record}
        if (module, name) in allowed:
            return allowed[module, name]
        if module == "torch" and name in DTYPES:
            return getattr(torch, name)
        if module.startswith(MODULE_PREFIXES):
            return _record_class(f"{module}.{name}")
        raise pickle.UnpicklingError(f"'{module}.{name}' is not part of an R3GAN snapshot (networks, tensors, "
                                     f"optimizer states); refused rather than imported")


def read_snapshot(path: Path) -> dict[str, Any]:
    """The snapshot's dict, its networks as records. Errors name the file and what is wrong."""
    try:
        with open(path, "rb") as f:
            data = SnapshotUnpickler(f).load()
    except FileNotFoundError:
        raise CheckpointError(f"'{path}': no such file (an official R3GAN snapshot, e.g. cifar10.pkl)") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise CheckpointError(f"'{path}' is not a readable R3GAN snapshot: {err}") from None
    missing = [k for k in ("G", "D", "G_ema") if not isinstance(data, dict) or k not in data]
    if missing:
        raise CheckpointError(f"'{path}' has no {', '.join(missing)}: an R3GAN snapshot holds G, D and G_ema "
                              f"(a network-snapshot-*.pkl of the official training loop)")
    return data


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def flat_state(record: PickledObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """A module record's parameters and persistent buffers by their official dotted names."""
    out: dict[str, torch.Tensor] = {}
    skip = set(record.state.get("_non_persistent_buffers_set", ()))
    for key, value in record.state.get("_parameters", {}).items():
        if value is not None:
            out[prefix + key] = value.detach()
    for key, value in record.state.get("_buffers", {}).items():
        if value is not None and key not in skip:
            out[prefix + key] = value
    for key, child in record.state.get("_modules", {}).items():
        if child is not None:
            out |= flat_state(child, f"{prefix}{key}.")
    return out


def ganforge_key(official: str) -> str:
    """``Model.MainLayers.0.Layers.1.NonLinearity1.Bias`` -> ``main_layers.0.layers.1.non_linearity1.bias``."""
    return ".".join(_snake(part) for part in official.removeprefix("Model.").split("."))


def _filter_weights(kernel: torch.Tensor) -> list[int]:
    """The 1-D filter whose widened outer product is ``kernel`` (the official ``[1, 2, 1]``)."""
    row = (kernel[0] / kernel[0].min()).round().long().tolist()
    weights = [row[0]]
    for value in row[1:-1]:
        weights.append(value - weights[-1])
    if not torch.allclose(lowpass_kernel(weights), kernel.float()):
        raise CheckpointError(f"the resampling kernel {kernel.tolist()} is not a widened integer filter")
    return weights


def _stage_blocks(stage: PickledObject) -> list[PickledObject]:
    return [layer for layer in stage.Layers.state["_modules"].values() if layer.qualname.endswith("ResidualBlock")]


def model_config(G: PickledObject, D: PickledObject) -> R3ganModelConfig:
    """The architecture of an official G/D pair, read from shapes and stage dtypes."""
    stages = list(G.Model.MainLayers.state["_modules"].values())
    widths, cards, blocks, expansion, kernel = [], [], [], 2, 3
    for stage in stages:
        found = _stage_blocks(stage)
        blocks.append(len(found))
        if not found:
            raise CheckpointError("an official stage without residual blocks: not an R3GAN network")
        w1 = found[0].LinearLayer1.Layer.state["_parameters"]["weight"]
        w2 = found[0].LinearLayer2.Layer.state["_parameters"]["weight"]
        widths.append(w1.shape[1])
        expansion, kernel = w1.shape[0] // w1.shape[1], w2.shape[-1]
        cards.append(w2.shape[0] // w2.shape[1])
    g_embed = getattr(G.Model, "EmbeddingLayer", None)
    d_embed = getattr(D.Model, "EmbeddingLayer", None)
    kernel_buffer = stages[1].Layers.state["_modules"]["0"].Resampler.state["_buffers"]["Kernel"] if len(stages) > 1 \
        else lowpass_kernel([1, 2, 1])
    n = len(stages)
    return R3ganModelConfig(
        image_size=int(G.img_resolution), widths=widths, cardinalities=cards, blocks=blocks, expansion=expansion,
        kernel_size=kernel, noise_dim=int(G.z_dim), num_classes=int(G.c_dim) if int(G.c_dim) > 1 else 1,
        g_embed_dim=g_embed.state["_parameters"]["weight"].shape[0] if g_embed is not None else 0,
        d_embed_dim=d_embed.state["_parameters"]["weight"].shape[0] if d_embed is not None else 0,
        resampling_filter=_filter_weights(kernel_buffer),
        bf16_stages=[i - n for i, s in enumerate(stages) if s.state.get("DataType") == torch.bfloat16])


def load_networks(data: dict[str, Any], m: R3ganModelConfig) -> dict[str, dict[str, torch.Tensor]]:
    """G, D and G_ema as ganforge state dicts (float32), checked against the architecture."""
    out = {}
    for key, build in (("G", R3ganGenerator), ("D", R3ganDiscriminator), ("G_ema", R3ganGenerator)):
        net = build(m)
        state = {ganforge_key(k): v.float() for k, v in flat_state(data[key].Model).items()}
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(f"the snapshot's {key} does not fit the architecture read from it: "
                                  f"{str(err).splitlines()[1] if len(str(err).splitlines()) > 1 else err}") from None
        out[key] = net.state_dict()
    return out


def import_official(path: str | Path, out_dir: str | Path, preset: str = "r3gan/cifar10",
                    overrides: Sequence[str] = ()) -> Path:
    """Write a ganforge run folder from an official snapshot; returns the checkpoint path. The schedules,
    batch and data come from ``preset`` and ``overrides``; the architecture from the snapshot."""
    path = Path(path)
    data = read_snapshot(path)
    m = model_config(data["G"], data["D"])
    out = new_run_folder(out_dir)
    sets = [*(f"model.{k}={v}" for k, v in to_dict(m).items()), f"data.image_size={m.image_size}"]
    try:
        cfg: RunConfig = load_config(preset, [*sets, f"name={out.name}", f"out_dir={out.parent.as_posix()}",
                                              *overrides])
    except ConfigError as err:
        raise CheckpointError(f"{err}") from None
    if cfg.family != "r3gan":
        raise CheckpointError(f"preset '{preset}' is a '{cfg.family}' preset; use an r3gan one (r3gan/cifar10)")
    nets = load_networks(data, cfg.model)
    nimg, batch = int(data.get("cur_nimg", 0)), cfg.train.batch_size
    if nimg % batch:
        raise CheckpointError(f"the snapshot has seen {nimg} images, not a whole number of batches of "
                              f"train.batch_size={batch}; set train.batch_size to the official run's batch")
    cfg.train.ema.enabled = True  # G_ema is the run's EMA
    state: dict[str, Any] = {"family": "r3gan", "generator": "G", "config": to_dict(cfg),
                             "networks": {"G": nets["G"], "D": nets["D"]}, "ema": nets["G_ema"],
                             "imported_from": {"snapshot": str(path)}}
    if "G_opt_state" in data and "D_opt_state" in data:
        # The official optimizers list the parameters in module order, which ganforge's networks keep.
        state["optimizers"] = {"G": data["G_opt_state"], "D": data["D_opt_state"]}
    return write_new_run(out, cfg, state, nimg // batch)
