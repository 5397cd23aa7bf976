"""Recovery advice that works when followed: no checkpoint yet, a damaged latest one, the run summary."""

from __future__ import annotations

import pytest

from gfhelpers import assert_states_equal, tiny_overrides
from ganforge.cli.train import latest_sample, report
from ganforge.presets import load_config
from ganforge.run.checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint
from ganforge.run.store import open_run
from ganforge.train.trainer import TrainResult, resume, train


def _run(tmp_path, name, **extra):
    return load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name=name, **{"train.keep_last": 5, **extra}))


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(tmp_path):
    cfg = _run(tmp_path, "early", **{"train.ckpt_every": 100, "train.steps": 100})

    def stop_at_2(trainer, step):
        if step == 2:
            raise OSError(28, "No space left on device")  # as a full disk at the first checkpoint stops it

    with pytest.raises(OSError):
        train(cfg, step_hook=stop_at_2)
    assert (tmp_path / "early" / "config.yaml").is_file() and latest_checkpoint(tmp_path / "early" / "checkpoints") is None
    result = resume(tmp_path / "early", ["train.steps=3"])
    assert result.status == "finished" and result.step == 3
    straight = train(_run(tmp_path, "straight", **{"train.ckpt_every": 100, "train.steps": 3}))
    assert_states_equal(load_checkpoint(straight.checkpoint), load_checkpoint(result.checkpoint))


def _damage_latest(run_dir):
    latest = latest_checkpoint(run_dir / "checkpoints")
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    return latest


def test_a_damaged_latest_checkpoint_names_the_intact_one_and_resume_from_it_continues_bit_for_bit(tmp_path):
    straight = train(_run(tmp_path, "a", **{"train.steps": 9}))
    train(_run(tmp_path, "b"))  # 6 steps, checkpoints at 3 and 6
    run_dir = tmp_path / "b"
    damaged = _damage_latest(run_dir)
    for attempt in (lambda: resume(run_dir, ["train.steps=9"]), lambda: open_run(run_dir)):
        with pytest.raises(CheckpointError) as info:
            attempt()
        text = str(info.value)
        assert "step-00000006.pt' is unreadable: the file is incomplete" in text
        assert f"ganforge resume {run_dir} --from step-00000003.pt" in text and "weights_only" not in text
    with pytest.raises(CheckpointError, match=r"--from: 'step-00000004.pt' is not a checkpoint of .* \(its "
                                              r"checkpoints: step-00000003.pt, step-00000006.pt\)"):
        resume(run_dir, ["train.steps=9"], start_from="step-00000004.pt")
    result = resume(run_dir, ["train.steps=9"], start_from="step-00000003.pt")
    assert result.step == 9
    set_aside = run_dir / "checkpoints" / "set-aside" / damaged.name
    assert set_aside.is_file(), "the damaged file is kept, out of the way"
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == \
        ["step-00000003.pt", "step-00000006.pt", "step-00000009.pt"]
    assert_states_equal(load_checkpoint(straight.checkpoint), load_checkpoint(result.checkpoint))


def test_the_summary_cites_only_samples_of_steps_the_run_kept(tmp_path, capsys):
    samples = tmp_path / "samples"
    samples.mkdir()
    for step in (3, 6, 9):
        (samples / f"step-{step:08d}.png").write_bytes(b"png")
    (samples / "ema-step-00000009.png").write_bytes(b"png")
    assert latest_sample(tmp_path, 7).name == "step-00000006.png"
    assert latest_sample(tmp_path, 2) is None
    (tmp_path / "tensorboard").mkdir()
    code = report(TrainResult(tmp_path, 7, "interrupted", None))
    out = capsys.readouterr().out
    assert code == 130 and "step-00000006.png" in out and "step-00000009" not in out
    assert f"tensorboard --logdir {tmp_path / 'tensorboard'}" in out and f"ganforge resume {tmp_path}" in out
    assert report(TrainResult(tmp_path, 9, "preempted", None)) == 0
