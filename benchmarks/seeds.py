"""Quality over seeds and data sizes: trains a matrix of runs and prints its tables.

Not a test. Each experiment is a list of runs (preset, overrides, seed); every run trains with
`ganforge train` into runs/seeds/<run name>/ and is evaluated by the preset's own `eval` block (or
the one given here), so each table cell is an `eval/step-*.json` number. A run whose last
evaluation exists is not trained again, so an interrupted matrix continues where it stopped.

    .venv/bin/python benchmarks/seeds.py run seeds --jobs 2       # five seeds of each fast preset
    .venv/bin/python benchmarks/seeds.py run scarce --jobs 2      # BigGAN on 10% / 2% of Fashion-MNIST
    .venv/bin/python benchmarks/seeds.py run scarce_long --jobs 2 # ... 2% for 4,000 steps
    .venv/bin/python benchmarks/seeds.py run scarce_thirty --jobs 2  # ... 2% for 30 minutes (8,000 steps)
    .venv/bin/python benchmarks/seeds.py run emoji --jobs 2       # StarGAN v2 and BigGAN on emoji groups
    .venv/bin/python benchmarks/seeds.py run equal_time --jobs 2  # R3GAN, BigGAN, WGAN-GP at equal CPU time
    .venv/bin/python benchmarks/seeds.py run thirty --jobs 2      # each real-data preset for 30 minutes
    .venv/bin/python benchmarks/seeds.py table seeds              # the markdown tables of benchmarks/README.md

``--jobs 2`` trains two runs at once with one thread each, which on 2 cores finishes a matrix sooner
than one run at a time on two threads; the numbers do not depend on it (timing is not reported here).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

OUT_DIR = Path("runs/seeds")
AUGMENT = {  # the small-data settings compared at equal steps
    "none": [],
    "DiffAugment": ["train.diffaugment=color,translation,cutout"],
    "DiffAugment + LeCam": ["train.diffaugment=color,translation,cutout", "recipe.lecam=0.3", "recipe.lecam_start=200"],
}
ORACLE_EVAL = ["eval.metrics=[oracle]", "eval.metric=oracle_fid", "eval.n=1000"]


@dataclass(frozen=True)
class Target:
    """What a preset promises at its last step: ``metric`` above (or below) ``value``."""

    metric: str
    value: float
    higher_is_better: bool

    def met(self, got: float) -> bool:
        return got >= self.value if self.higher_is_better else got <= self.value

    def __str__(self) -> str:
        return f"{self.metric} {'>=' if self.higher_is_better else '<='} {self.value:g}"


@dataclass(frozen=True)
class Job:
    """One training run of the matrix."""

    preset: str
    seed: int
    overrides: tuple[str, ...] = ()
    tag: str = ""
    extra_eval: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return "-".join(filter(None, [self.preset.replace("/", "-"), self.tag, f"s{self.seed}"]))

    @property
    def run_dir(self) -> Path:
        return OUT_DIR / self.name


# The stated target of each preset in the five-seed table (benchmarks/README.md says how each was chosen).
TARGETS = {
    "wgan_gp/demo": Target("oracle_fid", 1.0, False),
    "wgan_gp/fashion_mnist": Target("judge_fid", 350.0, False),
    "dcgan/fashion_mnist": Target("judge_fid", 400.0, False),
    "biggan/fashion_mnist": Target("judge_class_acc", 0.65, True),
    "biggan/shapes": Target("class_acc", 0.8, True),
}
# presets without an eval block of their own are evaluated once, at their last step, on the oracle
EVAL_OF = {"wgan_gp/demo": ORACLE_EVAL}


@dataclass(frozen=True)
class Budget:
    """How a preset trains in a comparison by CPU time (equal time, 30 minutes): its steps,
    evaluation interval, and its seconds per step alone on 2 threads (`ganforge bench PRESET
    --no-peak`: --steps 10 --warmup 3 for the equal-time rows, --steps 20 --warmup 5 for the others)."""

    steps: int
    eval_every: int
    s_per_step: float


# R3GAN against the classics at equal CPU time, on shapes (oracle FID) and Fashion-MNIST (judge FID)
EQUAL_TIME = {
    "wgan_gp/demo": Budget(3000, 3000, 0.140),
    "biggan/shapes": Budget(3000, 500, 0.145),
    "r3gan/shapes": Budget(3000, 500, 0.374),
    "wgan_gp/fashion_mnist": Budget(3000, 1000, 0.127),
    "biggan/fashion_mnist": Budget(2000, 500, 0.213),
    "r3gan/fashion_mnist": Budget(1500, 500, 0.383),
}


# Each real-data preset trained for as many steps as 30 minutes alone on 2 threads buy (seed 0): the
# steps are 30 minutes over the seconds per step, rounded down to the preset's evaluation interval
THIRTY_MINUTES = {
    "wgan_gp/fashion_mnist": Budget(14000, 1000, 0.127),
    "biggan/fashion_mnist": Budget(8000, 500, 0.213),
    "biggan/emoji": Budget(8500, 500, 0.202),
    "starganv2/emoji": Budget(3500, 500, 0.510),
}


EXPERIMENTS = ("seeds", "scarce", "scarce_long", "scarce_thirty", "emoji", "equal_time", "thirty")


def experiment(name: str) -> list[Job]:
    """The runs of experiment ``name``."""
    if name == "seeds":
        return [Job(p, s, extra_eval=tuple(EVAL_OF.get(p, ()))) for p in TARGETS for s in range(5)]
    if name == "scarce":
        # 2% is 1,200 images: the evaluation compares 500 samples with 500 of them (500 more for the
        # real-vs-real floor), so its judge FID is not on the scale of the n = 1,000 rows
        return [Job("biggan/fashion_mnist", s, (f"data.fraction={f}", "train.steps=1000",
                                                *(["eval.n=500"] if f < 0.05 else []), *over),
                    tag=f"{round(f * 100)}pct-{key.replace(' + ', '-').lower()}")
                for f in (0.1, 0.02) for key, over in AUGMENT.items() for s in (0, 1)]
    if name == "scarce_long":  # the 2% rows without and with DiffAugment, four times as long
        return _two_percent_jobs(4000, (0, 1), "4000steps")
    if name == "scarce_thirty":  # ... for the steps 30 minutes buy the full-data preset
        return _two_percent_jobs(THIRTY_MINUTES["biggan/fashion_mnist"].steps, (0, 1), "30min")
    if name == "emoji":
        return [Job(p, s) for p in ("starganv2/emoji", "biggan/emoji") for s in (0, 1)]
    if name == "equal_time":
        return [job for preset in EQUAL_TIME for job in _equal_time_jobs(preset)]
    if name == "thirty":
        return [Job(p, 0, (f"train.steps={b.steps}",), tag="30min") for p, b in THIRTY_MINUTES.items()]
    raise SystemExit(f"unknown experiment {name!r}: {', '.join(EXPERIMENTS)}")


def _two_percent_jobs(steps: int, seeds: tuple[int, ...], suffix: str) -> list[Job]:
    """BigGAN on 2% of Fashion-MNIST without and with DiffAugment for ``steps`` steps."""
    return [Job("biggan/fashion_mnist", s, ("data.fraction=0.02", f"train.steps={steps}", "eval.n=500", *AUGMENT[key]),
                tag=f"2pct-{key.lower()}-{suffix}") for key in ("none", "DiffAugment") for s in seeds]


def _equal_time_jobs(preset: str) -> list[Job]:
    """Seeds 0 and 1 of ``preset`` as the equal-time comparison trains it (the five-seed runs where
    they are the same)."""
    budget = EQUAL_TIME[preset]
    if preset in TARGETS and budget.steps == _steps_of(Job(preset, 0)):
        return [Job(preset, s, extra_eval=tuple(EVAL_OF.get(preset, ()))) for s in (0, 1)]
    over = (f"train.steps={budget.steps}", f"eval.every={budget.eval_every}", "eval.n=1000")
    extra = () if _has_eval(preset) else tuple(ORACLE_EVAL)
    return [Job(preset, s, over, tag=f"{budget.steps}steps", extra_eval=extra) for s in (0, 1)]


def _has_eval(preset: str) -> bool:
    from ganforge.presets import load_config

    return bool(load_config(preset, []).eval.every)


def last_eval(job: Job) -> dict | None:
    """The last evaluation of ``job``'s run, or None when it has none."""
    records = evals(job)
    return records[max(records)] if records else None


