"""`ganforge resume`: continue a run from its latest checkpoint, bit for bit."""

from __future__ import annotations

import argparse
from typing import Any

from ganforge.cli.common import add_verb
from ganforge.cli.train import report

EXAMPLES = """
    ganforge resume runs/demo                        # continue from the latest checkpoint
    ganforge resume runs/demo train.steps=5000       # ... and train for longer"""


def add_parser(sub: Any) -> None:
    r = add_verb(sub, "resume", "Continue a run from its latest checkpoint.", EXAMPLES, run)
    r.add_argument("run", help="run folder (runs/NAME)")
    r.add_argument("overrides", nargs="*", help="key=value, e.g. train.steps=20000")


def run(args: argparse.Namespace) -> int:
    from ganforge.train.trainer import resume

    return report(resume(args.run, args.overrides))
