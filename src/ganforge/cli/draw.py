"""The drawing verbs: `ganforge sample` and every verb a family declares (translate, story).

A verb's parser holds the options every drawing shares, then one group per family that draws with
that verb. The model source says which family draws; an option of another family is an error."""

from __future__ import annotations

import argparse
from typing import Any

from ganforge.cli.common import add_family_options, add_verb, refuse_other_families_options
from ganforge.registry import SAMPLE_MODES, Drawing, drawing_command, families, get_family

SAMPLE_HELP = "Generate images from a run, checkpoint or exported model."
EXAMPLES = {"sample": """
    ganforge sample runs/demo                        # 8x8 grid of the EMA generator
    ganforge sample runs/demo --n 16 --seed 3 --weights raw --out grid.png
    ganforge sample runs/demo --mode images --n 100 --out samples/
    ganforge sample runs/demo --mode interpolate --steps 10 --rows 4
    ganforge sample exported/ --n 16                 # an exported model works too"""}


def _draw_from_noise(opened: Any, args: argparse.Namespace) -> int:
    # Imported when drawing, not when the parser is built: the grids import torchvision (over a second).
    from ganforge.sample.noise import run_noise_drawing

    return run_noise_drawing(opened, args)


# The drawing of families that declare none: `ganforge sample` from noise.
NOISE_DRAWING = Drawing("sample", "", _draw_from_noise)


def drawing_of(spec: Any) -> Drawing:
    """The family's drawing, or the generic sampling from noise."""
    return spec.drawing or NOISE_DRAWING


def add_parsers(sub: Any) -> None:
    """One parser per drawing verb that a registered family declares (`sample` always)."""
    verbs: dict[str, list[Any]] = {"sample": []}
    for spec in families():
        verbs.setdefault(drawing_of(spec).verb, []).append(spec)
    for verb, specs in verbs.items():
        declared = next((drawing_of(s).help for s in specs if drawing_of(s).help), "")
        parser = add_verb(sub, verb, SAMPLE_HELP if verb == "sample" else declared, EXAMPLES.get(verb, ""), run)
        parser.add_argument("source", help="run folder, checkpoint .pt, or export folder")
        parser.add_argument("--out", help="output file or folder (default: inside the run folder)")
        parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed draws the same images")
        parser.add_argument("--weights", choices=["ema", "raw"], default="ema",
                            help="the EMA generator (default; raw when the run kept none) or the trained one")
        parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps, ... or auto")
        if verb == "sample":
            _add_sample_arguments(parser, specs)
        if any(drawing_of(s).takes_overrides for s in specs):
            parser.add_argument("overrides", nargs="*", help="key=value for the run's config")
        add_family_options(parser, specs, lambda s: s.drawing.add_arguments if s.drawing else None)


def _add_sample_arguments(parser: argparse.ArgumentParser, specs: list[Any]) -> None:
    modes = list(SAMPLE_MODES) + [m for s in specs for m in drawing_of(s).modes if m not in SAMPLE_MODES]
    parser.add_argument("--mode", choices=modes, default="grid",
                        help="what to draw (sheet: one row per class, class-conditional models)")
    parser.add_argument("--n", type=int, default=64, help="images (grid, images)")
    parser.add_argument("--steps", type=int, default=8, help="interpolation steps per row")
    parser.add_argument("--rows", type=int, default=4, help="interpolation rows")


def run(args: argparse.Namespace) -> int:
    """Open the source, check that this verb draws with its family, and hand over to the family."""
    from ganforge.run.store import open_run

    opened = open_run(args.source)
    spec = get_family(opened.family)
    drawing = drawing_of(spec)
    if drawing.verb != args.verb:
        raise ValueError(f"'{args.source}' is a {spec.name} model ({spec.kind}); `ganforge {args.verb}` does not "
                         f"draw with it. Use `{drawing_command(spec.name, args.source)}`.")
    refuse_other_families_options(args, spec.name, args.source)
    if getattr(args, "overrides", None) and not drawing.takes_overrides:
        raise ValueError(f"key=value overrides ({', '.join(args.overrides)}) mean nothing to "
                         f"`ganforge {args.verb}` of a {spec.name} model")
    if getattr(args, "mode", None) not in (None, *SAMPLE_MODES, *drawing.modes):
        raise ValueError(f"--mode {args.mode} is not offered by {spec.name} models")
    return drawing.run(opened, args)
