"""DCGAN/WGAN-GP networks and losses against the reference numbers and the papers' math."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ganforge.presets import load_config, resolve
from ganforge.layers.same_padding import SameConv2d, SameConvTranspose2d, same_padding
from ganforge.layers.norm import CrossRankBatchNorm2d, InstanceNorm2d, instance_norm, to_channels_last
from ganforge.losses import discriminator_loss, generator_loss, gradient_penalty
from ganforge.models.dcgan.networks import DcganDiscriminator, DcganGenerator, DcganModelConfig
from ganforge.runtime.precision import Precision
from ganforge.train.phases import count_parameters
from gfhelpers import REPO, assert_official_output, check_exports, fill_tflib_params, tiny_overrides

# Made by scripts/wgan_gp_official_reference.py from igul222/improved_wgan_training's gan_64x64.py (TensorFlow).
IMPROVED_WGAN_REFERENCE = REPO / "tests" / "data" / "wgan_gp_official.npz"


def test_parameter_counts_match_the_reference_dcgan():
    # PyTorch's DCGAN example (nz=100, ngf=ndf=64, 64x64): G 3,576,704 and D 2,765,568 parameters.
    cfg = DcganModelConfig()
    assert count_parameters(DcganGenerator(cfg)) == 3_576_704
    assert count_parameters(DcganDiscriminator(cfg)) == 2_765_568


def test_improved_wgan_parameter_counts_match_the_official_dcgan_pair():
    # gan_64x64.py's DCGANGenerator / DCGANDiscriminator at DIM 64, z 128, as TensorFlow counts their
    # trainable variables (its G also holds 1,920 batch-norm moving averages: buffers here).
    cfg = DcganModelConfig(arch="improved_wgan", z_dim=128, d_norm="layer")
    assert count_parameters(DcganGenerator(cfg)) == 5_364_739
    assert count_parameters(DcganDiscriminator(cfg)) == 4_316_545


def _load_tflib_values(G: DcganGenerator, D: DcganDiscriminator, values: dict) -> None:
    """tflib's variables into our modules: linear weights (in, out) -> (out, in); conv filters
    (k, k, in, out) and transposed-conv filters (k, k, out, in) -> PyTorch's layouts."""
    t = {k: torch.from_numpy(v) for k, v in values.items()}
    g_norms = [m for m in G.main if isinstance(m, torch.nn.BatchNorm2d)]
    g_convs = [m for m in G.main if isinstance(m, torch.nn.ConvTranspose2d)]
    d_norms = [m for m in D.main if isinstance(m, torch.nn.GroupNorm)]
    d_convs = [m for m in D.main if isinstance(m, torch.nn.Conv2d)]
    pairs = [(G.input.weight, t["Generator.Input.W"].T), (G.input.bias, t["Generator.Input.b"]),
             (D.output.weight, t["Discriminator.Output.W"].T), (D.output.bias, t["Discriminator.Output.b"])]
    for i, m in enumerate(g_norms, 1):
        pairs += [(m.weight, t[f"Generator.BN{i}.scale"]), (m.bias, t[f"Generator.BN{i}.offset"])]
    for i, m in enumerate(g_convs, 2):
        pairs += [(m.weight, t[f"Generator.{i}.Filters"].permute(3, 2, 0, 1)), (m.bias, t[f"Generator.{i}.Biases"])]
    for i, m in enumerate(d_norms, 2):
        pairs += [(m.weight, t[f"Discriminator.BN{i}.scale"]), (m.bias, t[f"Discriminator.BN{i}.offset"])]
    for i, m in enumerate(d_convs, 1):
        pairs += [(m.weight, t[f"Discriminator.{i}.Filters"].permute(3, 2, 0, 1)),
                  (m.bias, t[f"Discriminator.{i}.Biases"])]
    assert len(pairs) == len(values) == len(list(G.parameters())) + len(list(D.parameters()))
    with torch.no_grad():
        for param, value in pairs:
            param.copy_(value)


def test_improved_wgan_networks_give_the_official_outputs():
    """The official TensorFlow DCGAN pair and ours, same weights and inputs: generator output (batch
    statistics), critic outputs, and the critic's input gradient that the penalty uses."""
    ref = np.load(IMPROVED_WGAN_REFERENCE)
    shapes = {str(n): tuple(int(d) for d in str(s).split(",")) for n, s in zip(ref["names"], ref["shapes"])}
    cfg = DcganModelConfig(arch="improved_wgan", z_dim=128, g_channels=4, d_channels=4, d_norm="layer")
    G, D = DcganGenerator(cfg), DcganDiscriminator(cfg)
    _load_tflib_values(G, D, fill_tflib_params(shapes, seed=0))
    x = torch.from_numpy(ref["x"]).requires_grad_()
    critic_real = D(x)
    (input_grad,) = torch.autograd.grad(critic_real.sum(), x)
    fake = G(torch.from_numpy(ref["z"]))  # train mode: batch statistics, as the official graph
    assert_official_output(fake, torch.from_numpy(ref["G"]))
    assert_official_output(critic_real, torch.from_numpy(ref["D"]))
    assert_official_output(D(fake), torch.from_numpy(ref["D_fake"]))
    assert_official_output(input_grad, torch.from_numpy(ref["D_input_grad"]))
    assert (fake.abs() < 0.9).float().mean() > 0.5  # not a saturated tanh that would hide differences


