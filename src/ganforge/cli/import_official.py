"""`ganforge import FAMILY`: an official checkpoint into a ganforge run folder.

The choices are the registered families that declare an importer; each brings its own options."""

from __future__ import annotations

import argparse
from typing import Any

from ganforge.cli.common import add_verb
from ganforge.registry import families, get_family


def add_parser(sub: Any) -> None:
    im = add_verb(sub, "import", "Import an official checkpoint into a ganforge run folder.", "", run)
    fams = im.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for spec in families():
        if spec.importer is None:
            continue
        p = fams.add_parser(spec.name, help=f"{spec.name}: {spec.importer.help}",
                            description=f"Import an official {spec.name} checkpoint: {spec.importer.help}.")
        p.add_argument("checkpoint", help=spec.importer.help)
        p.add_argument("--out", required=True, help="run folder to create")
        p.add_argument("--preset", help="preset for the rest of the config")
        spec.importer.add_arguments(p)
        p.add_argument("overrides", nargs="*", help="key=value for the run's config, e.g. data.path=/data/celeba")


def run(args: argparse.Namespace) -> int:
    importer = get_family(args.family).importer
    path = importer.run(args)
    print(f"imported into {path}; try `{importer.next_step.format(out=args.out)}`")
    return 0
