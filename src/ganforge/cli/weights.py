"""`ganforge weights`: list or import the pretrained weights that metrics use (never downloaded)."""

from __future__ import annotations

import argparse
from typing import Any

from ganforge.cli.common import add_verb

EXAMPLES = """
    ganforge weights list                                # registered files and where each was found
    ganforge weights import ~/Downloads/pt_inception-2015-12-05-6726825d.pth
    GANFORGE_WEIGHTS_DIR=/shared/weights ganforge weights import alexnet-owt-7be5be79.pth"""


def add_parser(sub: Any) -> None:
    w = add_verb(sub, "weights", "List or import the pretrained weights that metrics use (never downloaded).",
                 EXAMPLES, run)
    wsub = w.add_subparsers(dest="action", metavar="ACTION", required=True)
    wsub.add_parser("list", help="registered weights, their size, and where each was found")
    wi = wsub.add_parser("import", help="validate a weights file (keys, shapes, hash) and install it")
    wi.add_argument("file", help="the downloaded weights file")
    wi.add_argument("--name", help="registry name, when the file name does not say (inception-fid, alexnet, vgg16)")
    wi.add_argument("--to", help="install folder (default: $GANFORGE_WEIGHTS_DIR, else the torch hub cache)")
    wi.add_argument("--allow-nonstandard-weights", action="store_true",
                    help="install a file whose hash is not the standard one (its numbers will not compare)")


def run(args: argparse.Namespace) -> int:
    from ganforge.metrics.weights import import_weights, weights_status

    if args.action == "import":
        path = import_weights(args.file, args.name, args.to, args.allow_nonstandard_weights)
        print(f"verified and installed: {path}")
        return 0
    for row in weights_status():
        print(f"{row['name']:<14} {row['file']:<44} {row['size']:<14} {row['found']}")
        print(f"{'':<14} used by: {row['used_by']}")
    return 0