def evals(job: Job) -> dict[int, dict]:
    """Every evaluation the run made while training, by step (not those `ganforge evaluate` added
    later, such as step-N-ema.json against other data)."""
    out = {}
    for path in (job.run_dir / "eval").glob("step-*.json"):
        if re.fullmatch(r"step-\d+", path.stem):
            record = json.loads(path.read_text())
            out[record["step"]] = record
    return out


def train(job: Job, threads: int) -> str:
    """Train ``job`` unless its run already holds an evaluation at its last step."""
    done = last_eval(job)
    steps = _steps_of(job)
    if done and done["step"] >= steps:
        return f"{job.name}: done before"
    extra = list(job.extra_eval)
    if extra and not any(o.startswith("eval.every=") for o in job.overrides):
        extra += [f"eval.every={steps}"]
    cmd = [sys.executable, "-m", "ganforge", "train", job.preset, f"name={job.name}", f"out_dir={OUT_DIR}",
           f"runtime.seed={job.seed}", f"runtime.threads={threads}", "train.progress=false", *job.overrides, *extra]
    log = OUT_DIR / f"{job.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return f"{job.name}: exit {rc} (log {log})"


def _steps_of(job: Job) -> int:
    from ganforge.presets import load_config

    return load_config(job.preset, list(job.overrides)).train.steps


