"""`ganforge resume`: continue a run from its latest checkpoint, bit for bit."""

from __future__ import annotations

import argparse
from typing import Any

from ganforge.cli.common import add_verb
from ganforge.cli.train import report

EXAMPLES = """
    ganforge resume runs/demo                        # continue from the latest checkpoint
    ganforge resume runs/demo train.steps=5000       # ... and train for longer
    ganforge resume runs/demo --from step-00000400.pt   # from an earlier checkpoint (later ones are set aside)"""


def add_parser(sub: Any) -> None:
    r = add_verb(sub, "resume", "Continue a run from its latest checkpoint (a run stopped before its first "
                                "checkpoint starts at step 0 with its config).", EXAMPLES, run)
    r.add_argument("run", help="run folder (runs/NAME)")
    r.add_argument("overrides", nargs="*", help="key=value, e.g. train.steps=20000")
    r.add_argument("--from", dest="start_from", metavar="CHECKPOINT",
                   help="continue from this checkpoint of the run (a name in RUN/checkpoints or a path) instead of "
                        "the latest, e.g. when the latest is damaged; later checkpoints move to "
                        "RUN/checkpoints/set-aside")


def run(args: argparse.Namespace) -> int:
    from ganforge.train.trainer import resume

    return report(resume(args.run, args.overrides, start_from=args.start_from))
