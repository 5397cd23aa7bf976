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
SET_ASIDE = "set-aside"  # later checkpoints of a run resumed from an earlier one


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, unsafe or does not fit the run."""


class UnreadableFile(CheckpointError):
    """The file's bytes cannot be read as a PyTorch file: cut short or damaged."""


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
        kept = (f"'{previous}' is intact and resumable" if previous is not None
                else "no earlier checkpoint exists (the resume starts again at step 0)")
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


def intact_before(path: Path) -> Path | None:
    """The newest checkpoint older than ``path`` in its folder that loads, or None."""
    path = Path(path)
    older = [p for p in list_checkpoints(path.parent) if checkpoint_step(p) < _step_or_max(path)]
    for candidate in reversed(older):
        try:
            load_checkpoint(candidate)
            return candidate
        except CheckpointError:
            continue
    return None


def _step_or_max(path: Path) -> int:
    return checkpoint_step(path) if NAME_RE.match(path.name) else 2 ** 62


def damaged_checkpoint_error(path: Path, err: CheckpointError) -> CheckpointError:
    """``err`` (``path`` cannot be read) with the way out: the newest intact checkpoint before it and the
    commands that use it."""
    path = Path(path)
    intact = intact_before(path)
    run = path.parent.parent
    if intact is None:
        return CheckpointError(f"{err}. No earlier checkpoint of this run is intact; start again with "
                               f"`ganforge train {run / 'config.yaml'} name=NEW_NAME`")
    return CheckpointError(f"{err}. The checkpoint before it, '{intact}', is intact: "
                           f"`ganforge resume {run} --from {intact.name}` continues from it (later checkpoints are "
                           f"moved to '{path.parent / SET_ASIDE}', nothing is deleted), and the other verbs take "
                           f"that file in place of the run folder")


def set_aside_after(folder: Path, step: int) -> list[Path]:
    """Move the checkpoints of steps after ``step`` into ``folder/set-aside`` and point ``latest`` at
    ``step``'s, so that a run resumed from an earlier checkpoint neither prunes its new checkpoints in
    favour of the old later ones nor returns to them. Returns the moved files' new paths."""
    folder = Path(folder)
    later = [p for p in list_checkpoints(folder) if checkpoint_step(p) > step]
    moved = []
    if later:
        (folder / SET_ASIDE).mkdir(exist_ok=True)
    for p in later:
        target = folder / SET_ASIDE / p.name
        n = 1
        while target.exists():  # set aside before: keep both
            target, n = folder / SET_ASIDE / f"{p.stem}.{n}{p.suffix}", n + 1
        p.replace(target)
        moved.append(target)
    atomic_write_bytes(folder / "latest", checkpoint_name(step).encode("utf-8"))
    return moved


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
        reason = why_unreadable(path, err)
    except Exception as err:
        reason = why_unreadable(path, err)
    raise UnreadableFile(f"{what} '{path}' is unreadable: {reason}")


def why_unreadable(path: Path, err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` could not read ``path``, in our words.

    PyTorch's own messages suggest ``weights_only=False``, which would run whatever code the file
    holds; this names the problem instead (a file cut short, bytes that are no PyTorch file)."""
    text = str(err)
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    if "central directory" in text or "PytorchStreamReader" in text or isinstance(err, EOFError):
        return (f"the file is incomplete ({size:,} bytes; a copy or a write that did not finish), or damaged. "
                f"Copy it again from its source, or use an earlier file")
    if "WeightsUnpickler error:" in text:
        detail = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0].split())
        return f"its bytes are not a PyTorch file of tensors ({detail.rstrip('.')}); it is damaged or another format"
    return (f"its bytes are not a PyTorch file ({type(err).__name__}: {text.splitlines()[0] if text else ''}); "
            f"it is damaged or another format")


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
