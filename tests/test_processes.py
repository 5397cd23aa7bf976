"""Tests that need real processes: torchrun DDP on gloo, kill -9 and resume, spawn workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from PIL import Image

from gfhelpers import PYTHON, assert_states_equal, python_env, tiny_overrides
from ganforge.presets import load_config
from ganforge.data import BatchStream
from ganforge.data.image_folder import ImageFolderDataset
from ganforge.run.checkpoint import checkpoint_step, latest_checkpoint, load_checkpoint
from ganforge.train.trainer import Trainer

pytestmark = pytest.mark.slow


def run_cli(args, **kw):
    return subprocess.run([PYTHON, "-m", "ganforge", *args], env=python_env(), capture_output=True, text=True,
                          timeout=300, **kw)


@contextlib.contextmanager
def process_group(cmd):
    """Start ``cmd`` in a session of its own; on exit SIGKILL the whole group (workers, ranks), so a
    long run never outlives its test, whatever failed."""
    proc = subprocess.Popen(cmd, env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def signal_a_training_run(run_dir, extra, sig, whole_group):
    """Start a tiny wgan_gp run in ``run_dir``, send ``sig`` (to its whole process group, data workers
    included, or to the main process) once it trains; its exit code, stdout and stderr."""
    with process_group([PYTHON, "-m", "ganforge", "train", "wgan_gp/shapes",
                        *tiny_overrides(run_dir.parent, name=run_dir.name, **extra)]) as proc:
        wait_until((run_dir / "metrics.jsonl").is_file, "the first logged step")
        time.sleep(1.0)
        if whole_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def weights(run_dir):
    return load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))


def wait_until(condition, what, timeout=120.0, poll=0.05):
    """Poll ``condition`` until it holds; fail naming ``what`` once ``timeout`` seconds have passed."""
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(poll)


def has_checkpoint(ckpts, step=0):
    """Whether the run's latest checkpoint in ``ckpts`` is at ``step`` or later."""
    latest = latest_checkpoint(ckpts)
    return latest is not None and checkpoint_step(latest) >= step


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    extra = {"train.steps": 3, "train.batch_size": 8, "train.ckpt_every": 3}
    single = run_cli(["train", "wgan_gp/shapes", *tiny_overrides(tmp_path / "one", name="r", **extra)])
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganforge",
                          "train", "wgan_gp/shapes", *tiny_overrides(tmp_path / "two", name="r", **extra)],
                         env=python_env(), capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one_dir, two_dir = tmp_path / "one" / "r", tmp_path / "two" / "r"

    # Step 1 losses see the same data, noise and (cross-rank) batch statistics: equal up to the
    # order of float additions (rank means averaged vs. one mean over the whole batch).
    first = [json.loads(open(d / "metrics.jsonl").readline()) for d in (one_dir, two_dir)]
    for key in ("D/loss", "D/gp", "D/real", "D/fake", "G/loss"):
        assert first[1][key] == pytest.approx(first[0][key], rel=1e-4, abs=1e-6), key

    # After 3 steps (7 optimizer updates): the two runs must agree to a small fraction of how far
    # training moved the weights. A rank that trained on its own data or skipped the gradient
    # average would be off by O(1) of that distance; float reduction order gives ~1e-6 relative,
    # which Adam's normalisation can amplify for near-zero gradients, hence the 1e-3 bound.
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "init", **extra))
    init = {k: v.state_dict() for k, v in Trainer(cfg).recipe.networks.items()}
    a, b = weights(one_dir), weights(two_dir)
    for net in ("G", "D"):
        for key, w0 in init[net].items():
            if not w0.is_floating_point():
                continue
            moved = (a["networks"][net][key] - w0).norm()
            gap = (a["networks"][net][key] - b["networks"][net][key]).norm()
            assert moved > 0, f"{net}.{key} did not train"
            assert gap <= 1e-3 * moved, f"{net}.{key}: gap {gap:.3g} vs moved {moved:.3g}"
    assert a["data_position"] == b["data_position"] == 3 * 2 * 8  # 3 steps x n_critic 2 batches of 8


