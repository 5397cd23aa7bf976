"""``ganforge.layers.conv``: small-output convolutions as one matrix product on the CPU."""

from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F

from ganforge.layers.conv import Conv2d, conv2d_as_matmul, set_matmul_max_positions
from ganforge.layers.same_padding import SameConv2d, same_padding

# (in, out, kernel, stride, padding, input H, W): StarGAN's last D layers, StoryGAN's and WGAN-GP's
# 4 x 4 critics, a 1 x 1 head, a non-square input.
GEOMETRIES = [
    (6, 8, 4, 2, 1, 4, 4),
    (5, 7, 3, 1, 1, 2, 2),
    (6, 3, 2, 1, 0, 2, 2),
    (4, 5, 4, 1, 0, 4, 4),
    (3, 4, 5, 2, 0, 11, 9),
    (3, 4, (3, 2), (2, 1), (1, 0), 5, 4),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("c_in,c_out,kernel,stride,pad,h,w", GEOMETRIES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_matmul_convolution_equals_pytorchs_with_its_first_and_second_gradients(c_in, c_out, kernel, stride, pad,
                                                                               h, w, channels_last):
    torch.manual_seed(0)
    x = torch.randn(3, c_in, h, w, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    weight = torch.randn(c_out, c_in, *_pair(kernel), dtype=torch.float64, requires_grad=True)
    bias = torch.randn(c_out, dtype=torch.float64, requires_grad=True)
    ph, pw = _pair(pad)

    def penalty(conv):
        # WGAN-GP's pattern: a gradient with respect to the input, then the gradient of its norm.
        out = conv(x, weight, bias)
        (gx,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        return out, gx, torch.autograd.grad(gx.square().sum() + out.sum(), (x, weight, bias))

    ref = penalty(lambda a, b, c: F.conv2d(a, b, c, _pair(stride), (ph, pw)))
    ours = penalty(lambda a, b, c: conv2d_as_matmul(a, b, c, _pair(stride), (ph, ph, pw, pw)))
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])
    for a, b in zip(ours[2], ref[2]):
        torch.testing.assert_close(a, b)
    assert ours[0].is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_im2col_and_col2im_pass_gradcheck_and_gradgradcheck():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)

    def fn(a, b):
        return conv2d_as_matmul(a, b, None, (2, 1), (1, 2, 0, 1))

    assert torch.autograd.gradcheck(fn, (x, weight))
    assert torch.autograd.gradgradcheck(fn, (x, weight))


def test_layer_takes_the_matmul_path_only_for_small_cpu_outputs(monkeypatch):
    import ganforge.layers.conv as conv_module

    calls = []
    real = conv_module.conv2d_as_matmul
    monkeypatch.setattr(conv_module, "conv2d_as_matmul", lambda *a: calls.append(a[0].shape) or real(*a))
    layer = Conv2d(8, 16, 4, 2, 1)
    small, large = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 16, 16)  # 4 x 4 and 8 x 8 outputs
    ref_small = F.conv2d(small, layer.weight, layer.bias, 2, 1)
    torch.testing.assert_close(layer(small), ref_small, rtol=1e-5, atol=1e-5)
    layer(large)
    assert calls == [small.shape]  # 16 positions take the matmul, 64 do not
    set_matmul_max_positions(layer, 0)
    layer(small)
    assert len(calls) == 1
    set_matmul_max_positions(layer, 64)
    layer(large)
    assert calls[-1] == large.shape
    with torch.no_grad():
        program = torch.export.export(layer, (small,))  # an exported graph holds a plain convolution
    assert "aten.conv2d" in str(program.graph) and "aten.mm" not in str(program.graph)
    assert len(calls) == 2
    assert set(layer.state_dict()) == {"weight", "bias"}


def test_matmul_convolution_under_bf16_autocast_is_bf16_and_close():
    torch.manual_seed(0)
    layer = Conv2d(64, 32, 4, 2, 1)
    x = torch.randn(4, 64, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = layer(x)
        set_matmul_max_positions(layer, 0)
        ref = layer(x)
    assert ours.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), ref.float(), rtol=0.02, atol=0.05)


def test_same_conv_puts_tensorflows_padding_into_the_columns():
    torch.manual_seed(0)
    layer = SameConv2d(4, 6, 5, 2).double()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)  # 4 x 4 output: the matmul path
    top, bottom = same_padding(8, 5, 2)
    ref = F.conv2d(F.pad(x, (top, bottom, top, bottom)), layer.weight, layer.bias, 2)
    assert (top, bottom) == (1, 2)
    torch.testing.assert_close(layer(x), ref)
    set_matmul_max_positions(layer, 0)
    torch.testing.assert_close(layer(x), ref)


def test_runtime_setting_reaches_the_networks_and_a_penalty_step_matches_pytorchs_convolution(tmp_path):
    from gfhelpers import tiny_overrides

    from ganforge.presets import load_config
    from ganforge.train.trainer import Trainer

    def one_step(positions: int) -> Trainer:
        # The official WGAN-GP pair at 32 px: the critic's last convolution has 4 x 4 outputs (the
        # matmul), the others 16 x 16 and 8 x 8.
        cfg = load_config("wgan_gp/imagenet64", tiny_overrides(tmp_path, **{
            "data.name": "shapes", "runtime.conv_matmul_positions": positions}))
        trainer = Trainer(cfg, run_dir=None)
        trainer.train_step()
        return trainer

    matmul, native = one_step(16), one_step(0)
    convs = [m for m in matmul.recipe.networks["D"].modules() if isinstance(m, Conv2d)]
    assert len(convs) == 3 and {m.matmul_max_positions for m in convs} == {16}
    assert {m.matmul_max_positions for m in native.recipe.networks["D"].modules() if isinstance(m, Conv2d)} == {0}
    # n_critic 2 updates of D with the gradient penalty (a double backward through both paths), then G.
    for (name, a), b in zip(matmul.recipe.networks["D"].named_parameters(), native.recipe.networks["D"].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_weight_matrix_is_made_once_per_reuse_block_and_fresh_after_a_fused_adam_step(monkeypatch):
    import ganforge.layers.conv as conv_module
    from ganforge.layers.conv import reuse_weight_matrices

    made = []
    real = conv_module.weight_matrix
    monkeypatch.setattr(conv_module, "weight_matrix", lambda *a: made.append(1) or real(*a))
    torch.manual_seed(0)
    layer = Conv2d(8, 4, 4, 2, 1)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)  # updates in place without a version bump
    x = torch.randn(2, 8, 4, 4)
    for _ in range(2):
        opt.zero_grad()
        with reuse_weight_matrices(), torch.autocast("cpu", dtype=torch.bfloat16):
            outs = [layer(x), layer(x * 2), layer(x * 3)]  # real, fake, interpolates
            sum(o.float().square().sum() for o in outs).backward()
        opt.step()
    assert len(made) == 2  # once per block, not once per call
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.conv2d(x, layer.weight, layer.bias, 2, 1)  # the updated weights
        with reuse_weight_matrices():
            ours = layer(x)
    torch.testing.assert_close(ours.float(), ref.float(), rtol=0.02, atol=0.05)
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    copy = deepcopy(layer)  # the cached matrix is not copied (deepcopy refuses non-leaf tensors)
    assert copy._matrix_cache.matrix is None
