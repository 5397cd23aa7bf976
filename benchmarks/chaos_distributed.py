"""Chaos under torchrun: workers killed, runs moved between numbers of processes, ranks that hang.

Not a unit test (the tests run each case once; this runs each many times, at random moments). Small
WGAN-GP runs on the built-in shapes, deterministic CPU mode, gloo on loopback. Each fault, ``--runs``
times (seeded), and the rows of ``benchmarks/README.md``:

- ``restart``: ``torchrun --max-restarts 1``, one worker killed with SIGKILL after a random number of
  checkpoints (a checkpoint every 2 steps): torchrun restarts the workers, ``ganforge train`` continues
  from the latest checkpoint. Counted when the run finished by itself (exit 0) with the weights of an
  uninterrupted run, bit for bit.
- ``world size``: a run stopped at a random checkpoint on 2 processes and resumed on 1 or 2, or stopped
  on 1 and resumed on 2. Counted when the final weights are within the DDP tolerance of the
  uninterrupted 2-process run's (rtol 1e-3, atol 1e-5: float reduction order).
- ``hang``: one worker frozen with SIGSTOP at a random moment. Counted when the other stopped within
  ``runtime.dist_timeout_s`` plus 15 s, naming the frozen rank, and the last checkpoint loads.

    .venv/bin/python benchmarks/chaos_distributed.py --runs 10
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from ganforge.run.checkpoint import checkpoint_step, latest_checkpoint, load_checkpoint  # noqa: E402

TINY = {"model.image_size": 32, "model.z_dim": 16, "model.g_channels": 8, "model.d_channels": 8,
        "recipe.n_critic": 2, "data.image_size": 32, "data.length": 64, "data.num_workers": 0,
        "train.batch_size": 8, "train.log_every": 1000, "train.sample_every": 1000, "train.ckpt_every": 2,
        "train.progress": False, "train.tensorboard": False, "runtime.deterministic": True,
        "runtime.device": "cpu"}
STEPS = 16
TIMEOUT_S = 5


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def command(processes: int, verb: str, *args: str, restarts: int = 0) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "ganforge", verb, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            f"--max-restarts={restarts}", "--monitor-interval=0.2", "-m", "ganforge", verb, *args]


def train_args(out: Path, steps: int = STEPS, **extra: object) -> list[str]:
    return ["wgan_gp/shapes", f"out_dir={out}", "name=r", f"train.steps={steps}",
            *(f"{k}={v}" for k, v in {**TINY, **extra}.items())]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=600)


def final(run_dir: Path) -> dict:
    return load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))


def same(a: dict, b: dict, tolerant: bool) -> bool:
    if a["step"] != b["step"]:
        return False
    for net in a["networks"]:
        for key, w in a["networks"][net].items():
            other = b["networks"][net][key]
            if not w.is_floating_point():
                continue
            if not (torch.allclose(w, other, rtol=1e-3, atol=1e-5) if tolerant else torch.equal(w, other)):
                return False
    return True


def workers(out: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"[-]u -m ganforge train wgan_gp/shapes out_dir={out}"],
                           capture_output=True, text=True).stdout.split()
    return sorted(int(p) for p in found)


def wait_for_checkpoint(out: Path, step: int, proc: subprocess.Popen, limit_s: float = 180) -> bool:
    deadline = time.time() + limit_s
    ckpts = out / "r" / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        latest = latest_checkpoint(ckpts)
        if latest is not None and checkpoint_step(latest) >= step:
            return True
        time.sleep(0.02)
    return False


def restart_case(tmp: Path, rng: random.Random, reference: dict) -> bool:
    out = tmp / "restart"
    proc = subprocess.Popen(command(2, "train", *train_args(out), restarts=1), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if not wait_for_checkpoint(out, rng.choice([2, 4, 6, 8, 10, 12]), proc):
            return False
        time.sleep(rng.uniform(0, 0.3))  # somewhere inside the next steps
        pids = workers(out)
        if len(pids) != 2:
            return False
        os.kill(rng.choice(pids), signal.SIGKILL)
        proc.communicate(timeout=300)
    finally:
        _kill_group(proc)
    return proc.returncode == 0 and same(reference, final(out / "r"), tolerant=False)


def world_size_case(tmp: Path, rng: random.Random, reference: dict) -> bool:
    first, then = rng.choice([(2, 1), (2, 2), (1, 2)])
    stop = rng.choice([2, 4, 6, 8, 10, 12, 14])
    out = tmp / f"ws-{first}-{then}"
    if run(command(first, "train", *train_args(out, steps=stop))).returncode != 0:
        return False
    if run(command(then, "resume", str(out / "r"), f"train.steps={STEPS}")).returncode != 0:
        return False
    return same(reference, final(out / "r"), tolerant=True)


def hang_case(tmp: Path, rng: random.Random) -> bool:
    out = tmp / "hang"
    args = train_args(out, steps=100000, **{"runtime.dist_timeout_s": TIMEOUT_S})
    proc = subprocess.Popen(command(2, "train", *args), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if not wait_for_checkpoint(out, rng.choice([2, 4, 6, 8]), proc):
            return False
        time.sleep(rng.uniform(0, 0.3))
        pids = workers(out)
        if len(pids) != 2:
            return False
        frozen = rng.choice(pids)
        other = next(p for p in pids if p != frozen)
        rank = _rank_of(frozen)
        os.kill(frozen, signal.SIGSTOP)
        t0 = time.time()
        while _alive(other) and time.time() - t0 < 120:
            time.sleep(0.05)
        waited = time.time() - t0
        os.kill(frozen, signal.SIGCONT)
        _, err = proc.communicate(timeout=300)
    finally:
        _kill_group(proc)
    loads = load_checkpoint(latest_checkpoint(out / "r" / "checkpoints")) is not None
    return proc.returncode != 0 and waited < TIMEOUT_S + 15 and f"no answer from rank {rank} " in err and loads


def _rank_of(pid: int) -> int:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return int(next(v for v in environ if v.startswith(b"RANK=")).split(b"=")[1])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="restart,world_size,hang")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = args.only.split(",")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if run(command(2, "train", *train_args(tmp / "reference"))).returncode != 0:
            raise SystemExit("the uninterrupted reference run failed")
        reference = final(tmp / "reference" / "r")
        for case in cases:
            passed = 0
            for i in range(args.runs):
                work = tmp / f"{case}-{i}"
                work.mkdir()
                start = time.time()
                if case == "restart":
                    ok = restart_case(work, rng, reference)
                elif case == "world_size":
                    ok = world_size_case(work, rng, reference)
                else:
                    ok = hang_case(work, rng)
                passed += ok
                print(f"{case} {i}: {'ok' if ok else 'FAILED'} ({time.time() - start:.0f} s)", flush=True)
                shutil.rmtree(work, ignore_errors=True)
            print(f"| {case} | {passed}/{args.runs} |", flush=True)


if __name__ == "__main__":
    main()