def train_on_one_and_two_processes(tmp_path, preset, args):
    """Train ``preset`` into tmp_path/one/r (one process) and tmp_path/two/r (torchrun, 2 processes);
    the first logged line of each."""
    single = run_cli(["train", preset, f"out_dir={tmp_path / 'one'}", "name=r", *args])
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganforge",
                          "train", preset, f"out_dir={tmp_path / 'two'}", "name=r", *args],
                         env=python_env(), capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    return [json.loads(open(tmp_path / d / "r" / "metrics.jsonl").readline()) for d in ("one", "two")]


def test_biggan_two_process_ddp_matches_one_process(tmp_path):
    # Global-batch BN in G, SN power iterations on identical weights, hinge means averaged over
    # ranks: a 2-process BigGAN run is the 1-process run up to float reduction order.
    base = {"model.g_ch": 4, "model.d_ch": 4, "model.dim_z": 16, "model.shared_dim": 8, "data.length": 64,
            "data.num_workers": 0, "train.batch_size": 8, "train.steps": 2, "train.ckpt_every": 2,
            "train.log_every": 1, "train.progress": False, "train.tensorboard": False, "eval.every": 0,
            "runtime.precision": "fp32", "runtime.channels_last": False, "runtime.device": "cpu"}
    args = [f"{k}={v}" for k, v in base.items()]
    first = train_on_one_and_two_processes(tmp_path, "biggan/shapes", args)
    for key in ("D/loss_real", "D/loss_fake", "G/loss"):
        assert first[1][key] == pytest.approx(first[0][key], rel=1e-4, abs=1e-6), key
    # Weights (2+ dims) agree to a small fraction of how far training moved them. Biases are left
    # out: in G every conv/linear bias feeds a batch norm that cancels it, so its gradient is float
    # noise that Adam scales up to +-lr in both runs, in unrelated directions. The same can happen to
    # a single entry of a class table (a class seen once in the batch, through a channel its sample
    # leaves near zero), so each weight's one farthest entry is left out of its gap.
    cfg = load_config("biggan/shapes", [f"out_dir={tmp_path / 'init'}", *args])
    init = {k: v.state_dict() for k, v in Trainer(cfg).recipe.networks.items()}
    a, b = weights(tmp_path / "one" / "r"), weights(tmp_path / "two" / "r")
    for net in ("G", "D"):
        for key, w0 in init[net].items():
            if w0.dim() < 2 or not key.endswith("weight"):
                continue
            moved = (a["networks"][net][key] - w0).norm()
            gap = (a["networks"][net][key] - b["networks"][net][key]).abs().flatten().sort().values[:-1].norm()
            assert moved > 0, f"{net}.{key} did not train"
            assert gap <= 1e-2 * moved, f"{net}.{key}: gap {gap:.3g} vs moved {moved:.3g}"