def run(jobs: list[Job], parallel: int) -> None:
    threads = 1 if parallel > 1 else int(os.environ.get("GANFORGE_THREADS", "2"))
    with ThreadPoolExecutor(parallel) as pool:
        for line in pool.map(lambda j: train(j, threads), jobs):
            print(line, flush=True)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def seeds_table(jobs: list[Job]) -> None:
    print("| preset | target | " + " | ".join(f"seed {s}" for s in range(5)) + " | met |")
    print("| --- | --- | " + " | ".join("---" for _ in range(5)) + " | --- |")
    for preset, target in TARGETS.items():
        got = [last_eval(j) for j in jobs if j.preset == preset]
        if not any(got):
            continue
        values = [e["metrics"].get(target.metric) if e else None for e in got]
        met = sum(v is not None and target.met(v) for v in values)
        print(f"| {preset} | {target} | " + " | ".join(fmt(v) for v in values) +
              f" | {met} of {sum(v is not None for v in values)} |")


def seeds_cell(members: list[Job], step: int, metric: str) -> str:
    """``metric`` at ``step``: the mean over the runs that have it, each run's value in brackets."""
    values = [evals(j)[step]["metrics"].get(metric) for j in members if step in evals(j)]
    values = [v for v in values if v is not None]
    return f"{mean(values):.3g} ({', '.join(f'{v:.3g}' for v in values)})" if values else "-"


