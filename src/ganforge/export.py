"""Export a generator: safetensors + config.json, TorchScript, or ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ganforge.config import to_dict
from ganforge.load import LoadedGenerator

FORMATS = ("safetensors", "torchscript", "onnx")


def export_generator(gen: LoadedGenerator, out_dir: str | Path, fmt: str, batch: int = 1) -> Path:
    """Write ``gen`` to ``out_dir`` in ``fmt``; returns the main file. The config.json goes with every format."""
    if fmt not in FORMATS:
        raise ValueError(f"export format '{fmt}' is not one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = gen.cpu().eval()
    meta = {"family": gen.family, "model": to_dict(gen.model_config), "format": fmt,
            "inputs": [list(t.shape[1:]) for t in gen.make_inputs(1, 0)]}
    (out / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    example = gen.make_inputs(batch, 0)
    if fmt == "safetensors":
        from safetensors.torch import save_file

        path = out / "model.safetensors"
        save_file({k: v.contiguous() for k, v in gen.net.state_dict().items()}, str(path),
                  metadata={"family": gen.family})
        return path
    if fmt == "torchscript":
        path = out / "generator.pt"
        with torch.no_grad():
            traced = torch.jit.trace(gen.net, example)
        traced.save(str(path))
        return path
    path = out / "generator.onnx"
    names = [f"input_{i}" for i in range(len(example))]
    try:
        torch.onnx.export(gen.net, example, str(path), input_names=names, output_names=["images"],
                          dynamic_shapes=tuple({0: torch.export.Dim("batch", min=1, max=4096)} for _ in example),
                          dynamo=True, external_data=False)
    except ImportError as err:
        raise RuntimeError(f"ONNX export needs the onnx and onnxscript packages: pip install 'ganforge[onnx]' ({err})") from None
    return path
