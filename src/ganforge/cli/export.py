"""`ganforge export`: the generator as safetensors (+ config.json), a torch.export program, ONNX or TorchScript."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_verb
from ganforge.export import FORMATS

EXAMPLES = """
    ganforge export runs/demo --format safetensors   # -> runs/demo/export/safetensors/model.safetensors + config.json
    ganforge export runs/demo --format hub --out my-model/ --license mit   # + README.md model card
    ganforge export runs/demo --format pt2 --out gen_pt2/   # torch.export.load(...).module(), any batch size
    ganforge export runs/demo --format torchscript --out gen_ts/   # legacy: PyTorch deprecates TorchScript
    ganforge export runs/demo --format onnx --weights raw"""


def add_parser(sub: Any) -> None:
    e = add_verb(sub, "export", "Export the generator as safetensors, a torch.export program, ONNX or TorchScript.",
                 EXAMPLES, run)
    e.add_argument("source", help="run folder or checkpoint .pt")
    e.add_argument("--format", choices=list(FORMATS), default="safetensors",
                   help="safetensors + config.json (default), hub (the same with a README.md model card), "
                        "pt2 (torch.export), ONNX, or TorchScript (legacy)")
    e.add_argument("--license", default="other", help="hub: the licence the card names (default: other)")
    e.add_argument("--weights", choices=["ema", "raw"], default="ema",
                   help="the EMA generator (default; raw when the run kept none) or the trained one")
    e.add_argument("--out", help="output folder (default: RUN/export/FORMAT)")


def run(args: argparse.Namespace) -> int:
    from ganforge.export import export_generator
    from ganforge.load import generator_from_opened
    from ganforge.run.store import open_run

    opened = open_run(args.source)
    out = Path(args.out) if args.out else opened.run_dir / "export" / args.format
    path = export_generator(generator_from_opened(opened, args.weights), out, args.format, args.license)
    beside = sorted(p.name for p in path.parent.iterdir() if p != path)
    print(f"wrote {path} (+ {', '.join(beside)} beside it)")
    return 0
