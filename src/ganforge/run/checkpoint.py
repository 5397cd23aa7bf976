"""Checkpoints that survive a kill at any moment.

A checkpoint is written to a temporary file in the same folder, flushed and fsync'ed, then renamed
over its final name (atomic on POSIX and Windows); only then is the ``latest`` pointer replaced the
same way, and only then are old checkpoints pruned. A reader therefore sees either the previous
state or the new one, never half a file. Loading uses ``torch.load(weights_only=True)``: a file that
would run code is refused.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from ganforge.run.files import atomic_write_bytes, remove_stale_temp_files

FORMAT = "ganforge-checkpoint"
VERSION = 1
NAME_RE = re.compile(r"^step-(\d{8,})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, unsafe or does not fit the run."""


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Write ``state`` as ``step-XXXXXXXX.pt``, point ``latest`` at it, keep the newest ``keep_last``.

    Temporary files of writers killed earlier are removed first (one writer per run folder)."""
    remove_stale_temp_files(folder)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "step": step, **state}, buf)
    path = Path(folder) / checkpoint_name(step)
    try:
        atomic_write_bytes(path, buf.getvalue())
        atomic_write_bytes(Path(folder) / "latest", path.name.encode("utf-8"))
    except OSError as err:
        # Disk full, quota, permissions: nothing half-written is left, and the pointer still names the
        # last complete checkpoint.
        previous = latest_checkpoint(folder)
        kept = f"'{previous}' is intact and resumable" if previous is not None else "no earlier checkpoint exists"
        raise CheckpointError(f"could not write checkpoint '{path}' ({buf.getbuffer().nbytes / 2**20:.1f} MiB): "
                              f"{err.strerror or err}. {kept}; free space (or fix the folder) and run "
                              f"`ganforge resume {Path(folder).parent}`.") from err
    for old in list_checkpoints(folder)[:-keep_last]:
        try:
            old.unlink()
        except OSError:
            pass
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if NAME_RE.match(p.name)), key=checkpoint_step)


def checkpoint_step(path: Path) -> int:
    """The step in a checkpoint's file name (``step-00001500.pt`` -> 1500)."""
    match = NAME_RE.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path}: not a checkpoint name (expected one like {checkpoint_name(1500)})")
    return int(match.group(1))


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint ``latest`` names, or the newest one present if the pointer is missing or stale."""
    folder = Path(folder)
    pointer = folder / "latest"
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if NAME_RE.match(name) and (folder / name).is_file():
            return folder / name
    found = list_checkpoints(folder)
    return found[-1] if found else None


def _refused_as_unsafe(err: pickle.UnpicklingError) -> bool:
    """Whether ``torch.load(weights_only=True)`` refused the file for holding objects other than tensors
    and plain data (as opposed to bytes that are no pickle at all)."""
    detail = str(err).split("WeightsUnpickler error:", 1)[-1]  # after torch's generic preamble
    return "global" in detail.lower()  # "Unsupported global: GLOBAL os.system ..."; garbage: "Unsupported operand"


def _offending_globals(path: Path, allowed: Sequence[type]) -> str:
    """The classes and functions a refused file would import, named as the pickle names them."""
    ok = {f"{t.__module__}.{t.__qualname__}" for t in allowed}
    try:
        found = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in ok]
    except Exception:  # noqa: BLE001 (a listing that fails must not hide the refusal itself)
        found = []
    return ", ".join(found) or "unknown"


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ganforge checkpoint safely; errors name the file and what is wrong with it."""
    path = Path(path)
    state = read_weights_only(path, "checkpoint", map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a ganforge checkpoint (no '{FORMAT}' marker)")
    version = state.get("version", 0)
    if version != VERSION:
        age = "a newer" if version > VERSION else "an older"
        raise CheckpointError(f"'{path}' was written by {age} ganforge (checkpoint format {version}; this ganforge "
                              f"reads format {VERSION}): use the ganforge that wrote it, or export its generator there")
    return state


def read_weights_only(path: Path, what: str, map_location: str | torch.device = "cpu",
                      allowed: Sequence[type] = ()) -> Any:
    """A PyTorch file of tensors and plain data (our checkpoints, official releases), loaded without ever
    unpickling code. ``allowed``: harmless classes a known writer pickles besides (BigGAN-PyTorch's
    run config holds ``nn.ReLU`` modules); nothing else is let through. Errors name the file and
    ``what`` it should be, and a refused file the globals it holds."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} '{path}' does not exist")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if _refused_as_unsafe(err):
            raise CheckpointError(f"refusing to load '{path}' ({what}): it is not a readable PyTorch file of tensors "
                                  f"and plain data; it contains objects that could run code when unpickled "
                                  f"(globals: {_offending_globals(path, allowed)}). Only load files you trust, and "
                                  f"convert them to safetensors.") from None
        detail = str(err)  # plain garbage also raises UnpicklingError ("invalid load key")
    except Exception as err:
        detail = f"{type(err).__name__}: {err}"
    raise CheckpointError(f"{what} '{path}' is unreadable (truncated or corrupted?), not a readable PyTorch file: "
                          f"{detail.splitlines()[0][:200] if detail else ''}")


def read_official_state_dict(path: Path, what: str, key: str) -> dict[str, torch.Tensor]:
    """An official release's plain state dict (``weights_only``), ``module.`` prefixes of
    DataParallel saves removed; ``key`` must be in it. Errors name the file and ``what`` it should be."""
    state = read_weights_only(path, f"official {what} checkpoint")
    if isinstance(state, dict) and any(str(k).startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    if not isinstance(state, dict) or key not in state:
        raise CheckpointError(f"'{path}' is not an official {what} state dict (no '{key}' key)")
    return state


def first_load_problem(err: RuntimeError) -> str:
    """The first concrete mismatch of a ``load_state_dict`` error (its first line is only a header)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[1] if len(lines) > 1 else lines[0] if lines else "")[:300]
