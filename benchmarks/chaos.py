"""Chaos: real training runs killed, starved of disk, poisoned with NaN and preempted.

Not a unit test (it takes minutes). For every family with a shapes preset it drives small real runs
(deterministic CPU mode, a checkpoint every step so that kills often land inside a write) and prints a
table of what happened:

- ``kill -9``: the run is killed (half the kills at random moments, half as soon as a checkpoint
  write has begun), resumed each time from its latest checkpoint until it finishes. Every checkpoint on disk must load after every kill, each resume must start at
  the latest complete checkpoint, and the final weights must equal an uninterrupted run's.
- ``disk full``: the run folder lives on a small tmpfs (or, without permission to mount, under a
  file-size limit): the first checkpoint fits, a later one does not. The run must stop with an error
  that says what happened, the previous checkpoint must still load, and after moving the run to a
  roomy disk ``resume`` must finish it with the uninterrupted run's weights.
- ``NaN``: a loss returns NaN at step k. With ``train.on_nan=stop`` the error names the phase and the
  step and the last checkpoint loads; with ``rollback`` the run reloads it, halves the learning rates
  and finishes.
- ``SIGTERM``: a scheduler's preemption: exit code 0, a checkpoint of the step reached, and resuming
  gives the uninterrupted run's weights.
- ``disk full before the first checkpoint``: the error says that no earlier checkpoint exists and
  names ``ganforge resume RUN``; followed, that command trains from step 0 to the uninterrupted
  run's weights.
- ``corrupt latest checkpoint``: the latest checkpoint is cut in half. ``resume`` must refuse it,
  naming the intact one before it and ``--from``; ``resume --from`` that one must finish with the
  uninterrupted run's weights and keep the damaged file in ``checkpoints/set-aside``.
- ``Ctrl-C to the process group``: SIGINT to the run and its data workers at once, as a terminal
  sends it: exit code 130, the stop announced once, and resuming gives the uninterrupted weights.

Every registered family with a shapes preset is driven; ``SMALL`` shrinks the networks of the
families it knows (a family added later runs at its preset's size).

    .venv/bin/python benchmarks/chaos.py                  # every family, 20 kills each (~25 min)
    .venv/bin/python benchmarks/chaos.py --kills 5 --only wgan_gp
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ganforge.presets import load_config  # noqa: E402
from ganforge.run.checkpoint import (CheckpointError, latest_checkpoint, list_checkpoints,  # noqa: E402
                                       load_checkpoint)
from ganforge.train.trainer import Trainer, TrainingDiverged, prepare_run_dir  # noqa: E402

COMMON = {"data.num_workers": 0, "train.ckpt_every": 1, "train.keep_last": 3, "train.log_every": 1,
          "train.sample_every": 1000, "train.progress": False, "train.tensorboard": False,
          "runtime.deterministic": True, "runtime.device": "cpu", "runtime.threads": 1, "eval.every": 0}
SMALL = {  # per family: small networks and 40 steps, so that 20 kills take a minute or two
    "wgan_gp": {"model.image_size": 32, "data.image_size": 32, "model.z_dim": 16, "model.g_channels": 16,
                "model.d_channels": 16, "data.length": 256, "train.batch_size": 16},
    "dcgan": {"model.image_size": 32, "data.image_size": 32, "model.z_dim": 16, "model.g_channels": 16,
              "model.d_channels": 16, "data.length": 256, "train.batch_size": 16},
    "biggan": {"model.g_ch": 8, "model.d_ch": 8, "data.length": 256, "train.batch_size": 16,
               "runtime.precision": "fp32", "runtime.channels_last": False},
    "stargan": {"model.g_conv_dim": 8, "model.d_conv_dim": 8, "model.g_repeat_num": 1, "model.image_size": 32,
                "data.image_size": 32, "data.length": 256, "train.batch_size": 8, "recipe.sample_images": 2},
    "starganv2": {"model.image_size": 16, "data.image_size": 16, "model.base_dim": 8, "model.max_conv_dim": 16,
                  "data.length": 256, "train.batch_size": 4, "recipe.sample_images": 3,
                  "runtime.precision": "fp32"},
    "storygan": {"model.gf_dim": 4, "model.df_dim": 4, "data.length": 64, "train.batch_size": 4,
                 "recipe.image_batch_size": 6, "recipe.sample_stories": 2, "runtime.precision": "fp32"},
}


def shapes_families() -> dict[str, tuple[str, dict[str, Any]]]:
    """family -> (its shapes preset, the settings of its chaos runs), for every registered family."""
    from ganforge.presets import list_presets

    return {name.split("/")[0]: (name, {**SMALL.get(name.split("/")[0], {}), "train.steps": 40})
            for name in list_presets() if name.endswith("/shapes")}


FAMILIES = shapes_families()


def overrides(family: str, out_dir: Path, name: str, **extra: Any) -> list[str]:
    values = {**COMMON, **FAMILIES[family][1], "out_dir": out_dir.as_posix(), "name": name, **extra}
    return [f"{k}={v}" for k, v in values.items()]


def cli(args: list[str], limit_bytes: int | None = None, new_session: bool = False) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")

    def limit() -> None:  # a per-file size quota; the write then fails with EFBIG instead of a signal
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen([sys.executable, "-m", "ganforge", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit if limit_bytes else None,
                            start_new_session=new_session)


def weights_equal(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(latest_checkpoint(a / "checkpoints")), load_checkpoint(latest_checkpoint(b / "checkpoints"))
    same = sa["step"] == sb["step"]
    for net in sa["networks"]:
        same &= all(torch.equal(v, sb["networks"][net][k]) for k, v in sa["networks"][net].items())
    if sa.get("ema") is not None:
        same &= all(torch.equal(v, sb["ema"][k]) for k, v in sa["ema"].items())
    return bool(same)


def unreadable(run: Path) -> tuple[int, int]:
    """(unreadable checkpoints, their bytes) in a run folder."""
    bad = nbytes = 0
    for path in list_checkpoints(run / "checkpoints"):
        try:
            load_checkpoint(path)
        except CheckpointError:
            bad, nbytes = bad + 1, nbytes + path.stat().st_size
    return bad, nbytes


def reference(family: str, root: Path) -> tuple[Path, float]:
    """The uninterrupted run, and its wall time (start-up included)."""
    t0 = time.perf_counter()
    proc = cli(["train", FAMILIES[family][0], *overrides(family, root, "reference")])
    _, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{family}: the uninterrupted run failed:\n{err[-2000:]}")
    return root / "reference", time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# scenarios: each returns a row of the table


def _logged_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    steps = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        with contextlib.suppress(ValueError):
            steps.append(int(json.loads(line)["step"]))
    return steps


def kill_9(family: str, root: Path, ref: Path, kills: int, rng: random.Random, duration: float) -> dict[str, Any]:
    """Kill at uniform moments of a run's expected life and resume, ``kills`` times; then let it finish."""
    run = root / "killed"
    train_args = ["train", FAMILIES[family][0], *overrides(family, root, "killed")]
    killed = resumes = in_write = bad = lost = wrong_start = 0
    args = train_args
    while True:
        latest = latest_checkpoint(run / "checkpoints")
        start = load_checkpoint(latest)["step"] if latest is not None else 0
        logged_before = len(_logged_steps(run))
        temp_before = set((run / "checkpoints").glob(".*.tmp-*"))
        proc = cli(args)
        last = killed >= kills
        if last:
            _, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"{family}: the last resume failed:\n{err[-2000:]}")
        else:
            if killed % 2:  # every other kill waits for a checkpoint write to begin and lands inside it
                deadline = time.time() + duration
                while proc.poll() is None and time.time() < deadline and \
                        not any((run / "checkpoints").glob(".*.tmp-*")):
                    time.sleep(0.0005)
            else:  # the others at a uniform moment of the run's expected life
                time.sleep(rng.uniform(0.2, 1.0) * duration)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.communicate()
            print(f"  {family}: kill {killed}/{kills}", end="\r", flush=True)
        if args is not train_args:
            resumes += 1
            new = _logged_steps(run)[logged_before:]
            wrong_start += bool(new) and new[0] != start + 1  # it must continue after the latest checkpoint
        in_write += bool(set((run / "checkpoints").glob(".*.tmp-*")) - temp_before)  # killed inside a write
        b, nb = unreadable(run)
        bad, lost = bad + b, lost + nb
        if last:
            break
        if proc.returncode == 0 or latest_checkpoint(run / "checkpoints") is None:
            # finished before the kill, or killed before the first checkpoint: start over
            shutil.rmtree(run, ignore_errors=True)
            args = train_args
        else:
            args = ["resume", str(run)]
    equal = weights_equal(run, ref)
    return {"scenario": "kill -9", "events": f"{killed} kills ({in_write} inside a checkpoint write), "
                                             f"{wrong_start} resumes from a wrong step",
            "resumed": resumes, "unreadable": bad, "bytes_lost": lost, "equal": equal,
            "ok": bad == 0 and wrong_start == 0 and equal}


