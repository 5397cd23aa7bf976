"""The run store: what a run folder holds and the one way to open one.

A run folder (``runs/NAME``) holds ``config.yaml`` (the resolved config), ``checkpoints/`` (complete
``step-XXXXXXXX.pt`` files, the ``latest`` pointer, ``best/``), ``samples/``, ``eval/`` and
``export/``. An export folder holds ``model.safetensors`` with its ``config.json``. Every verb that
reads a model opens "a run folder, a checkpoint file or an export folder" through :func:`open_run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import yaml

from ganforge.config import to_dict
from ganforge.run.checkpoint import (CheckpointError, UnreadableFile, damaged_checkpoint_error, latest_checkpoint,
                                     load_checkpoint, save_checkpoint)
from ganforge.run.files import atomic_write_bytes

CONFIG_NAME = "config.yaml"
EXPORT_WEIGHTS = "model.safetensors"
EXPORT_META = "config.json"


class CheckpointRecord(TypedDict, total=False):
    """What a ganforge checkpoint holds (``format`` and ``version`` are added when it is written).

    An imported official checkpoint has the first five keys and ``imported_from``; a training
    checkpoint has everything a resume needs."""

    family: str  # the registered family
    generator: str  # the name, in ``networks``, of the network that draws
    config: dict[str, Any]  # the resolved RunConfig as plain data
    networks: dict[str, dict[str, Any]]  # state dicts by network name
    ema: dict[str, Any] | None  # the generator's EMA state dict
    optimizers: dict[str, dict[str, Any]]
    scalers: dict[str, dict[str, Any]]
    rng: dict[str, Any]  # every random stream, so a resume continues bit for bit
    data_position: int
    lr_scale: float
    world_size: int
    recipe_state: dict[str, Any] | None  # the recipe's own state (LeCam's anchors), if it keeps any
    threads: int  # CPU intra-op threads it was computed with (a resume keeps them: sums' order)
    imported_from: dict[str, str | None]
    step: int


def save_config(cfg: Any, path: Path) -> None:
    """Write a resolved config (a RunConfig or its plain dict) as YAML, atomically."""
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def new_run_folder(out: str | Path) -> Path:
    """``out`` as a Path, refused when it already holds checkpoints (nothing written earlier is lost)."""
    out = Path(out)
    if any((out / "checkpoints").glob("step-*.pt")):
        raise FileExistsError(f"'{out}' already holds checkpoints; pick another --out")
    return out


def write_new_run(out: str | Path, cfg: Any, record: CheckpointRecord, step: int) -> Path:
    """Create run folder ``out`` from one checkpoint ``record`` (an import) and its resolved config
    ``cfg``, stored as plain data in both places; returns the checkpoint path."""
    out = new_run_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / CONFIG_NAME)
    return save_checkpoint(out / "checkpoints", step, {**record, "config": to_dict(cfg)}, keep_last=1)


@dataclass
class OpenedRun:
    """A model source opened from disk: a checkpoint (``record``) or an export (``meta``)."""

    path: Path  # the checkpoint .pt or the model.safetensors file
    run_dir: Path  # where verbs write their outputs by default
    record: CheckpointRecord | None = None
    meta: dict[str, Any] | None = None  # an export's config.json: family and model config

    @property
    def family(self) -> str:
        return str((self.record or self.meta or {}).get("family"))

    @property
    def step(self) -> int:
        return int(self.record["step"]) if self.record is not None else 0


def open_run(path: str | Path, allow_export: bool = True) -> OpenedRun:
    """Open a run folder (its latest checkpoint), a checkpoint file, or an export folder/``.safetensors``.

    Errors name the path and what would be valid."""
    path = Path(path)
    if allow_export and path.is_dir() and (path / EXPORT_WEIGHTS).is_file():
        path = path / EXPORT_WEIGHTS
    if allow_export and path.suffix == ".safetensors":
        return _open_export(path)
    if path.is_dir():
        ckpt = latest_checkpoint(path / "checkpoints")
        if ckpt is None:
            what = "no checkpoint and no model.safetensors" if allow_export else "no checkpoint"
            raise CheckpointError(f"'{path}' has {what} (looked in '{path / 'checkpoints'}'); give a run folder, "
                                  f"a checkpoint .pt file" + (" or an export folder" if allow_export else ""))
        path = ckpt
    elif path.suffix != ".pt":
        raise CheckpointError(f"'{path}' is neither a run folder nor a checkpoint .pt file"
                              + (" nor an export folder" if allow_export else ""))
    try:
        record = load_checkpoint(path)
    except UnreadableFile as err:
        raise damaged_checkpoint_error(path, err) from None
    return OpenedRun(path, run_folder_of(path), record=record)


def _open_export(path: Path) -> OpenedRun:
    meta_path = path.with_name(EXPORT_META)
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' does not exist")
    if not meta_path.is_file():
        raise FileNotFoundError(f"'{path}' needs its {EXPORT_META} beside it (written by `ganforge export`)")
    return OpenedRun(path, path.parent, meta=json.loads(meta_path.read_text(encoding="utf-8")))


def run_folder_of(checkpoint: Path) -> Path:
    """``runs/NAME/checkpoints/[best/]step-N.pt`` -> ``runs/NAME``; any other file: its folder."""
    return next((p.parent for p in checkpoint.parents if p.name == "checkpoints"), checkpoint.parent)


def run_config_path(source: str | Path) -> Path:
    """The ``config.yaml`` of the run that ``source`` (run folder or checkpoint) belongs to."""
    source = Path(source)
    base = source if source.is_dir() else run_folder_of(source)
    path = base / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} for '{source}' (looked for '{path}')")
    return path