def test_r3gan_two_process_ddp_matches_one_process(tmp_path):
    # The penalties are per-sample sums and the losses means over the batch: with the noise of the
    # global batch drawn on every rank, a 2-process run is the 1-process run up to reduction order.
    # Augmentation is off here (its draws differ per rank, as they should).
    base = {"model.image_size": 16, "data.image_size": 16, "model.widths": "[8,8,8]", "model.cardinalities": "[2,2,2]",
            "model.blocks": "[1,1,1]", "data.length": 64, "data.num_workers": 0, "train.batch_size": 8,
            "train.steps": 2, "train.ckpt_every": 2, "train.log_every": 1, "train.progress": False,
            "train.tensorboard": False, "runtime.device": "cpu", "recipe.augment_p": 0, "recipe.decay_nimg": 16}
    args = [f"{k}={v}" for k, v in base.items()]
    first = train_on_one_and_two_processes(tmp_path, "r3gan/shapes", args)
    for key in ("D/adversarial", "D/r1", "D/r2", "G/loss"):
        assert first[1][key] == pytest.approx(first[0][key], rel=1e-4, abs=1e-6), key
    a, b = weights(tmp_path / "one" / "r"), weights(tmp_path / "two" / "r")
    for net in ("G", "D"):
        for key, w in a["networks"][net].items():
            if w.is_floating_point():
                assert torch.allclose(w, b["networks"][net][key], rtol=1e-3, atol=1e-5), f"{net}.{key}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_on_loopback_train_as_one_node_with_two_processes(tmp_path):
    # Two torchrun invocations, one process each, meet through a c10d rendezvous on 127.0.0.1 as two
    # nodes would; the run equals a 2-process single-node run with the same global batch, and only
    # node 0's rank 0 writes (node 1 is pointed at another folder, which stays empty).
    extra = {"train.steps": 3, "train.batch_size": 8, "train.ckpt_every": 3, "data.num_workers": 0}
    single = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                             "ganforge", "train", "wgan_gp/shapes", *tiny_overrides(tmp_path / "one", name="r", **extra)],
                            env=python_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    port = _free_port()
    nodes = []
    for node in (0, 1):
        cmd = [PYTHON, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={node}", "--nproc_per_node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=loopback", "-m", "ganforge",
               "train", "wgan_gp/shapes", *tiny_overrides(tmp_path / f"node{node}", name="r", **extra)]
        nodes.append(subprocess.Popen(cmd, env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, start_new_session=True))
    try:
        errs = [p.communicate(timeout=300)[1] for p in nodes]
    finally:
        for p in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    assert [p.returncode for p in nodes] == [0, 0], errs[0][-2000:] + errs[1][-2000:]
    assert not (tmp_path / "node1" / "r" / "checkpoints").exists()  # rank 1 writes nothing
    first = [json.loads(open(d / "r" / "metrics.jsonl").readline()) for d in (tmp_path / "one", tmp_path / "node0")]
    for key in ("D/loss", "D/gp", "G/loss"):
        assert first[1][key] == pytest.approx(first[0][key], rel=1e-4, abs=1e-6), key
    a, b = weights(tmp_path / "one" / "r"), weights(tmp_path / "node0" / "r")
    for net in ("G", "D"):
        for key, w in a["networks"][net].items():
            if w.is_floating_point():
                assert torch.allclose(w, b["networks"][net][key], rtol=1e-3, atol=1e-5), f"{net}.{key}"


