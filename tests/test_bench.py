"""`ganforge bench`: counted FLOPs, official-iteration accounting, and the CLI report."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from gfhelpers import short_run, tiny_overrides
from ganforge.cli import main
from ganforge.presets import load_config
from ganforge.losses import gradient_penalty
from ganforge.train.bench import _FlopCount, bench
from ganforge.train.trainer import Trainer


def test_flop_count_matches_the_formulas_and_survives_a_gradient_penalty():
    """Linear: forward 2*B*I*O, backward twice that (input and weight gradients); a 3x3 conv the same
    way. Counting must not break autograd.grad with create_graph (PyTorch's FlopCounterMode does)."""
    torch.manual_seed(0)
    lin = nn.Linear(32, 16)
    x = torch.randn(8, 32, requires_grad=True)
    with _FlopCount() as count:
        lin(x).sum().backward()
    assert count.total == 3 * 2 * 8 * 32 * 16

    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    with _FlopCount() as count:
        conv(torch.randn(2, 4, 5, 5)).sum().backward()  # no input gradient: weight gradient only
    forward = 2 * 2 * 6 * 5 * 5 * 4 * 3 * 3
    assert count.total == 2 * forward

    critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(1))
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    critic(real)  # materialize the lazy layer
    with _FlopCount() as count:
        gradient_penalty(critic, real, fake, torch.rand(2, 1, 1, 1)).backward()
    assert count.total > 0


def test_bench_reports_official_iterations_images_and_flops(tmp_path):
    """StarGAN's step holds n_critic official iterations (D every iteration, G every n_critic-th) and
    draws n_critic batches; the counted FLOPs are the same for the same config; nothing is written."""
    overrides = short_run(tmp_path, {"model.g_conv_dim": 8, "model.d_conv_dim": 8, "model.g_repeat_num": 1,
                                     "model.d_repeat_num": 4, "model.image_size": 32, "data.image_size": 32,
                                     "data.length": 64, "recipe.n_critic": 3})
    reports = [bench(Trainer(load_config("stargan/shapes", overrides), None), steps=2, measure_peak=False)
               for _ in range(2)]
    report = reports[0]
    assert report.family == "stargan" and report.iterations_per_step == 3 and report.batch_size == 4
    assert report.images_per_step == 3 * 4
    assert len(report.step_s) == 2 and report.iteration_s == pytest.approx(report.median_step_s / 3)
    assert report.flops_per_step > 0 and report.flops_per_step == reports[1].flops_per_step
    assert report.peak_flops is None and report.peak_fraction is None
    assert report.parameters["G"] > 0 and report.parameters["D"] > 0
    assert not list(tmp_path.rglob("*"))


def test_bench_cli_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "wgan_gp/shapes", *tiny_overrides(tmp_path / "runs"), "--steps", "1",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "s/iteration" in text and "device peak" in text and "reached" in text
    numbers = json.loads(out.read_text())
    assert numbers["iterations_per_step"] == 1 and numbers["images_per_step"] == 2 * 8  # n_critic 2, batch 8
    assert 0 < numbers["peak_fraction"] and numbers["flops_per_step"] > 0
    assert main(["bench", "wgan_gp/shapes", *tiny_overrides(tmp_path / "runs"), "--steps", "0"]) == 2
    assert "steps >= 1" in capsys.readouterr().err


def test_peak_product_is_large_enough_for_an_accelerator(monkeypatch):
    """A 2048 product takes tens of microseconds on a GPU (launch latency, not the matrix units): the
    peak uses 8192 off the CPU. The meta device stands in for an accelerator (no math is done)."""
    from ganforge.train import bench as bench_module

    sizes = []
    randn = torch.randn

    def recording_randn(*shape, **kwargs):
        sizes.append(shape)
        return randn(*shape, **kwargs)

    monkeypatch.setattr(bench_module.torch, "randn", recording_randn)
    assert bench_module.measure_peak_flops(torch.device("cpu"), torch.float32, repeats=1) > 0
    assert bench_module.measure_peak_flops(torch.device("meta"), torch.float32, repeats=1) > 0
    assert sizes == [(2048, 2048), (2048, 2048), (8192, 8192), (8192, 8192)]
