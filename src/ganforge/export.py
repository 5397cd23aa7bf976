"""Export a generator: safetensors + config.json, a torch.export program, ONNX, or TorchScript (legacy).

``pt2`` is PyTorch's successor to TorchScript: an ExportedProgram (``torch.export.save``) whose batch
size is dynamic; ``torch.export.load(path).module()`` runs it without ganforge. TorchScript stays for
programs that still read it; PyTorch deprecates ``torch.jit.trace``, and its warning is not repeated
here (the README says so once)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from ganforge.config import to_dict
from ganforge.load import LoadedGenerator

FORMATS = ("safetensors", "hub", "pt2", "onnx", "torchscript")


def export_generator(gen: LoadedGenerator, out_dir: str | Path, fmt: str, license_id: str = "other") -> Path:
    """Write ``gen`` to ``out_dir`` in ``fmt``; returns the main file. The config.json goes with every
    format; ``hub`` adds a model card (``license_id`` in its header) to the safetensors."""
    if fmt not in FORMATS:
        raise ValueError(f"export format '{fmt}' is not one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = gen.cpu().eval()
    meta = {"family": gen.family, "model": to_dict(gen.model_config), "format": fmt,
            "inputs": [list(t.shape[1:]) for t in gen.make_inputs(1, 0)]}
    (out / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if fmt == "hub":
        return _write_hub(gen, out, license_id)
    writers = {"safetensors": _write_safetensors, "pt2": _write_program, "onnx": _write_onnx,
               "torchscript": _write_torchscript}
    return writers[fmt](gen, out)


def _write_hub(gen: LoadedGenerator, out: Path, license_id: str) -> Path:
    """The Hub's layout: model.safetensors, config.json and a README.md model card from the run's files."""
    from ganforge.model_card import card_facts, write_card
    from ganforge.registry import get_family

    weights = _write_safetensors(gen, out)
    if gen.opened is not None:
        write_card(out, card_facts(gen.family, get_family(gen.family).kind, gen.opened, gen.weights), license_id)
    return weights


def _batch_dims(example: tuple[torch.Tensor, ...]) -> tuple[dict[int, Any], ...]:
    """Dim 0 of every input is the batch, free between 1 and 4096 (and the same for all inputs)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    return tuple({0: batch} for _ in example)


def _write_safetensors(gen: LoadedGenerator, out: Path) -> Path:
    from safetensors.torch import save_file

    path = out / "model.safetensors"
    save_file({k: v.contiguous() for k, v in gen.net.state_dict().items()}, str(path), metadata={"family": gen.family})
    return path


def _write_program(gen: LoadedGenerator, out: Path) -> Path:
    """``torch.export`` of the generator's forward; traced on a batch of 2, because a traced size of 1
    would be taken as a constant."""
    example = gen.make_inputs(2, 0)
    with torch.no_grad():
        program = torch.export.export(gen.net, example, dynamic_shapes=_batch_dims(example))
    path = out / "generator.pt2"
    torch.export.save(program, str(path))
    return path


def _write_torchscript(gen: LoadedGenerator, out: Path) -> Path:
    path = out / "generator.pt"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation, said once in the README
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # shape checks inside norm layers become constants: right for the traced image size, the only one
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(gen.net, gen.make_inputs(1, 0))
        traced.save(str(path))
    return path


def _write_onnx(gen: LoadedGenerator, out: Path) -> Path:
    example = gen.make_inputs(1, 0)
    path = out / "generator.onnx"
    names = [f"input_{i}" for i in range(len(example))]
    try:
        with warnings.catch_warnings():  # every input shares the one batch axis, which is what we ask for
            warnings.filterwarnings("ignore", message="# The axis name: batch will not be used")
            torch.onnx.export(gen.net, example, str(path), input_names=names, output_names=["images"],
                              dynamic_shapes=_batch_dims(example), dynamo=True, external_data=False)
    except ImportError as err:
        raise RuntimeError(f"ONNX export needs the onnx and onnxscript packages: pip install 'ganforge[onnx]' ({err})") from None
    return path
