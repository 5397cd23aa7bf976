"""LeCam regularization: the penalty, the official anchors, BigGAN's switch, and an exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from gfhelpers import assert_states_equal
from ganforge.losses import LecamAnchors, lecam_penalty
from ganforge.presets import load_config
from ganforge.run.checkpoint import load_checkpoint
from ganforge.train.trainer import resume, train


def test_the_penalty_pulls_each_side_towards_the_other_sides_anchor():
    d_real, d_fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    # relu(d_real - a_fake)^2 mean: a_fake = 0 -> (4 + 0) / 2; relu(a_real - d_fake)^2 mean: a_real = 1 -> (0.25 + 16) / 2
    assert lecam_penalty(d_real, d_fake, anchor_real=1.0, anchor_fake=0.0).item() == pytest.approx(2.0 + 8.125)


def test_anchors_copy_until_the_start_then_follow_with_the_decay():
    anchors = LecamAnchors(decay=0.9, start=3)
    assert (anchors.real, anchors.fake) == (1000.0, 1000.0)  # the official initial value
    anchors.update(1.0, -1.0, iteration=2)
    assert (anchors.real, anchors.fake) == (1.0, -1.0) and not anchors.active(3)
    anchors.update(2.0, 0.0, iteration=3)
    assert anchors.real == pytest.approx(0.9 * 1.0 + 0.1 * 2.0) and anchors.fake == pytest.approx(-0.9)
    assert anchors.active(4)
    copy = LecamAnchors()
    copy.load_state_dict(anchors.state_dict())
    assert (copy.real, copy.fake) == (anchors.real, anchors.fake)


def _biggan(out, **extra):
    base = {"out_dir": str(out), "name": "run", "model.g_ch": 4, "model.d_ch": 4, "model.dim_z": 16,
            "model.shared_dim": 8, "data.num_workers": 0, "train.batch_size": 6, "train.steps": 6,
            "train.log_every": 1, "train.sample_every": 100, "train.ckpt_every": 3, "train.progress": False,
            "train.tensorboard": False, "runtime.deterministic": True, "runtime.device": "cpu", "eval.every": 0,
            "runtime.precision": "fp32", "runtime.channels_last": False, "recipe.lecam": 0.3, "recipe.lecam_start": 2,
            **extra}
    return load_config("biggan/shapes", [f"{k}={v}" for k, v in base.items()])


def test_biggan_with_lecam_logs_it_after_the_start_and_resumes_exactly(tmp_path):
    straight = train(_biggan(tmp_path / "a"))
    logged = [json.loads(line) for line in (tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()]
    lecam = [row["D/lecam"] for row in logged if "D/lecam" in row]
    assert lecam[0] == 0.0 and all(v > 0 for v in lecam[2:]), "nothing for iterations 1-2, then the penalty"
    state = load_checkpoint(straight.checkpoint)["recipe_state"]
    assert set(state) == {"real", "fake"} and abs(state["real"]) < 100
    train(_biggan(tmp_path / "b", **{"train.steps": 3}))
    resumed = resume(tmp_path / "b" / "run", ["train.steps=6"])
    assert_states_equal(load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint))


def test_lecam_off_is_the_papers_biggan(tmp_path):
    plain = train(_biggan(tmp_path / "p", **{"recipe.lecam": 0.0}))
    assert load_checkpoint(plain.checkpoint)["recipe_state"] is None
    rows = (tmp_path / "p" / "run" / "metrics.jsonl").read_text()
    assert "lecam" not in rows


def test_dcgan_takes_lecam_with_bce_and_refuses_it_with_the_wasserstein_loss(tmp_path):
    from gfhelpers import tiny_overrides
    from ganforge.config import ConfigError

    extra = {"recipe.loss": "bce", "recipe.gp_lambda": 0, "model.d_norm": "batch", "recipe.lecam": 0.3,
             "recipe.lecam_start": 1, "train.steps": 4, "train.ckpt_every": 2}
    straight = train(load_config("dcgan/shapes", tiny_overrides(tmp_path / "a", name="r", **extra)))
    rows = [json.loads(x) for x in (tmp_path / "a" / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [row["D/lecam"] > 0 for row in rows if "D/lecam" in row] == [False, True, True, True]
    train(load_config("dcgan/shapes", tiny_overrides(tmp_path / "b", name="r", **{**extra, "train.steps": 2})))
    resumed = resume(tmp_path / "b" / "r", ["train.steps=4"])
    assert_states_equal(load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint))
    with pytest.raises(ConfigError, match="recipe.lecam regularizes the bce and hinge losses"):
        load_config("wgan_gp/shapes", tiny_overrides(tmp_path, **{"recipe.lecam": 0.3}))
