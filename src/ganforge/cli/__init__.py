"""The ``ganforge`` command: one module per verb (parser and handler together); it asks the registry.

Every verb's ``--help`` has examples: the verb's own, then those each family declares."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from ganforge.cli import (bench, data, draw, evaluate, export, import_official, info, oracle, resume, serve, train,
                          weights)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, with each registered family's verbs and options."""
    from ganforge import __version__

    p = argparse.ArgumentParser(prog="ganforge", description="Train, sample, evaluate and export GANs on any machine.",
                                epilog="Run `ganforge VERB --help` for each verb's examples.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for module in (train, bench, resume):
        module.add_parser(sub)
    draw.add_parsers(sub)
    for module in (export, evaluate, serve, import_official, weights, oracle, info, data):
        module.add_parser(sub)
    return p


def verb_names() -> list[str]:
    """Every verb of the command line (the registered families' drawing verbs included)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return sorted(sub.choices)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    # key=value overrides may come after options (`train P --dry-run a=1`): argparse's subparsers
    # leave such trailing positionals unparsed, so collect them here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ganforge`` console script; returns the exit code."""
    parser = build_parser()
    args = _parse(parser, argv)
    if args.verb is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from ganforge.config import ConfigError
    from ganforge.data.images import DataError
    from ganforge.metrics.evaluate import EvalError
    from ganforge.metrics.weights import WeightsError
    from ganforge.registry import RegistryError
    from ganforge.run.checkpoint import CheckpointError
    from ganforge.runtime.distributed import PeerTimeout
    from ganforge.train.memory import DeviceMemoryError
    from ganforge.train.trainer import TrainingDiverged

    try:
        return args.handler(args)
    except (ConfigError, DataError, RegistryError, CheckpointError, FileExistsError, FileNotFoundError,
            EvalError, WeightsError, DeviceMemoryError) as err:
        print(f"ganforge {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"ganforge {args.verb}: training diverged: {err}", file=sys.stderr)
        return 3
    except PeerTimeout as err:
        print(f"ganforge {args.verb}: a process stopped answering: {err}", file=sys.stderr)
        return 4
    except ValueError as err:  # device, batch split and other validation errors raised before work
        if args.verbose:
            raise
        print(f"ganforge {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