def test_a_node_that_joins_and_one_that_dies_under_elastic_torchrun(tmp_path):
    # torchrun --nnodes 1:2 on loopback: node A trains alone; node B joins, so torchrun stops A's
    # worker (SIGTERM: a checkpoint) and both continue from it as 2 ranks; B dies with its worker, so
    # A's rank names the lost rank, torchrun restarts it alone, and it continues from the last
    # checkpoint to the end. World size 1 -> 2 -> 1, the global batch and data position kept.
    steps = 200
    args = tiny_overrides(tmp_path, name="r", **{"train.steps": steps, "train.ckpt_every": 2, "train.keep_last": 1000,
                                                 "data.num_workers": 0,
                                                 "train.sample_every": 1000, "train.log_every": 1000,
                                                 "runtime.dist_timeout_s": 5})
    cmd = [PYTHON, "-m", "torch.distributed.run", "--nnodes=1:2", "--nproc_per_node=1", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--rdzv-id=elastic", "--max-restarts=3",
           "--monitor-interval=0.5", "--rdzv-conf=last_call_timeout=1", "-m", "ganforge", "train",
           "wgan_gp/shapes", *args]
    env = {**python_env(), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}  # else a joining node hangs the rendezvous
    ckpts = tmp_path / "r" / "checkpoints"

    node_a = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    node_b = None
    try:
        wait_until(lambda: has_checkpoint(ckpts, 10), "node A's checkpoint 10")
        node_b = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        wait_until(lambda: load_checkpoint(latest_checkpoint(ckpts))["world_size"] == 2,
                   "a checkpoint of the two nodes")
        b_worker = subprocess.run(["pgrep", "-P", str(node_b.pid)], capture_output=True, text=True).stdout.split()
        assert len(b_worker) == 1, b_worker
        for pid in (node_b.pid, int(b_worker[0])):  # the node dies: its agent and its worker
            os.kill(pid, signal.SIGKILL)
        out, _ = node_a.communicate(timeout=240)
    finally:
        for proc in filter(None, (node_a, node_b)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert node_a.returncode == 0, out[-3000:]
    sizes = {checkpoint_step(p): load_checkpoint(p)["world_size"] for p in sorted(ckpts.glob("step-*.pt"))}
    order = [size for step, size in sorted(sizes.items())]
    assert order[0] == 1 and 2 in order and order[-1] == 1 and max(sizes) == steps, sizes
    assert "preempted at step" in out  # B's arrival stopped A's worker with a checkpoint
    assert "no answer from rank 1" in out  # B's loss was named, then A went on alone
    assert out.count("continuing it from the latest") == 2
    final = load_checkpoint(latest_checkpoint(ckpts))
    assert final["data_position"] == steps * 8 * 2  # global batch 8, two D steps per step, whatever the size


def test_ddp_with_diffaugment_resumes_bit_for_bit(tmp_path):
    # Each rank draws its own augmentations from (seed, rank, step), so a 2-process run stopped at
    # step 2 and resumed by torchrun continues exactly as the uninterrupted one: rank 1's draws do not
    # fall back to rank 0's stream, which is the only one a checkpoint holds.
    base = {"model.g_ch": 4, "model.d_ch": 4, "model.dim_z": 16, "model.shared_dim": 8, "data.length": 64,
            "data.num_workers": 0, "train.batch_size": 8, "train.steps": 4, "train.ckpt_every": 2,
            "train.progress": False, "train.tensorboard": False, "eval.every": 0, "runtime.precision": "fp32",
            "runtime.channels_last": False, "runtime.device": "cpu", "train.diffaugment": "color,translation,cutout"}
    args = [f"{k}={v}" for k, v in base.items()]
    torchrun = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganforge"]

    def launch(*cli):
        done = subprocess.run([*torchrun, *cli], env=python_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    launch("train", "biggan/shapes", f"out_dir={tmp_path / 'straight'}", "name=r", *args)
    launch("train", "biggan/shapes", f"out_dir={tmp_path / 'stopped'}", "name=r", *args, "train.steps=2")
    launch("resume", str(tmp_path / "stopped" / "r"), "train.steps=4")
    assert_states_equal(weights(tmp_path / "straight" / "r"), weights(tmp_path / "stopped" / "r"))


def test_ddp_run_that_loses_a_process_stops_and_resumes_on_one(tmp_path):
    args = tiny_overrides(tmp_path, name="r", **{"train.steps": 100000, "train.ckpt_every": 5,
                                                 "runtime.dist_timeout_s": 30})
    with process_group([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                        "ganforge", "train", "wgan_gp/shapes", *args]) as proc:
        ckpts = tmp_path / "r" / "checkpoints"
        wait_until(lambda: has_checkpoint(ckpts), "the first checkpoint", poll=0.2)
        workers = subprocess.run(["pgrep", "-f", f"[-]u -m ganforge train wgan_gp/shapes out_dir={tmp_path}"],
                                 capture_output=True, text=True).stdout.split()
        assert len(workers) == 2, workers
        os.kill(int(max(workers, key=int)), signal.SIGKILL)  # one rank dies without a word
        t0 = time.time()
        _, err = proc.communicate(timeout=120)  # the other must not hang until the 30 s timeout, or forever
    assert proc.returncode != 0 and time.time() - t0 < 60
    assert "SIGKILL" in err or "Signal 9" in err  # torchrun names the lost rank as the root cause
    last = latest_checkpoint(ckpts)
    step = load_checkpoint(last)["step"]  # readable
    again = run_cli(["resume", str(tmp_path / "r"), f"train.steps={step + 2}"])  # on one process
    assert again.returncode == 0, again.stderr[-2000:]
    assert weights(tmp_path / "r")["step"] == step + 2


def test_torchrun_restarts_a_killed_worker_and_the_run_ends_as_the_uninterrupted_one(tmp_path):
    # Under `torchrun --max-restarts 1` a rank killed mid-run makes torchrun restart every worker with
    # the same command; `ganforge train` on a run folder with checkpoints of its own config continues it
    # from the latest, so the run finishes by itself with the weights of a run never interrupted.
    extra = {"train.steps": 14, "train.ckpt_every": 2, "train.sample_every": 1000, "train.log_every": 1000,
             "data.num_workers": 0}
    torchrun = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=1",
                "--monitor-interval=0.2", "-m", "ganforge", "train", "wgan_gp/shapes"]
    straight = subprocess.run([*torchrun, *tiny_overrides(tmp_path / "a", name="r", **extra)], env=python_env(),
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-3000:]
    ckpts = tmp_path / "b" / "r" / "checkpoints"
    with process_group([*torchrun, *tiny_overrides(tmp_path / "b", name="r", **extra)]) as proc:
        wait_until(lambda: has_checkpoint(ckpts, 4), "checkpoint 4")
        workers = subprocess.run(["pgrep", "-f", f"[-]u -m ganforge train wgan_gp/shapes out_dir={tmp_path / 'b'}"],
                                 capture_output=True, text=True).stdout.split()
        assert len(workers) == 2, workers
        os.kill(int(max(workers, key=int)), signal.SIGKILL)
        _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    assert "continuing it from the latest" in err  # the restarted workers went on from a checkpoint
    assert_states_equal(weights(tmp_path / "a" / "r"), weights(tmp_path / "b" / "r"))


def _assert_close_to(reference, run_dir):
    """Weights within the DDP tolerance of ``reference``'s: a small fraction of how far training moved them."""
    a, b = reference, weights(run_dir)
    assert a["step"] == b["step"]
    for net in ("G", "D"):
        for key, w in a["networks"][net].items():
            if w.is_floating_point():
                assert torch.allclose(w, b["networks"][net][key], rtol=1e-3, atol=1e-5), f"{run_dir}: {net}.{key}"


def test_a_run_resumes_on_another_number_of_processes(tmp_path):
    # Checkpointed on 2 processes, resumed on 1 and on 2; checkpointed on 1, resumed on 2: each ends
    # where the uninterrupted 2-process run ends (the global batch and data position come from the
    # checkpoint, each rank's share is recomputed).
    extra = {"train.steps": 4, "train.ckpt_every": 2, "data.num_workers": 0}
    torchrun = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganforge"]

    def launch(processes, *cli):
        cmd = [*torchrun, *cli] if processes == 2 else [PYTHON, "-m", "ganforge", *cli]
        done = subprocess.run(cmd, env=python_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    launch(2, "train", "wgan_gp/shapes", *tiny_overrides(tmp_path / "straight", name="r", **extra))
    reference = weights(tmp_path / "straight" / "r")
    for first in (2, 1):
        launch(first, "train", "wgan_gp/shapes", *tiny_overrides(tmp_path / f"from{first}", name="r",
                                                                  **{**extra, "train.steps": 2}))
    import shutil

    shutil.copytree(tmp_path / "from2", tmp_path / "from2b")
    for folder, then in (("from2", 1), ("from2b", 2), ("from1", 2)):
        launch(then, "resume", str(tmp_path / folder / "r"), "train.steps=4")
        _assert_close_to(reference, tmp_path / folder / "r")


def _rank_of(pid: int) -> int:
    environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return int(next(v for v in environ if v.startswith(b"RANK=")).split(b"=")[1])


def test_a_rank_that_hangs_is_named_within_the_timeout(tmp_path):
    # SIGSTOP freezes one rank mid-run: the other gives up after runtime.dist_timeout_s and names it,
    # from the collectives each rank noted entering in torchrun's store.
    args = tiny_overrides(tmp_path, name="r", **{"train.steps": 100000, "train.ckpt_every": 2, "data.num_workers": 0,
                                                 "runtime.dist_timeout_s": 5})
    with process_group([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                        "ganforge", "train", "wgan_gp/shapes", *args]) as proc:
        ckpts = tmp_path / "r" / "checkpoints"
        wait_until(lambda: has_checkpoint(ckpts, 4), "checkpoint 4")
        workers = [int(p) for p in subprocess.run(
            ["pgrep", "-f", f"[-]u -m ganforge train wgan_gp/shapes out_dir={tmp_path}"],
            capture_output=True, text=True).stdout.split()]
        assert len(workers) == 2, workers
        hung, other = max(workers), min(workers)
        hung_rank = _rank_of(hung)
        os.kill(hung, signal.SIGSTOP)
        t0 = time.time()
        while os.path.exists(f"/proc/{other}") and open(f"/proc/{other}/stat").read().split()[2] != "Z" \
                and time.time() - t0 < 60:
            time.sleep(0.1)
        waited = time.time() - t0
        os.kill(hung, signal.SIGCONT)  # let it find its peer gone, so torchrun ends without its 30 s grace
        _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert waited < 5 + 15, waited  # detected within the timeout (plus a step and the process exit)
    assert f"no answer from rank {hung_rank} (last finished step" in err, err[-3000:]


def test_sigterm_to_torchrun_stops_both_ranks_at_one_step_with_one_checkpoint(tmp_path):
    # A scheduler's preemption: SIGTERM to torchrun, which passes it to every worker and kills them
    # 30 s later. The stop is agreed in the per-step collective, so both ranks end after the same step
    # (a rank that went on would wait in a collective and end with "no answer from rank"), and rank 0
    # writes one checkpoint of that step, long before the grace ends.
    args = tiny_overrides(tmp_path, name="r", **{"train.steps": 100000, "train.ckpt_every": 100000,
                                                 "data.num_workers": 0, "runtime.dist_timeout_s": 5})
    logs = tmp_path / "logs"
    with process_group([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "--redirects=3", f"--log-dir={logs}", "-m", "ganforge", "train", "wgan_gp/shapes",
                        *args]) as proc:
        wait_until((tmp_path / "r" / "metrics.jsonl").is_file, "the first logged step")
        time.sleep(1.0)
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        ended = time.time() - sent
    checkpoints = sorted((tmp_path / "r" / "checkpoints").glob("step-*.pt"))
    assert len(checkpoints) == 1, checkpoints
    step = checkpoint_step(checkpoints[0])
    assert step > 0 and checkpoints[0].stat().st_mtime - sent < 15
    assert ended < 25, ended  # the workers ended by themselves, before torchrun's 30 s grace ran out
    rank0 = next(logs.rglob("0/stdout.log")).read_text()
    assert f"preempted at step {step}:" in rank0, rank0
    rank1 = next(logs.rglob("1/stderr.log")).read_text()
    assert "no answer" not in rank1 and "Traceback" not in rank1, rank1[-3000:]


def test_kill_9_at_any_moment_then_resume_equals_the_uninterrupted_run(tmp_path):
    extra = {"train.steps": 24, "train.ckpt_every": 2, "train.sample_every": 1000, "train.log_every": 1000}
    straight = run_cli(["train", "wgan_gp/shapes", *tiny_overrides(tmp_path / "a", name="r", **extra)])
    assert straight.returncode == 0, straight.stderr

    run_dir = tmp_path / "b" / "r"
    proc = subprocess.Popen([PYTHON, "-m", "ganforge", "train", "wgan_gp/shapes",
                             *tiny_overrides(tmp_path / "b", name="r", **extra)],
                            env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: proc.poll() is not None or has_checkpoint(run_dir / "checkpoints", 6), "checkpoint 6")
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = weights(run_dir)["step"]
    assert 6 <= killed_at < 24

    resumed = run_cli(["resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights(tmp_path / "a" / "r"), weights(run_dir)
    assert a["step"] == b["step"] == 24
    for net in ("G", "D"):
        for key, value in a["networks"][net].items():
            assert torch.equal(value, b["networks"][net][key]), f"{net}.{key} differs after resume from {killed_at}"


@pytest.mark.skipif(os.name != "posix", reason="a per-file size quota (RLIMIT_FSIZE) is POSIX")
def test_a_full_quota_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path):
    import resource

    first = run_cli(["train", "wgan_gp/shapes", *tiny_overrides(tmp_path, name="q", **{"train.steps": 2,
                                                                                     "train.ckpt_every": 2})])
    assert first.returncode == 0, first.stderr
    good = latest_checkpoint(tmp_path / "q" / "checkpoints")
    limit = good.stat().st_size // 2  # no checkpoint fits any more

    def quota():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = subprocess.run([PYTHON, "-m", "ganforge", "resume", str(tmp_path / "q"), "train.steps=4"], env=python_env(),
                          capture_output=True, text=True, timeout=300, preexec_fn=quota)
    assert full.returncode == 2, full.stderr[-2000:]
    assert "could not write checkpoint" in full.stderr and "step-00000002.pt' is intact" in full.stderr
    assert "Traceback" not in full.stderr
    assert latest_checkpoint(tmp_path / "q" / "checkpoints") == good and load_checkpoint(good)["step"] == 2
    again = run_cli(["resume", str(tmp_path / "q"), "train.steps=4"])  # space again: it finishes
    assert again.returncode == 0 and weights(tmp_path / "q")["step"] == 4


@pytest.mark.parametrize("workers, whole_group", [(0, False), (2, True)])
def test_sigterm_checkpoints_and_exits_0(tmp_path, workers, whole_group):
    # whole_group: SIGTERM to every process of the job, DataLoader workers included, as a batch
    # scheduler's preemption or `kill -- -PGID` sends it; the workers must not die before the checkpoint.
    extra = {"train.steps": 100000, "train.ckpt_every": 100000, "data.num_workers": workers}
    run_dir = tmp_path / "r"
    code, out, err = signal_a_training_run(run_dir, extra, signal.SIGTERM, whole_group)
    assert code == 0, err
    assert "preempted at step" in out
    assert weights(run_dir)["step"] > 0


def test_spawn_workers_read_paths_with_spaces_and_non_ascii(tmp_path):
    root = tmp_path / "my images" / "été 写真"
    root.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((20, 30, 3), i * 40, dtype=np.uint8)).save(root / f"ïmage {i}.png")
    ds = ImageFolderDataset(root, image_size=16, crop="random", flip=True)
    serial = BatchStream(ds, 4, 1, 0, seed=1, num_workers=0, pin_memory=False)
    spawned = BatchStream(ds, 4, 1, 0, seed=1, num_workers=2, pin_memory=False, mp_context="spawn")
    for _ in range(4):
        assert torch.equal(next(serial)["image"], next(spawned)["image"])
    spawned.close()


@pytest.mark.skipif(not hasattr(signal, "alarm"), reason="POSIX only: Windows has no SIGALRM")
def test_a_workers_sigterm_grace_counts_from_the_first_sigterm(monkeypatch):
    import ganforge.data.loader as data

    monkeypatch.setattr(data, "WORKER_SIGTERM_GRACE_S", 100)
    try:
        signal.alarm(0)
        data._start_sigterm_grace(signal.SIGTERM, None)
        assert signal.alarm(0) == 100  # the first SIGTERM starts the grace
        signal.alarm(30)  # as if an earlier SIGTERM left 30 s
        data._start_sigterm_grace(signal.SIGTERM, None)
        assert signal.alarm(0) == 30  # a later one does not push the end out
    finally:
        signal.alarm(0)


def test_ctrl_c_to_the_whole_group_is_announced_once_and_exits_130(tmp_path):
    # A terminal's Ctrl-C reaches every process of the foreground group, the data workers included.
    extra = {"train.steps": 100000, "train.ckpt_every": 100000, "data.num_workers": 2}
    run_dir = tmp_path / "c"
    code, out, err = signal_a_training_run(run_dir, extra, signal.SIGINT, whole_group=True)
    assert code == 130, err[-2000:]
    assert err.count("Ctrl-C: finishing this step") == 1, err[-2000:]
    assert "interrupted at step" in out and f"ganforge resume {run_dir}" in out
    assert weights(run_dir)["step"] > 0 and "Traceback" not in err


@pytest.mark.skipif(os.name != "posix", reason="a per-file size quota (RLIMIT_FSIZE) is POSIX")
def test_a_disk_full_at_the_first_checkpoint_gives_advice_that_works(tmp_path):
    import resource

    def quota():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # the config and logs fit, no checkpoint

    args = ["train", "wgan_gp/shapes", *tiny_overrides(tmp_path, name="f", **{"train.steps": 4,
                                                                             "train.ckpt_every": 2})]
    full = subprocess.run([PYTHON, "-m", "ganforge", *args], env=python_env(), capture_output=True, text=True,
                          timeout=300, preexec_fn=quota)
    assert full.returncode == 2 and "no earlier checkpoint exists" in full.stderr, full.stderr[-2000:]
    assert f"ganforge resume {tmp_path / 'f'}" in full.stderr
    again = run_cli(["resume", str(tmp_path / "f")])  # the advice, followed: it trains from step 0
    assert again.returncode == 0, again.stderr[-2000:]
    assert "no checkpoint yet: training starts at step 0" in again.stderr and weights(tmp_path / "f")["step"] == 4