def curve_table(jobs: list[Job], metrics: list[str]) -> None:
    """One row per setting: each metric's mean over seeds at each evaluated step, seeds in brackets."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.tag or job.preset, []).append(job)
    steps = sorted({s for j in jobs for s in evals(j)})
    if not steps:
        return
    print("| setting | metric | " + " | ".join(f"step {s}" for s in steps) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in steps) + " |")
    for tag, members in groups.items():
        for metric in metrics:
            cells = [seeds_cell(members, step, metric) for step in steps]
            if any(cell != "-" for cell in cells):  # a metric this setting's evaluation does not give
                print(f"| {tag} | {metric} | " + " | ".join(cells) + " |")
    floor = next((last_eval(j).get("real_vs_real") for j in jobs if last_eval(j)), None)
    if floor:
        print("\nreal vs real: " + ", ".join(f"{m} {fmt(floor.get(m))}" for m in metrics if m in floor))


def equal_time_table(jobs: list[Job]) -> None:
    """Each preset's metric at every evaluated step with the minutes that step costs alone on 2
    threads, so rows of about the same minutes compare the families at equal CPU time."""
    print("| preset | step | minutes | oracle FID | judge FID | class accuracy |")
    print("| --- | --- | --- | --- | --- | --- |")
    for preset, budget in EQUAL_TIME.items():
        members = [j for j in jobs if j.preset == preset]
        for step in sorted({s for j in members for s in evals(j)}):
            metrics = ("oracle_fid", "judge_fid", "judge_class_acc" if "fashion" in preset else "class_acc")
            cells = [seeds_cell(members, step, metric) for metric in metrics]
            print(f"| {preset} | {step} | {step * budget.s_per_step / 60:.1f} | " + " | ".join(cells) + " |")


def thirty_minutes_table(jobs: list[Job]) -> None:
    """Each preset at its own last step and at the last evaluation within 10, 20 and 30 minutes of
    training alone on 2 threads, with the sample grid of that step."""
    print("| preset | step | minutes | judge FID | class accuracy | domain accuracy (latent / reference) | samples |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for job in jobs:
        budget = THIRTY_MINUTES[job.preset]
        records = evals(job)
        shown = {_steps_of(Job(job.preset, 0))}
        for minutes in (10, 20, 30):
            within = [step for step in records if step * budget.s_per_step <= minutes * 60]
            shown |= {max(within)} if within else set()
        for step in sorted(shown & set(records)):
            metrics = records[step]["metrics"]
            grid = job.run_dir / "samples" / f"step-{step:08d}.png"
            domains = [metrics.get(f"judge_{guide}/domain_acc") for guide in ("latent", "reference")]
            domain_cell = " / ".join(fmt(v) for v in domains) if any(v is not None for v in domains) else "-"
            print(f"| {job.preset} | {step} | {step * budget.s_per_step / 60:.1f} | {fmt(metrics.get('judge_fid'))} | "
                  f"{fmt(metrics.get('judge_class_acc'))} | {domain_cell} | {grid if grid.is_file() else '-'} |")


SCARCE_METRICS = ["judge_fid", "judge_class_acc"]
TABLE_METRICS = {"scarce": SCARCE_METRICS, "scarce_long": SCARCE_METRICS, "scarce_thirty": SCARCE_METRICS,
                 "emoji": ["judge_class_acc", "judge_fid", "judge_latent/domain_acc", "judge_reference/domain_acc", "judge_latent/diversity",
                           "judge_reference/diversity"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["run", "table"])
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (one thread each when above 1)")
    p.add_argument("--only", default="", help="comma-separated presets to keep from the experiment")
    p.add_argument("--seeds", default="", help="comma-separated seeds to keep (default: all of the experiment's)")
    args = p.parse_args()
    jobs = experiment(args.experiment)
    if args.only:
        jobs = [j for j in jobs if j.preset in args.only.split(",")]
    if args.seeds:
        jobs = [j for j in jobs if str(j.seed) in args.seeds.split(",")]
    if args.action == "run":
        run(jobs, args.jobs)
    elif args.experiment == "seeds":
        seeds_table(jobs)
        for preset in TARGETS:  # each preset's curves over its own steps
            print()
            curve_table([j for j in jobs if j.preset == preset], sorted({TARGETS[preset].metric, "judge_fid"}))
    elif args.experiment == "equal_time":
        equal_time_table(jobs)
    elif args.experiment == "thirty":
        thirty_minutes_table(jobs)
    else:
        curve_table(jobs, TABLE_METRICS[args.experiment])


if __name__ == "__main__":
    main()
