"""`ganforge evaluate`: a run or checkpoint against its real data (a family may bring its own)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_family_options, add_verb, refuse_other_families_options
from ganforge.registry import families, get_family

EXAMPLES = """
    ganforge evaluate runs/demo                          # oracle metrics (shapes data), 1000 images
    ganforge evaluate runs/demo --metrics fid,is,kid,pr,dc,oracle --n 10000
    ganforge evaluate runs/x/checkpoints/step-00020000.pt --metrics fid --inception /w/pt_inception-2015-12-05-6726825d.pth
    ganforge evaluate runs/faces --metrics fid,kid data.path=/data/faces_test   # another real set"""
METRICS_HELP = ("comma-separated: fid,is,kid,pr,dc,oracle,judge,class,translation,story (default: oracle on the built-in "
                "shapes data, judge on fashion_mnist and emoji, fid,kid on any other; story models: story). judge: fashion_mnist and emoji runs, features "
                "and class read-back of a classifier trained on the data (shipped for Fashion-MNIST). class: class-conditional models on the shapes class view; translation: image-to-image "
                "models on the shapes attributes view; story: story models, --n stories. A family with its own "
                "evaluation names its metrics below")


def add_parser(sub: Any) -> None:
    v = add_verb(sub, "evaluate", "Measure a run or checkpoint: FID, IS, KID, precision/recall, density/coverage, "
                                  "oracle, and each family's own metrics.", EXAMPLES, run)
    v.add_argument("source", help="run folder or checkpoint .pt")
    v.add_argument("overrides", nargs="*", help="key=value applied to the run's config, e.g. data.path=/data/test")
    v.add_argument("--metrics", default=None, help=METRICS_HELP)
    v.add_argument("--n", type=int, default=None,
                   help="generated images (and real images per real set), default 1000 or half the data's "
                        "images when it has fewer than 2000; stories: default every "
                        "story of the data up to 1000; translation models with their own evaluation: source "
                        "images per domain (default: every validation image)")
    v.add_argument("--seed", type=int, default=0, help="seed of the generated and the real samples")
    v.add_argument("--weights", choices=["ema", "raw"], default="ema",
                   help="the EMA generator (default; raw when the run kept none) or the trained one")
    v.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    v.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps, ... or auto")
    v.add_argument("--inception", help="InceptionV3 weights file (default: registry lookup)")
    v.add_argument("--allow-nonstandard-weights", action="store_true",
                   help="use an Inception file whose hash is not the standard one (numbers will not compare)")
    v.add_argument("--out", help="JSON result path (default: RUN/eval/CHECKPOINT-WEIGHTS.json)")
    v.add_argument("--json", action="store_true", help="print the JSON result instead of a table")
    add_family_options(v, families(), lambda s: s.evaluate_command.add_arguments if s.evaluate_command else None)


def run(args: argparse.Namespace) -> int:
    from ganforge.metrics.command import evaluate_source
    from ganforge.metrics.source import open_source

    source = open_source(args.source, args.weights, args.overrides, args.device)
    spec = get_family(source.generator.family)
    refuse_other_families_options(args, spec.name, args.source)
    if spec.evaluate_command is not None:
        result = spec.evaluate_command.run(source, args)
    else:
        result = evaluate_source(source, args)
    return report_evaluation(args, source, result)


def report_evaluation(args: argparse.Namespace, source: Any, result: Any) -> int:
    """Write ``result`` as JSON (``--out`` or RUN/eval/) and print it as a table (or the JSON)."""
    from ganforge.metric_names import GENERIC
    from ganforge.metrics.evaluate import write_result

    # The weights actually evaluated: a run without EMA is evaluated raw whatever --weights asked.
    weights = source.generator.weights
    out = Path(args.out) if args.out else source.run_dir / "eval" / f"{source.checkpoint.stem}-{weights}.json"
    write_result(result, out, {"source": str(args.source), "checkpoint": source.checkpoint.name,
                               "step": source.step, "weights": weights})
    if args.json:
        print(out.read_text(encoding="utf-8"))
    else:
        print(result.table(get_family(source.generator.family).metrics or GENERIC))
        for note in getattr(result, "notes", []):
            print(note)
        print(f"wrote {out}")
    return 0
