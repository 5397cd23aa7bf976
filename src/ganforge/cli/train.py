"""`ganforge train`: a new run from a preset, or a dry run that builds and steps once."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_verb
from ganforge.presets import list_presets

EXAMPLES = """
    ganforge train my.yaml data.path=/data/anime name=anime64   # any preset file"""


def add_parser(sub: Any) -> None:
    t = add_verb(sub, "train", "Train a new run from a preset (file or shipped family/name).", EXAMPLES, run)
    t.add_argument("preset", help="YAML file or shipped preset: " + ", ".join(list_presets()))
    t.add_argument("overrides", nargs="*", help="key=value with dotted keys, e.g. train.steps=500")
    t.add_argument("--dry-run", action="store_true", help="build, run one step of every phase, report, write nothing")


def run(args: argparse.Namespace) -> int:
    from ganforge.presets import load_config
    from ganforge.train.trainer import Trainer, train

    cfg = load_config(args.preset, args.overrides)
    if args.dry_run:
        print_dry_run(Trainer(cfg, run_dir=None).dry_run())
        return 0
    return report(train(cfg))


def report(result: Any) -> int:
    """Print where a finished or interrupted run left its files; the exit code (130: interrupted by
    Ctrl-C, the shell's code for SIGINT; 0: finished, or stopped by SIGTERM with a checkpoint written)."""
    from ganforge.runtime.distributed import env_info, shutdown

    shutdown()
    if not env_info().is_main:
        return 0
    print(f"{result.status} at step {result.step}: run folder {result.run_dir}")
    if result.checkpoint:
        print(f"  checkpoint:  {result.checkpoint}")
    sample = latest_sample(result.run_dir, result.step) if result.run_dir else None
    if sample is not None:
        print(f"  samples:     {sample}")
    if result.run_dir and (result.run_dir / "tensorboard").is_dir():
        print(f"  curves:      tensorboard --logdir {result.run_dir / 'tensorboard'}   (then open http://localhost:6006)")
    if result.status in ("interrupted", "preempted"):
        print(f"  continue with: ganforge resume {result.run_dir}")
    return 130 if result.status == "interrupted" else 0


def latest_sample(run_dir: Path, step: int) -> Path | None:
    """The newest sample grid of a step the run has reached (not one left by steps it went back on)."""
    def grid_step(path: Path) -> int:
        match = re.search(r"step-(\d+)\.png$", path.name)
        return int(match.group(1)) if match else -1

    grids = [p for p in (run_dir / "samples").glob("step-*.png") if 0 <= grid_step(p) <= step]
    return max(grids, key=grid_step, default=None)


def print_dry_run(report: dict) -> None:
    """The dry run's parameters, phases, module output shapes, losses, time and memory."""
    mib = report["peak_memory_bytes"]
    print(f"dry run on {report['device']} ({report['precision']}), {report['world_size']} process(es), "
          f"micro-batch {report['local_batch']} x accumulation {report['grad_accum']}")
    for name, count in report["parameters"].items():
        print(f"  {name}: {count:,} parameters" + (" (compiled)" if name in report["compiled"] else ""))
    print("  phases: " + ", ".join(f"{n} (updates {net}, x{rep}, every {ev})" for n, net, rep, ev in report["phases"]))
    for net, rows in report["shapes"].items():
        print(f"  {net} blocks (output shapes, batch first):")
        width = max([len(mod) for mod, _, _ in rows] + [14])
        for mod, kind, shape in rows:
            print(f"    {mod:<{width}} {kind:<22} {shape}")
    print("  losses: " + ", ".join(f"{k}={v:.4g}" for k, v in report["losses"].items()))
    print(f"  training step: {report['step_s']:.3f} s (every phase as often as training runs it)")
    print(f"  warm-up step:  {report['first_step_s']:.3f} s (one update per phase, first calls included: not "
          f"comparable with the line above)")
    print(f"  peak memory: {mib / 2**20:.0f} MiB" if mib else "  peak memory: not measurable here")
