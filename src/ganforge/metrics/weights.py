"""Offline registry of the pretrained weights that metrics need.

Nothing is ever downloaded. A file is found by, in order: an explicit path, ``$GANFORGE_WEIGHTS_DIR``,
then the torch hub cache (``torch.hub.get_dir()/checkpoints``, where torch-fidelity, pytorch-fid and
torchvision would have put it). A missing file raises :class:`WeightsMissingError` naming the file,
its size, where to get it and the ``ganforge weights import`` command.

Files are checked before use: they are read with ``weights_only=True`` (a pickle that would run code
is refused), their keys and shapes must fit the network, and the SHA-256 prefix that torch hub puts
in the file name must match. A different file (other weights under the same name) is refused unless
the caller allows non-standard weights, because its numbers would not compare with anyone else's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ganforge.run.checkpoint import CheckpointError, read_weights_only


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable, or not the file its name promises."""


class WeightsMissingError(WeightsError):
    """No file for a registered weights entry was found in any lookup location."""


@dataclass(frozen=True)
class WeightsSpec:
    """One registered weights file.

    ``filenames``: names the file is known under (the first is the canonical one); the torch hub
    convention puts the first 8 hex digits of the file's SHA-256 at the end of the name.
    ``network``: builds the network the file belongs to (its keys and shapes are the reference).
    """

    name: str
    filenames: tuple[str, ...]
    size: str
    url: str
    used_by: str
    network: Callable[[], nn.Module]
    description: str

    @property
    def sha256_prefix(self) -> str:
        return Path(self.filenames[0]).stem.rsplit("-", 1)[-1]

    def check(self, state: dict) -> None:
        """Raise WeightsError unless ``state`` has exactly the network's keys and shapes."""
        with torch.device("meta"):  # shapes only: no memory, no random init
            reference = self.network().state_dict()
        problems = [f"missing key '{k}'" for k in reference if k not in state]
        problems += [f"unexpected key '{k}'" for k in state if k not in reference]
        problems += [f"'{k}' has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
                     for k, v in reference.items() if k in state and state[k].shape != v.shape]
        if problems:
            raise WeightsError(f"not {self.description}: " + "; ".join(problems[:5]))


def _inception() -> nn.Module:
    from ganforge.metrics.inception import build_inception

    return build_inception(None)


def _torchvision_weights(arch: str, filename: str, size: str, used_by: str) -> WeightsSpec:
    def network() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, arch)()

    return WeightsSpec(name=arch, filenames=(filename,), size=size, url=f"https://download.pytorch.org/models/{filename}",
                       used_by=used_by, network=network, description=f"torchvision {arch} weights")


REGISTRY: dict[str, WeightsSpec] = {}


def register_weights(spec: WeightsSpec) -> WeightsSpec:
    REGISTRY[spec.name] = spec
    return spec


