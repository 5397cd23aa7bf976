"""The Python API: ganforge.train / resume returning a run, and the families' helpers on loaded models."""

from __future__ import annotations

import pytest
import torch

import ganforge
from gfhelpers import tiny_overrides
from ganforge.load import LoadedGenerator, build_generator


def test_train_from_code_then_sample_and_resume(tmp_path):
    import ganforge.train.trainer as trainer_module  # the package stays a package, and callable

    assert callable(ganforge.train) and ganforge.train.trainer is trainer_module
    settings = dict(item.split("=", 1) for item in tiny_overrides(tmp_path, **{"train.steps": 2}))
    run = ganforge.train("wgan_gp/shapes", settings, name="api", train__ckpt_every=1)
    assert isinstance(run, ganforge.Run) and (run.status, run.step) == ("finished", 2)
    assert run.run_dir == tmp_path / "api" and run.checkpoint.name == "step-00000002.pt"
    images = run.load().sample(3, seed=0)
    assert images.shape == (3, 3, 32, 32) and images.abs().max() <= 1
    more = ganforge.resume(run.run_dir, train__steps=3)
    assert more.step == 3
    with pytest.raises(Exception, match="train.stepz"):
        ganforge.train("wgan_gp/shapes", settings, train__stepz=3)


def test_a_config_as_a_dict_trains_too(tmp_path):
    settings = dict(item.split("=", 1) for item in tiny_overrides(tmp_path, **{"train.steps": 1}))
    run = ganforge.train({"family": "wgan_gp", "data": {"name": "shapes"}}, settings, name="d")
    assert run.step == 1 and (tmp_path / "d" / "config.yaml").is_file()


def test_a_helper_of_another_family_is_refused_by_name(tmp_path):
    settings = dict(item.split("=", 1) for item in tiny_overrides(tmp_path, **{"train.steps": 1}))
    gen = ganforge.train("wgan_gp/shapes", settings, name="w").load()
    with pytest.raises(AttributeError, match="a wgan_gp model has no 'translate'; it offers sample"):
        gen.translate(torch.zeros(1, 3, 32, 32))


def _starganv2() -> LoadedGenerator:
    torch.manual_seed(0)
    cfg, net = build_generator("starganv2", {"image_size": 16, "base_dim": 8, "max_conv_dim": 16, "num_domains": 2})
    return LoadedGenerator("starganv2", cfg, net.eval(), "raw")


def test_starganv2_translates_from_code_by_latent_or_reference():
    gen = _starganv2()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    latent = gen.translate(x, domain=1, seed=4)
    assert latent.shape == (3, 3, 16, 16) and torch.equal(latent, gen.translate(x, domain=1, seed=4))
    ref = gen.translate(x, domain=0, reference=x[0])
    y = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        expected = gen.net.reference(x, x[:1].expand(3, -1, -1, -1), y)
    assert torch.equal(ref, expected)
    with pytest.raises(ValueError, match="domain=2: this model has domains 0..1"):
        gen.translate(x, domain=2)
    with pytest.raises(ValueError, match=r"images must be \(N, 3, 16, 16\)"):
        gen.translate(x[:, :, :8], domain=0)