@pytest.mark.slow
def test_improved_wgan_preset_trains_in_bf16_with_a_bf16_penalty_and_exports(tmp_path):
    # The wgan_gp/imagenet64 networks at a unit-test size, with both speed settings of a bf16 CPU run.
    from ganforge.train.trainer import train

    cfg = load_config("wgan_gp/imagenet64", tiny_overrides(
        tmp_path, name="run", **{"data.name": "shapes", "model.z_dim": 128, "runtime.precision": "bf16",
                                 "runtime.penalty_precision": "autocast", "train.steps": 2}))
    assert cfg.model.arch == "improved_wgan" and cfg.recipe.betas == (0.0, 0.9)
    train(cfg)
    rows = [r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) if "D/gp" in r]
    assert rows and all(math.isfinite(r["D/gp"]) and r["D/gp"] > 0 for r in rows)
    check_exports(tmp_path / "run", seed=0, out_dir=tmp_path / "exports", atol=1e-4)


@pytest.mark.parametrize("size, kernel, stride, expected", [(64, 5, 2, (1, 2)), (7, 3, 2, (1, 1)), (8, 3, 2, (0, 1)),
                                                            (5, 5, 1, (2, 2)), (4, 1, 2, (0, 0))])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    # TensorFlow's SAME: output ceil(n / s), total padding (out - 1) * s + k - n, the odd pixel after.
    assert same_padding(size, kernel, stride) == expected
    conv = SameConv2d(1, 1, kernel, stride)
    assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // stride)


def test_same_conv_transpose_adds_its_bias_after_the_crop():
    # The bias is added outside the convolution (a bf16 transposed convolution with a bias is slow on
    # the CPU); outputs, dtypes and the bias gradient must be those of the fused one.
    torch.manual_seed(0)
    conv = SameConvTranspose2d(8, 4, 5, 2)
    x = torch.randn(2, 8, 6, 6)
    top, _ = same_padding(12, 5, 2)
    fused = torch.nn.functional.conv_transpose2d(x, conv.weight, conv.bias, 2)[..., top:top + 12, top:top + 12]
    out = conv(x)
    assert out.shape == (2, 4, 12, 12) and torch.allclose(out, fused, atol=1e-6)
    (bias_grad,) = torch.autograd.grad(out.square().sum(), conv.bias)
    assert torch.allclose(bias_grad, (2 * fused).sum((0, 2, 3)), rtol=1e-5)
    with torch.autocast("cpu", torch.bfloat16):
        low = conv(x)
    assert low.dtype == torch.bfloat16 and torch.allclose(low.float(), fused, atol=0.05)
    plain = SameConvTranspose2d(8, 4, 5, 2, bias=False)
    expected = torch.nn.functional.conv_transpose2d(x, plain.weight, None, 2)[..., top:top + 12, top:top + 12]
    assert torch.equal(plain(x), expected)


@pytest.mark.parametrize("size, widths", [(32, [256, 128, 64]), (64, [512, 256, 128, 64]), (128, [1024, 512, 256, 128, 64])])
def test_generator_stages_and_output(size, widths):
    cfg = DcganModelConfig(image_size=size)
    g = DcganGenerator(cfg)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == widths + [3]
    (z,) = g.make_inputs(2, torch.Generator().manual_seed(0))
    x = g(z)
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1.0
    d = DcganDiscriminator(cfg)
    assert d(x).shape == (2,)


def test_wgan_gp_critic_has_no_batch_norm():
    cfg = resolve({"family": "wgan_gp"})
    critic = DcganDiscriminator(cfg.model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in critic.modules())  # layer norm
    none = DcganDiscriminator(DcganModelConfig(d_norm="none"))
    assert all(m.bias is not None for m in none.modules() if isinstance(m, torch.nn.Conv2d))


def test_gradient_penalty_reaches_the_critic_weights():
    torch.manual_seed(0)
    critic = DcganDiscriminator(DcganModelConfig(image_size=32, d_channels=8, d_norm="layer"))
    real, fake = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    alpha = torch.rand(4, 1, 1, 1)
    gp = gradient_penalty(critic, real, fake, alpha)
    assert gp.requires_grad
    gp.backward()
    grads = [p.grad for p in critic.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0

    # The common bug: the same penalty without create_graph gives the critic no gradient at all.
    critic.zero_grad(set_to_none=True)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=False)
    buggy = (g.flatten(1).norm(dim=1) - 1).square().mean()
    assert not buggy.requires_grad


def test_gradient_penalty_matches_a_closed_form():
    # For a linear critic D(x) = <w, x>, the gradient is w everywhere: GP = (||w|| - 1)^2.
    w = torch.randn(3, 4, 4)
    gp = gradient_penalty(lambda x: (x * w).flatten(1).sum(1), torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4),
                          torch.rand(5, 1, 1, 1))
    assert torch.allclose(gp, (w.norm() - 1) ** 2, rtol=1e-5)


