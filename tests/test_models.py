"""DCGAN/WGAN-GP networks and losses against the reference numbers and the papers' math."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import resolve
from ganforge.layers.norm import CrossRankBatchNorm2d, InstanceNorm2d, to_channels_last
from ganforge.losses import discriminator_loss, generator_loss, gradient_penalty
from ganforge.models.dcgan.networks import DcganDiscriminator, DcganGenerator, DcganModelConfig
from ganforge.train.phases import count_parameters


def test_parameter_counts_match_the_reference_dcgan():
    # PyTorch's DCGAN example (nz=100, ngf=ndf=64, 64x64): G 3,576,704 and D 2,765,568 parameters.
    cfg = DcganModelConfig()
    assert count_parameters(DcganGenerator(cfg)) == 3_576_704
    assert count_parameters(DcganDiscriminator(cfg)) == 2_765_568


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
        (g_ref,) = torch.autograd.grad(y_ref, x, grad)
        (g,) = torch.autograd.grad(y, x_cl, grad)
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)
        if track:
            torch.testing.assert_close(ours.running_mean, ref.running_mean)
            torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.train(), ref.train()
    assert torch.equal(ours(x), ref(x))  # contiguous: PyTorch's kernel
    with torch.autocast("cpu", torch.bfloat16):
        y16 = ours(x_cl.detach().bfloat16())
    assert y16.dtype == torch.bfloat16 and y16.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y16.float(), ref(x).detach(), rtol=2e-2, atol=2e-2)
