"""`ganforge export`: the generator as safetensors (+ config.json), TorchScript or ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_verb

EXAMPLES = """
    ganforge export runs/demo --format safetensors   # -> runs/demo/export/safetensors/model.safetensors + config.json
    ganforge export runs/demo --format torchscript --out gen_ts/
    ganforge export runs/demo --format onnx --weights raw"""


def add_parser(sub: Any) -> None:
    e = add_verb(sub, "export", "Export the generator as safetensors, TorchScript or ONNX.", EXAMPLES, run)
    e.add_argument("source", help="run folder or checkpoint .pt")
    e.add_argument("--format", choices=["safetensors", "torchscript", "onnx"], default="safetensors",
                   help="safetensors + config.json (default), TorchScript, or ONNX")
    e.add_argument("--weights", choices=["ema", "raw"], default="ema",
                   help="the EMA generator (default; raw when the run kept none) or the trained one")
    e.add_argument("--out", help="output folder (default: RUN/export/FORMAT)")


def run(args: argparse.Namespace) -> int:
    from ganforge.export import export_generator
    from ganforge.load import generator_from_opened
    from ganforge.run.store import open_run

    opened = open_run(args.source)
    out = Path(args.out) if args.out else opened.run_dir / "export" / args.format
    path = export_generator(generator_from_opened(opened, args.weights), out, args.format)
    print(f"wrote {path} (+ {path.parent / 'config.json'})")
    return 0