@contextlib.contextmanager
def small_disk(nbytes: int) -> Iterator[tuple[Path, str]]:
    """A folder on a tmpfs of ``nbytes`` (root); else a normal folder and a per-file size limit."""
    folder = Path(tempfile.mkdtemp(prefix="ganforge-chaos-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={nbytes}", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    try:
        yield folder, "tmpfs" if mounted else "RLIMIT_FSIZE"
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def disk_full(family: str, root: Path, ref: Path) -> dict[str, Any]:
    ckpt = latest_checkpoint(ref / "checkpoints").stat().st_size
    steps = int(FAMILIES[family][1]["train.steps"])
    # room for one checkpoint and logs, not for a second one beside it
    with small_disk(int(ckpt * 1.6) + 256 * 1024) as (disk, how):
        args = ["train", FAMILIES[family][0], *overrides(family, disk, "full", **{"train.ckpt_every": 3})]
        proc = cli(args, limit_bytes=int(ckpt * 0.99) if how == "RLIMIT_FSIZE" else None)
        if how == "RLIMIT_FSIZE":
            # with a per-file limit no checkpoint fits: first write a good one without the limit
            proc.communicate()
            shutil.rmtree(disk / "full", ignore_errors=True)
            first = cli(["train", FAMILIES[family][0], *overrides(family, disk, "full", **{"train.steps": 3,
                                                                                          "train.ckpt_every": 3})])
            first.communicate()
            proc = cli(["resume", str(disk / "full"), f"train.steps={steps}"], limit_bytes=int(ckpt * 0.99))
        _, err = proc.communicate(timeout=900)
        message = next((line for line in err.splitlines() if "could not write checkpoint" in line), "")
        kept = latest_checkpoint(disk / "full" / "checkpoints")
        readable = kept is not None and unreadable(disk / "full") == (0, 0)
        safe = root / "full"
        shutil.copytree(disk / "full", safe)
    resumed = cli(["resume", str(safe)])
    _, rerr = resumed.communicate(timeout=900)
    equal = resumed.returncode == 0 and weights_equal(safe, ref)
    ok = proc.returncode == 2 and bool(message) and "intact" in message and readable and equal
    return {"scenario": f"disk full ({how})", "events": f"exit {proc.returncode}: {message[:90]}",
            "resumed": 1, "unreadable": 0 if readable else 1, "bytes_lost": 0 if readable else ckpt,
            "equal": equal, "ok": ok}


def nan(family: str, root: Path, mode: str, at: int = 7) -> dict[str, Any]:
    cfg = load_config(FAMILIES[family][0], overrides(family, root, f"nan-{mode}", **{"train.on_nan": mode,
                                                                                     "train.steps": 12}))
    trainer = Trainer(cfg, prepare_run_dir(cfg))
    phase = trainer.recipe.phases[-1]
    original, fired = phase.loss, []

    def poisoned(batch):
        loss, parts = original(batch)
        if trainer.step == at and not fired:
            fired.append(phase.name)
            return loss * float("nan"), parts
        return loss, parts

    phase.loss = poisoned
    message, finished = "", False
    try:
        finished = trainer.fit().status == "finished"
    except TrainingDiverged as err:
        message = str(err)
    run = root / f"nan-{mode}"
    readable = unreadable(run) == (0, 0) and latest_checkpoint(run / "checkpoints") is not None
    last = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    if mode == "stop":
        ok = f"phase '{phase.name}'" in message and f"step {at}" in message and readable and last["step"] == at
        events = message[:90]
    else:
        ok = finished and readable and last["step"] == 12 and last["lr_scale"] == 0.5 and trainer.rollbacks == 1
        events = f"rolled back {trainer.rollbacks}x, lr x{last['lr_scale']:g}, finished at step {last['step']}"
    return {"scenario": f"NaN at step {at} ({mode})", "events": events, "resumed": trainer.rollbacks,
            "unreadable": 0 if readable else 1, "bytes_lost": 0, "equal": "-", "ok": ok}


def sigterm(family: str, root: Path, ref: Path, duration: float) -> dict[str, Any]:
    run = root / "term"
    shutil.rmtree(run, ignore_errors=True)
    proc = cli(["train", FAMILIES[family][0], *overrides(family, root, "term", **{"train.ckpt_every": 1000})])
    deadline = time.time() + duration
    while len(_logged_steps(run)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # preempt once training is under way (3 steps logged)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    ckpt = latest_checkpoint(run / "checkpoints")
    step = load_checkpoint(ckpt)["step"] if ckpt else -1
    resumed = cli(["resume", str(run), "train.ckpt_every=1"])
    resumed.communicate(timeout=900)
    equal = resumed.returncode == 0 and weights_equal(run, ref)
    ok = proc.returncode == 0 and 0 < step < int(FAMILIES[family][1]["train.steps"]) and equal
    return {"scenario": "SIGTERM", "events": f"exit {proc.returncode}, checkpoint at step {step}", "resumed": 1,
            "unreadable": unreadable(run)[0], "bytes_lost": 0, "equal": equal, "ok": ok}


def disk_full_first(family: str, root: Path, ref: Path) -> dict[str, Any]:
    """No room even for the first checkpoint; then the advice in the error, followed on a roomy disk."""
    ckpt = latest_checkpoint(ref / "checkpoints").stat().st_size
    with small_disk(int(ckpt * 0.5) + 128 * 1024) as (disk, how):
        proc = cli(["train", FAMILIES[family][0], *overrides(family, disk, "first", **{"train.ckpt_every": 3})],
                   limit_bytes=int(ckpt * 0.5) if how == "RLIMIT_FSIZE" else None)
        _, err = proc.communicate(timeout=900)
        safe = root / "first"
        shutil.copytree(disk / "first", safe)
    advice = f"ganforge resume {disk / 'first'}"
    told = "no earlier checkpoint exists" in err and advice in err
    resumed = cli(["resume", str(safe)])
    _, rerr = resumed.communicate(timeout=900)
    equal = resumed.returncode == 0 and weights_equal(safe, ref)
    ok = proc.returncode == 2 and told and "starts at step 0" in rerr and equal
    return {"scenario": f"disk full before the first checkpoint ({how})",
            "events": f"exit {proc.returncode}, advice {'given' if told else 'MISSING'}, resume from step 0",
            "resumed": 1, "unreadable": 0, "bytes_lost": 0, "equal": equal, "ok": ok}


def corrupt_latest(family: str, root: Path, ref: Path) -> dict[str, Any]:
    """The latest checkpoint cut in half: refused with the intact one named; resume --from it."""
    steps = int(FAMILIES[family][1]["train.steps"])
    half = steps // 2
    run = root / "corrupt"
    first = cli(["train", FAMILIES[family][0], *overrides(family, root, "corrupt", **{"train.steps": half + 2,
                                                                                       "train.ckpt_every": 2})])
    first.communicate(timeout=900)
    latest = latest_checkpoint(run / "checkpoints")
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    refused = cli(["resume", str(run), f"train.steps={steps}"])
    _, err = refused.communicate(timeout=900)
    intact = list_checkpoints(run / "checkpoints")[-2].name
    named = f"--from {intact}" in err and "weights_only" not in err
    resumed = cli(["resume", str(run), f"train.steps={steps}", "--from", intact])
    resumed.communicate(timeout=900)
    kept = (run / "checkpoints" / "set-aside" / latest.name).is_file()
    equal = resumed.returncode == 0 and weights_equal(run, ref)
    ok = refused.returncode == 2 and named and kept and equal
    return {"scenario": "corrupt latest checkpoint", "events": f"exit {refused.returncode}, "
            f"{'names ' + intact if named else 'intact one NOT named'}, resume --from it, damaged file kept",
            "resumed": 1, "unreadable": unreadable(run)[0], "bytes_lost": 0, "equal": equal, "ok": ok}


def ctrl_c_group(family: str, root: Path, ref: Path, duration: float) -> dict[str, Any]:
    """SIGINT to the run and its data worker at once, as a terminal's Ctrl-C; then resume."""
    run = root / "ctrl-c"
    args = ["train", FAMILIES[family][0], *overrides(family, root, "ctrl-c", **{"train.ckpt_every": 1000,
                                                                               "data.num_workers": 1})]
    proc = cli(args, new_session=True)
    deadline = time.time() + duration
    while len(_logged_steps(run)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    announced = err.count("Ctrl-C: finishing this step")
    resumed = cli(["resume", str(run), "train.ckpt_every=1"])
    resumed.communicate(timeout=900)
    equal = resumed.returncode == 0 and weights_equal(run, ref)
    ok = proc.returncode == 130 and announced == 1 and equal
    return {"scenario": "Ctrl-C to the process group", "events": f"exit {proc.returncode}, announced {announced}x",
            "resumed": 1, "unreadable": unreadable(run)[0], "bytes_lost": 0, "equal": equal, "ok": ok}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--only", nargs="*", default=None, choices=sorted(FAMILIES))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    rows = []
    for family in args.only or list(FAMILIES):
        with tempfile.TemporaryDirectory(prefix=f"ganforge-chaos-{family}-") as tmp:
            root = Path(tmp)
            t0 = time.perf_counter()
            ref, duration = reference(family, root)
            scenarios = (lambda: kill_9(family, root, ref, args.kills, rng, duration),
                         lambda: disk_full(family, root, ref), lambda: disk_full_first(family, root, ref),
                         lambda: corrupt_latest(family, root, ref), lambda: nan(family, root, "stop"),
                         lambda: nan(family, root, "rollback"), lambda: sigterm(family, root, ref, duration),
                         lambda: ctrl_c_group(family, root, ref, duration))
            for row in (scenario() for scenario in scenarios):
                rows.append({"family": family, **row})
                print(f"{family}: {row['scenario']}: {'ok' if row['ok'] else 'FAILED'} ({row['events']})", flush=True)
            print(f"{family}: {time.perf_counter() - t0:.0f} s", flush=True)
    cols = ("family", "scenario", "events", "resumed", "unreadable", "bytes_lost", "equal", "ok")
    print("\n| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
