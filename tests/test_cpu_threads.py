"""The CPU thread default: the cores free at the start, the checkpoint's count on resume, slowdown advice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gfhelpers import tiny_overrides
from ganforge.presets import load_config
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.runtime import cpu
from ganforge.train.trainer import Trainer, resume, train


@pytest.fixture
def fresh_choice(monkeypatch):
    """No automatic choice cached yet in this process; PyTorch's thread count put back afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(cpu, "_auto_choice", None)
    yield
    torch.set_num_threads(before)


def test_an_explicit_thread_count_wins_over_everything(fresh_choice, monkeypatch):
    monkeypatch.setattr(cpu, "busy_cores_elsewhere", lambda *a: pytest.fail("nothing to measure"))
    choice = cpu.choose_threads(3, checkpoint_threads=1)
    assert (choice.threads, choice.source) == (3, "runtime.threads")


def test_the_default_leaves_out_the_cores_other_programs_keep_busy(fresh_choice, monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 4)
    monkeypatch.setattr(cpu, "busy_cores_elsewhere", lambda *a: 1.2)
    choice = cpu.choose_threads(None)
    assert (choice.threads, choice.cores, choice.source) == (3, 4, "free cores")
    assert "other programs keep 1.2 of 4 cores busy" in choice.describe()
    monkeypatch.setattr(cpu, "busy_cores_elsewhere", lambda *a: 9.0)
    assert cpu.choose_threads(None).threads == 3, "measured once per process: a session computes alike"
    monkeypatch.setattr(cpu, "_auto_choice", None)
    assert cpu.choose_threads(None).threads == 1, "never fewer than one thread"


def test_an_idle_machine_keeps_one_thread_per_core(fresh_choice, monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    monkeypatch.setattr(cpu, "busy_cores_elsewhere", lambda *a: 0.1)
    assert cpu.choose_threads(None).threads == 2


def test_a_resume_keeps_the_checkpoints_count_when_the_cores_exist(fresh_choice, monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    monkeypatch.setattr(cpu, "busy_cores_elsewhere", lambda *a: 1.0)
    assert cpu.choose_threads(None, checkpoint_threads=2).source == "checkpoint"
    assert cpu.choose_threads(None, checkpoint_threads=8).threads == 1  # more than this machine has


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measured from /proc/stat")
def test_a_busy_program_is_measured_and_this_process_is_not():
    assert cpu.busy_cores_elsewhere() < 0.5 or pytest.skip("the machine is busy already")
    # A grandchild, as another program would be: this process's own children count as its own work.
    spin = subprocess.Popen(["sh", "-c", f"'{sys.executable}' -c 'while True: pass' & wait"], start_new_session=True)
    try:
        time.sleep(0.3)
        busy = cpu.busy_cores_elsewhere(0.25)
    finally:
        os.killpg(spin.pid, signal.SIGKILL)
        spin.wait()
    assert 0.7 < busy < 1.5
    with cpu.OtherCpuUse() as use:
        torch.randn(600, 600) @ torch.randn(600, 600)  # this process's own work does not count
        sum(range(2_000_000))
    assert use.cores is not None and use.cores < 0.5


def test_checkpoints_record_their_thread_count_and_resume_uses_it(tmp_path, fresh_choice, monkeypatch):
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="t", **{"train.steps": 2, "runtime.threads": 1}))
    train(cfg)
    assert load_checkpoint(latest_checkpoint(tmp_path / "t" / "checkpoints"))["threads"] == 1
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    monkeypatch.setattr(cpu, "busy_cores_elsewhere", lambda *a: 0.0)
    # config.yaml says threads 1: drop it, as a run started with the automatic default would have it
    resumed = resume(tmp_path / "t", ["train.steps=3", "runtime.threads=null"])
    assert resumed.step == 3 and torch.get_num_threads() == 1


def test_steps_far_slower_than_the_runs_own_pace_are_reported_once():
    watch = cpu.SlowdownWatch(factor=3.0, window=5)
    answers = [watch.add(t) for t in [9.0] + [1.0] * 5 + [2.0] * 5 + [4.0] * 5 + [5.0] * 5]
    assert watch.pace == 1.0
    assert [a for a in answers if a is not None] == [4.0], "the first 9 s step is warm-up; 2 s is within 3x"


def test_the_trainer_names_the_resume_command_with_fewer_threads(tmp_path):
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="s", **{"runtime.threads": 2}))
    (tmp_path / "s").mkdir()
    trainer = Trainer(cfg, tmp_path / "s")
    trainer.stream.close()
    advice = trainer._slowdown_advice(2.0, 0.5)
    assert "2.00 s against 0.50 s" in advice and f"ganforge resume {tmp_path / 's'} runtime.threads=1" in advice
