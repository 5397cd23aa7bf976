"""`ganforge oracle`: the shapes oracle's held-out accuracy, or train it again from its recipe."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_verb

EXAMPLES = """
    ganforge oracle                                      # the packaged oracle's file and held-out accuracy
    ganforge oracle --json
    ganforge oracle --retrain --out oracle.safetensors   # train it again from its recipe (~3-4 min)"""


def add_parser(sub: Any) -> None:
    o = add_verb(sub, "oracle", "Show the shapes oracle's held-out accuracy, or train it again from its recipe.",
                 EXAMPLES, run)
    o.add_argument("--json", action="store_true", help="print the file and accuracies as JSON")
    o.add_argument("--retrain", action="store_true",
                   help="train the default recipe from scratch on this machine (~3-4 min on 2 cores) and print "
                        "its held-out accuracy; the packaged weights stay in use")
    o.add_argument("--out", help="with --retrain: save the new weights here (.safetensors, the packaged format)")


def run(args: argparse.Namespace) -> int:
    from ganforge.config import ConfigError
    from ganforge.metrics.oracle import (OracleRecipe, load_oracle, oracle_path, packaged_oracle_path, train_oracle,
                                         write_packaged_oracle)

    if args.out and not args.retrain:
        raise ConfigError("--out saves a retrained oracle; add --retrain")
    recipe = OracleRecipe()
    if args.retrain:
        oracle = train_oracle(recipe, progress=not args.json)
        path = Path(args.out) if args.out else None
        if path is not None:
            write_packaged_oracle(oracle, path)
    else:
        oracle = load_oracle(recipe)
        packaged = packaged_oracle_path(recipe)
        path = packaged if packaged.is_file() else oracle_path(recipe)
    info = {"path": str(path) if path else None, "recipe": recipe.digest(), "held_out_accuracy": oracle.accuracy}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"shapes oracle {info['recipe']}: {info['path'] or 'retrained, not saved (add --out FILE)'}")
    print("held-out accuracy on the shapes dataset (worst of the class, attributes and unconditional views at 32 and "
          "64 px):")
    for k, v in oracle.accuracy.items():
        print(f"  {k:<9} {v:.4f}")
    return 0