@pytest.mark.parametrize("setting, conv_dtype", [("fp32", torch.float32), ("autocast", torch.bfloat16)])
def test_penalty_precision_sets_the_critic_dtype_and_stays_close_to_fp32(setting, conv_dtype):
    """runtime.penalty_precision: fp32 turns a bf16 run's autocast off for the penalty (the official
    codes); autocast runs the critic's double backward in bf16 with a penalty close to fp32's."""
    torch.manual_seed(0)
    critic = DcganDiscriminator(DcganModelConfig(image_size=32, d_channels=16, d_norm="layer"))
    real, fake, alpha = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32), torch.rand(8, 1, 1, 1)
    reference = gradient_penalty(critic, real, fake, alpha)
    (reference_grad,) = torch.autograd.grad(reference, critic.main[0].weight)
    seen = []
    hook = critic.main[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    prec = Precision("bf16", torch.device("cpu"), setting)
    with prec.autocast(), prec.penalty():  # the recipes call the penalty inside the step's autocast
        gp = gradient_penalty(critic, real, fake, alpha)
    hook.remove()
    assert seen == [conv_dtype] and gp.dtype == torch.float32
    (grad,) = torch.autograd.grad(gp, critic.main[0].weight)
    assert gp.item() == pytest.approx(reference.item(), rel=0.02 if setting == "autocast" else 1e-6)
    cosine = torch.nn.functional.cosine_similarity(grad.flatten(), reference_grad.flatten(), dim=0)
    assert cosine > (0.99 if setting == "autocast" else 0.999999)


def test_adversarial_losses():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sp = torch.nn.functional.softplus
    assert torch.allclose(discriminator_loss(real, fake, "bce"), sp(-real).mean() + sp(fake).mean())
    assert torch.allclose(generator_loss(fake, "bce"), sp(-fake).mean())
    assert torch.allclose(discriminator_loss(real, fake, "wgan"), fake.mean() - real.mean())
    assert torch.allclose(discriminator_loss(real, fake, "hinge"), torch.tensor((0 + 1) / 2 + (0 + 2) / 2))
    with pytest.raises(ValueError, match="not one of bce, hinge, wgan"):
        generator_loss(fake, "lsgan")


def test_cross_rank_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    ours, ref = CrossRankBatchNorm2d(5), torch.nn.BatchNorm2d(5)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(6, 5, 3, 3)
    assert torch.equal(ours(x), ref(x))
    assert torch.equal(ours.running_var, ref.running_var)


@pytest.mark.parametrize("track", [False, True])
def test_instance_norm_keeps_channels_last_and_equals_pytorch(track):
    """Channels_last inputs (the fast layout for bf16 convolutions on CPU) stay channels_last; values,
    gradients and running-stat updates equal nn.InstanceNorm2d's, in train and eval mode; contiguous
    inputs take PyTorch's own kernel (bit-identical)."""
    torch.manual_seed(0)
    ref = torch.nn.InstanceNorm2d(6, affine=True, track_running_stats=track)
    ours = InstanceNorm2d(6, affine=True, track_running_stats=track)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5), ref.bias.uniform_(-1, 1)
    ours.load_state_dict(ref.state_dict())
    x = (torch.randn(3, 6, 5, 7) * 3 + 2).requires_grad_()
    assert torch.equal(ours(x.contiguous(memory_format=torch.channels_last)), ref(x))  # off until switched
    to_channels_last(ours)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(3, 6, 5, 7)
    for mode in ("train", "eval"):
        getattr(ref, mode)(), getattr(ours, mode)()
        y_ref, y = ref(x), ours(x_cl)
        assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        g_ref = torch.autograd.grad(y_ref, (x, ref.weight, ref.bias), grad)
        g = torch.autograd.grad(y, (x_cl, ours.weight, ours.bias), grad)
        for a, b in zip(g, g_ref):  # input, weight and bias
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        if track:
            torch.testing.assert_close(ours.running_mean, ref.running_mean)
            torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.train(), ref.train()
    assert torch.equal(ours(x), ref(x))  # contiguous: PyTorch's kernel
    with torch.autocast("cpu", torch.bfloat16):
        y16 = ours(x_cl.detach().bfloat16())
    assert y16.dtype == torch.bfloat16 and y16.is_contiguous(memory_format=torch.channels_last)
    # an in-place activation after it, as in StarGAN's and StarGAN v2's blocks, keeps the right gradient
    (g_relu,) = torch.autograd.grad(torch.relu_(ours(x_cl)), x_cl, grad)
    (g_relu_ref,) = torch.autograd.grad(torch.relu(ref(x)), x, grad)
    torch.testing.assert_close(g_relu, g_relu_ref, rtol=1e-4, atol=1e-5)
    x64 = torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    w64, b64 = torch.rand(3, dtype=torch.float64) + 0.5, torch.randn(3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, w, b: instance_norm(a, weight=w, bias=b),
                                    (x64.requires_grad_(), w64.requires_grad_(), b64.requires_grad_()))
    torch.testing.assert_close(y16.float(), ref(x).detach(), rtol=2e-2, atol=2e-2)
