"""Oracle quality of every family that has a shapes preset, after a fixed CPU budget.

Not a test: trains each run, evaluates it at a few points with the shapes oracle (no downloaded
weights needed) and prints a table with the real-vs-real values beside the model's, so the gap can
be judged. Each run lands in runs/quality-<family>/ (eval/*.json hold every number).

    .venv/bin/python benchmarks/quality.py                       # default budget (~12 min on 2 cores)
    .venv/bin/python benchmarks/quality.py --steps 3000 --every 1000 --n 2000
    .venv/bin/python benchmarks/quality.py --only wgan_gp/demo
    .venv/bin/python benchmarks/quality.py --only wgan_gp/demo -- runtime.precision=bf16   # overrides for every run
    .venv/bin/python benchmarks/quality.py --only wgan_gp/demo --settings fp32,bf16,bf16-penalty  # equal steps
    .venv/bin/python benchmarks/quality.py --only stargan/shapes --steps 2000 --every 1000 --n 300 \
        --settings fp32,bf16,bf16-penalty -- runtime.threads=1                 # translation metrics

With ``--settings`` each preset trains once per precision setting (same seed, data and steps) into
runs/quality-<family>-<name>-<setting>/, so the faster settings' quality can be read against fp32's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from ganforge.presets import load_config
from ganforge.train.trainer import train
from runlog import PRECISION_SETTINGS  # benchmarks/runlog.py

# family preset -> overrides that fit the CPU budget (same architecture as the preset)
RUNS = {
    "wgan_gp/demo": [],
    "dcgan/shapes": ["model.image_size=32", "data.image_size=32", "data.max_objects=1", "train.batch_size=64",
                     "train.ema.enabled=true", "train.ema.decay=0.995", "train.ema.start=300"],
    # 64 px instead of the preset's 128 (0.24 s a step in bf16 instead of 0.8); no lr decay within the budget
    "stargan/shapes": ["model.image_size=64", "data.image_size=64", "train.lr_decay_start=1000000"],
}
ORACLE_COLUMNS = ("oracle_fid", "oracle_kid", "oracle_precision", "oracle_recall", "oracle_density",
                  "oracle_coverage", "oracle_confident", "oracle_object_tv")
TRANSLATION_COLUMNS = ("target_acc", "preserve_attrs", "preserve_shape", "preserve_position")
# what each family's evaluation computes and the table shows: image-to-image families are read as
# translations of held-out inputs (every target attribute), the others as samples against real images
METRICS = {"stargan": (["translation"], TRANSLATION_COLUMNS)}
DEFAULT_METRICS = (["oracle"], ORACLE_COLUMNS)


def run(preset: str, extra: list[str], steps: int, every: int, n: int, out_dir: str, setting: str = "") -> dict:
    """Train ``preset`` (under precision ``setting`` when given) and collect its evaluations."""
    name = "quality-" + preset.replace("/", "-") + (f"-{setting}" if setting else "")
    shutil.rmtree(Path(out_dir) / name, ignore_errors=True)
    metrics, columns = metrics_of(preset)
    # the setting's overrides come last, so that they win over the preset's and the command line's
    cfg = load_config(preset, [f"name={name}", f"out_dir={out_dir}", f"train.steps={steps}",
                               f"train.ckpt_every={every}", f"eval.every={every}", f"eval.n={n}",
                               f"eval.metrics=[{','.join(metrics)}]", f"eval.metric={columns[0]}",
                               "train.progress=false", *extra,
                               *PRECISION_SETTINGS.get(setting, [])])
    t0 = time.perf_counter()
    result = train(cfg)
    minutes = (time.perf_counter() - t0) / 60
    evals = [json.loads(p.read_text()) for p in sorted((result.run_dir / "eval").glob("step-*.json"))]
    return {"points": [(str(e["step"]), e["metrics"]) for e in evals], "real": evals[-1].get("real_vs_real", {}),
            "minutes": minutes, "columns": columns}


def metrics_of(preset: str) -> tuple[list[str], tuple[str, ...]]:
    """The metric groups a preset is evaluated with and the columns its table shows."""
    return METRICS.get(preset.split("/")[0], DEFAULT_METRICS)


def row(*cells: str) -> str:
    return " | ".join(cells)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--only", nargs="*", default=None, help="presets to run (default: all)")
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--settings", default="", help="comma-separated precision settings to train each preset under, "
                   f"of {', '.join(PRECISION_SETTINGS)} (default: the preset's own precision, once)")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides for every run (after --)")
    args = p.parse_args()
    settings = args.settings.split(",") if args.settings else [""]
    unknown = [s for s in settings if s and s not in PRECISION_SETTINGS]
    if unknown:
        p.error(f"--settings: {', '.join(unknown)} not among {', '.join(PRECISION_SETTINGS)}")
    results = {f"{preset} ({setting})" if setting else preset:
               run(preset, [*extra, *args.overrides], args.steps, args.every, args.n, args.out_dir, setting)
               for preset, extra in RUNS.items() if not args.only or preset in args.only for setting in settings}
    for columns in dict.fromkeys(res["columns"] for res in results.values()):  # one table per kind of metrics
        header = ["run", "step"] + [c.replace("oracle_", "") for c in columns]
        print(row(*header))
        print(row(*("---" for _ in header)))
        for key, res in results.items():
            if res["columns"] != columns:
                continue
            # the real-vs-real row does not depend on the step: one per run, after its points (translation
            # metrics have none: they read the generator's outputs against its own inputs)
            real = [("real vs real", res["real"])] if res["real"] else []
            for step, values in [*res["points"], *real]:
                print(row(key, step, *(f"{values.get(c, float('nan')):.4g}" for c in columns)))
        print()
    for preset, res in results.items():
        print(f"{preset}: {args.steps} steps in {res['minutes']:.1f} min (training + evaluations)")


if __name__ == "__main__":
    main()
