"""`ganforge bench`: training speed, counted FLOP/s against the device's peak, and memory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_verb
from ganforge.presets import list_presets

EXAMPLES = """
    ganforge bench my.yaml --steps 5 --json bench.json   # any preset file; benchmarks/speed.py runs every family"""


def add_parser(sub: Any) -> None:
    b = add_verb(sub, "bench", "Measure training speed: s/step and s/iteration (as the official loop counts them), "
                               "images/s, counted FLOP/s against the device's measured peak, peak memory. Writes "
                               "nothing.", EXAMPLES, run)
    b.add_argument("preset", help="YAML file or shipped preset: " + ", ".join(list_presets()))
    b.add_argument("overrides", nargs="*", help="key=value, e.g. data.name=shapes runtime.precision=bf16")
    b.add_argument("--steps", type=int, default=3, help="timed training steps (the median is reported)")
    b.add_argument("--warmup", type=int, default=1, help="untimed steps first (the first also counts FLOPs)")
    b.add_argument("--no-peak", action="store_true", help="skip the device-peak matrix product")
    b.add_argument("--json", help="also write the numbers to this JSON file")


def run(args: argparse.Namespace) -> int:
    from ganforge.presets import load_config
    from ganforge.train.bench import bench
    from ganforge.train.trainer import Trainer

    cfg = load_config(args.preset, args.overrides)
    report = bench(Trainer(cfg, run_dir=None), steps=args.steps, warmup=args.warmup, measure_peak=not args.no_peak)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0