register_weights(WeightsSpec(
    name="inception-fid",
    filenames=("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
    size="about 91 MiB",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
        " (or pytorch-fid's pt_inception-2015-12-05-6726825d.pth: the same tensors)",
    used_by="fid, is, kid, pr, dc (torch-fidelity's InceptionV3, converted from TensorFlow's 2015-12-05 graph)",
    network=_inception,
    description="InceptionV3 FID weights",
))
register_weights(_torchvision_weights(
    "alexnet", "alexnet-owt-7be5be79.pth", "about 233 MiB",
    "lpips (net=alex, the LPIPS default); the linear layers ship inside the lpips package"))
register_weights(_torchvision_weights(
    "inception_v3", "inception_v3_google-0cc3c7bd.pth", "about 104 MiB",
    "the official FID of reference-guided translation (evaluate --fid-net imagenet): torchvision's ImageNet Inception-v3"))
register_weights(_torchvision_weights("vgg16", "vgg16-397923af.pth", "about 528 MiB", "lpips (net=vgg)"))


def get_spec(name: str) -> WeightsSpec:
    if name not in REGISTRY:
        raise WeightsError(f"unknown weights '{name}'; registered: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def search_dirs() -> list[Path]:
    """Where installed weights are looked for, in order."""
    dirs = []
    if os.environ.get("GANFORGE_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["GANFORGE_WEIGHTS_DIR"]))
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def install_dir() -> Path:
    """Where ``ganforge weights import`` puts files: ``$GANFORGE_WEIGHTS_DIR`` or the torch hub cache."""
    return search_dirs()[0]


def import_command(spec: WeightsSpec) -> str:
    return f"ganforge weights import /path/to/{spec.filenames[0]}"


def missing_message(spec: WeightsSpec) -> str:
    looked = ", ".join(str(d) for d in search_dirs())
    return (f"{spec.name} weights not found: need {spec.filenames[0]} ({spec.size}) for {spec.used_by}.\n"
            f"  looked in: {looked}\n"
            f"  get it (on a machine with internet): {spec.url}\n"
            f"  then install it here:  {import_command(spec)}\n"
            f"  (or set GANFORGE_WEIGHTS_DIR to the folder that holds it, or pass its path explicitly)")


def find_weights(name: str, path: str | Path | None = None) -> Path:
    """The file for ``name``: ``path`` if given, else the first registered file name in the search dirs."""
    spec = get_spec(name)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WeightsMissingError(f"{spec.name} weights file '{path}' does not exist\n" + missing_message(spec))
        return path
    for folder in search_dirs():
        for filename in spec.filenames:
            if (folder / filename).is_file():
                return folder / filename
    raise WeightsMissingError(missing_message(spec))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` loaded with ``weights_only=True``; errors name the file."""
    try:
        state = read_weights_only(path, "weights file")
    except CheckpointError as err:  # the same words, under the error type the metrics raise
        raise WeightsError(str(err)) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"'{path}' does not hold a state dict of tensors")
    return state


_VERIFIED: dict[tuple[str, int, int], str] = {}


def load_weights(name: str, path: str | Path | None = None, allow_nonstandard: bool = False
                 ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Find, read and verify the weights ``name``; returns ``(state_dict, provenance)``.

    ``provenance`` (file, sha256) goes into every evaluation result, so numbers name their weights.
    """
    spec = get_spec(name)
    file = find_weights(name, path)
    state = read_state_dict(file)
    try:
        spec.check(state)
    except WeightsError as err:
        raise WeightsError(f"'{file}': {err}") from None
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:  # hashing a few hundred MB is worth doing once per process, not per call
        _VERIFIED[key] = sha256_of(file)
    digest = _VERIFIED[key]
    if not digest.startswith(spec.sha256_prefix) and not allow_nonstandard:
        raise WeightsError(
            f"'{file}' has the right shapes but is not the standard {spec.name} file: its SHA-256 starts with "
            f"{digest[:8]}, the standard one with {spec.sha256_prefix}. Metrics from other weights do not compare "
            f"with published numbers; pass --allow-nonstandard-weights (allow_nonstandard=True) to use it anyway.")
    return state, {"weights": spec.name, "file": file.name, "sha256": digest,
                   "standard": str(digest.startswith(spec.sha256_prefix)).lower()}


def import_weights(file: str | Path, name: str | None = None, dest: str | Path | None = None,
                   allow_nonstandard: bool = False) -> Path:
    """Validate ``file`` (keys, shapes, hash) and copy it where lookup finds it. Returns the new path.

    ``name`` defaults to the registry entry whose file name matches ``file``'s name.
    """
    file = Path(file)
    if not file.is_file():
        raise WeightsError(f"'{file}' does not exist")
    if name is None:
        matches = [s.name for s in REGISTRY.values() if file.name in s.filenames]
        if not matches:
            known = ", ".join(f"{s.filenames[0]} ({s.name})" for s in REGISTRY.values())
            raise WeightsError(f"'{file.name}' is not a registered weights file name; known: {known}. "
                               f"Pass --name to say which weights it holds.")
        name = matches[0]
    spec = get_spec(name)
    load_weights(name, file, allow_nonstandard=allow_nonstandard)
    folder = Path(dest) if dest is not None else install_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filenames[0]
    if target.exists() and target.resolve() == file.resolve():
        return target
    tmp = target.with_name(target.name + ".partial")
    shutil.copyfile(file, tmp)  # copy then rename: an interrupted import never leaves a half file under the real name
    os.replace(tmp, target)
    return target


def weights_status() -> list[dict[str, str]]:
    """One row per registered entry: name, file, found path or 'missing', used_by."""
    rows = []
    for spec in REGISTRY.values():
        try:
            where = str(find_weights(spec.name))
        except WeightsMissingError:
            where = "missing"
        rows.append({"name": spec.name, "file": spec.filenames[0], "size": spec.size, "found": where,
                     "used_by": spec.used_by})
    return rows
