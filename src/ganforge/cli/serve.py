"""`ganforge serve`: a local web page to play with a trained model, offline."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ganforge.cli.common import add_verb

EXAMPLES = """
    ganforge serve runs/demo                          # then open http://127.0.0.1:7860
    ganforge serve runs/biggan-shapes --port 8000     # class picker, truncation, class sheet
    ganforge serve my-model/ --host 0.0.0.0           # an export or hub folder; reachable from the network"""


def add_parser(sub: Any) -> None:
    s = add_verb(sub, "serve", "Serve a local web page (Gradio) to play with a trained model: offline, one "
                 "model loaded once.", EXAMPLES, run)
    s.add_argument("source", help="run folder, checkpoint .pt, or export/hub folder")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, ... (default cpu)")
    s.add_argument("--text-encoder", help="story models: a local sentence-transformers folder, so that typed "
                   "sentences can be drawn (nothing is downloaded)")
    s.add_argument("--weights", choices=["ema", "raw"], default="ema",
                   help="the EMA generator (default; raw when the run kept none) or the trained one")


def run(args: argparse.Namespace) -> int:
    from ganforge.serve.model import open_model
    from ganforge.serve.page import GradioMissing, build_page, launch

    try:
        page = build_page(open_model(args.source, args.device, args.weights, args.text_encoder))
    except GradioMissing as err:
        print(f"ganforge serve: {err}", file=sys.stderr)
        return 2
    if not port_is_free(args.host, args.port):
        print(f"ganforge serve: error: port {args.port} on {args.host} is in use (another page or program?); "
              f"pick another with --port", file=sys.stderr)
        return 2
    print(f"serving {args.source} at http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    launch(page, args.host, args.port, block=True)
    return 0


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
