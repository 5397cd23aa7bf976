"""Checkpoint files: atomic, pruned, pointed to, and loaded without running code."""

from __future__ import annotations

import os

import pickle

import pytest
import torch

from ganforge.run.checkpoint import (CheckpointError, atomic_write_bytes, checkpoint_step, latest_checkpoint,
                                       list_checkpoints, load_checkpoint, read_weights_only, save_checkpoint)


def test_keep_last_and_latest_pointer(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"w": torch.full((2,), float(step))}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000030.pt", "step-00000040.pt"]
    assert (tmp_path / "latest").read_text() == "step-00000040.pt"
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert state["step"] == 40 and torch.equal(state["w"], torch.full((2,), 40.0))


def test_checkpoint_step_reads_the_step_from_the_name_and_refuses_other_names(tmp_path):
    assert checkpoint_step(tmp_path / "step-00001500.pt") == 1500
    assert checkpoint_step("step-123456789.pt") == 123456789  # more than 8 digits past step 99,999,999
    with pytest.raises(ValueError, match=r"step-00001500\.pt"):
        checkpoint_step(tmp_path / ".step-00000001.pt.tmp-999")


def test_temp_files_of_killed_writers_are_removed_at_the_next_save(tmp_path):
    (tmp_path / ".step-00000001.pt.tmp-999999").write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path, 2, {"w": torch.ones(1)}, keep_last=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-00000002.pt"]


def test_stale_pointer_and_temp_files_are_ignored(tmp_path):
    save_checkpoint(tmp_path, 5, {}, keep_last=3)
    (tmp_path / ".step-00000009.pt.tmp-123").write_bytes(b"half a checkpoint")
    (tmp_path / "latest").write_text("step-00000099.pt")  # points at nothing
    assert latest_checkpoint(tmp_path).name == "step-00000005.pt"


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_disk_full_during_a_checkpoint_names_the_intact_previous_one(tmp_path, monkeypatch):
    folder = tmp_path / "run" / "checkpoints"
    first = save_checkpoint(folder, 1, {"w": torch.ones(3)}, keep_last=3)
    real_replace = os.replace

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*step-00000002.pt.*No space left on "
                                              r"device.*step-00000001.pt' is intact.*ganforge resume"):
        save_checkpoint(folder, 2, {"w": torch.zeros(3)}, keep_last=3)
    monkeypatch.setattr(os, "replace", real_replace)
    assert latest_checkpoint(folder) == first and torch.equal(load_checkpoint(first)["w"], torch.ones(3))
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step-00000001.pt"]  # no temp file left


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_runs_code_is_refused_naming_the_global(tmp_path):
    path = tmp_path / "step-00000001.pt"
    torch.save({"format": "ganforge-checkpoint", "payload": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load .* could run code .*globals: (posix|nt)\.system"):
        load_checkpoint(path)


def test_allowed_classes_load_and_nothing_else(tmp_path):
    path = tmp_path / "state_dict.pth"
    torch.save({"itr": 3, "config": {"G_activation": torch.nn.ReLU(inplace=True)}}, path)
    with pytest.raises(CheckpointError, match=r"globals: torch\.nn\.modules\.activation\.ReLU"):
        read_weights_only(path, "state")
    state = read_weights_only(path, "state", allowed=(torch.nn.ReLU,))
    assert state["itr"] == 3 and isinstance(state["config"]["G_activation"], torch.nn.ReLU)
    torch.save({"config": {"act": torch.nn.ReLU(), "run": _RunsCode()}}, path)
    with pytest.raises(CheckpointError, match=r"globals: (posix|nt)\.system"):
        read_weights_only(path, "state", allowed=(torch.nn.ReLU,))


@pytest.mark.parametrize("version, age", [(2, "a newer"), (0, "an older")])
def test_a_checkpoint_of_another_format_is_refused(tmp_path, version, age):
    path = tmp_path / "step-00000001.pt"
    torch.save({"format": "ganforge-checkpoint", "version": version, "step": 1}, path)
    with pytest.raises(CheckpointError, match=f"written by {age} ganforge \\(checkpoint format {version}; this "
                                              f"ganforge reads format 1\\)"):
        load_checkpoint(path)


@pytest.mark.parametrize("reader", ["weights", "stargan", "starganv2", "biggan"])
def test_official_weight_readers_refuse_code_and_name_the_file(tmp_path, reader):
    """Every official import reads through read_weights_only: code is refused, bad files are named."""
    from ganforge.models.biggan.official import _read
    from ganforge.models.starganv2.official import read_nets
    from ganforge.run.checkpoint import read_official_state_dict

    read = {"weights": lambda p: read_weights_only(p, "test weights"),
            "stargan": lambda p: read_official_state_dict(p, "StarGAN generator", "main.0.weight"),
            "starganv2": read_nets, "biggan": lambda p: _read(p, "generator")}[reader]
    marker = tmp_path / "pwned"
    payload = tmp_path / "100000_nets_ema.ckpt"
    torch.save({"generator": {"w": _Touches(marker)}}, payload)
    with pytest.raises(CheckpointError, match=r"refusing to load .*100000_nets_ema.ckpt.* could run code"):
        read(payload)
    assert not marker.exists()
    garbage = tmp_path / "G.pth"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match=r"G.pth' is unreadable: its bytes are not a PyTorch file"):
        read(garbage)
    with pytest.raises(CheckpointError, match=r"missing.pth' does not exist"):
        read(tmp_path / "missing.pth")


class _Touches:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.randn(1000)}, keep_last=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="is unreadable: the file is incomplete"):
        load_checkpoint(path)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    other.write_bytes(b"no pickle at all")  # unreadable, not suspected of running code
    with pytest.raises(CheckpointError, match="other.pt' is unreadable"):
        load_checkpoint(other)


def _damaged_files(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.randn(2000)}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:3000])
    unsupported = tmp_path / "complex.pt"
    unsupported.write_bytes(pickle.dumps(3 + 4j))  # a pickle, but not of tensors and plain data
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello " * 50)
    return {"truncated": truncated, "unsupported": unsupported, "garbage": garbage}


@pytest.mark.parametrize("kind, words", [("truncated", "the file is incomplete (3,000 bytes"),
                                         ("unsupported", "its bytes are not a PyTorch file of tensors"),
                                         ("garbage", "its bytes are not a PyTorch file (")])
def test_damaged_files_are_explained_without_pytorchs_advice_to_run_their_code(tmp_path, kind, words):
    from ganforge.metrics.weights import WeightsError, read_state_dict

    path = _damaged_files(tmp_path)[kind]
    for read, error in ((lambda p: read_weights_only(p, "checkpoint"), CheckpointError), (read_state_dict, WeightsError)):
        with pytest.raises(error) as info:
            read(path)
        text = str(info.value)
        assert str(path) in text and words in text
        assert "weights_only=False" not in text and "weights_only` set to `False" not in text
        assert text.endswith(("or another format", "or use an earlier file")), "a whole sentence, not cut mid-word"
