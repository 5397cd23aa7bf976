"""DiffAugment: the official transforms, differentiable, on every image D sees, resumable."""

from __future__ import annotations

import pytest
import torch

from gfhelpers import assert_states_equal, tiny_overrides
from ganforge.config import ConfigError
from ganforge.layers import diffaugment as da
from ganforge.presets import load_config
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.train.trainer import Trainer, resume, train


def _images(n=6, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_off_is_the_identity_and_unknown_policies_are_named():
    x = _images()
    assert da.diff_augment(x, "") is x
    with pytest.raises(ValueError, match="'flip' is not one of color, translation, cutout"):
        da.parse_policy("color,flip")


def test_translation_moves_whole_images_and_brings_in_zeros():
    x = _images(n=64, size=16) + 3  # positive everywhere: a zero can only come from outside
    out = da.translation(x, torch.Generator().manual_seed(1))
    for img, src in zip(out, x):
        rows = (img[0] != 0).any(1).nonzero().flatten()
        cols = (img[0] != 0).any(0).nonzero().flatten()
        dy, dx = 0, 0
        # locate the shift: the kept block equals the source block shifted by (dy, dx)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros_like(src)
                ys, xs = slice(max(0, -dy), 16 - max(0, dy)), slice(max(0, -dx), 16 - max(0, dx))
                yd, xd = slice(max(0, dy), 16 - max(0, -dy)), slice(max(0, dx), 16 - max(0, -dx))
                shifted[:, ys, xs] = src[:, yd, xd]
                if torch.equal(shifted, img):
                    break
            else:
                continue
            break
        else:
            pytest.fail("an output is not a shift of its input by at most 2 px (16 px x 1/8)")
        assert len(rows) >= 14 and len(cols) >= 14


def test_cutout_zeroes_the_square_the_official_indexing_names():
    x = _images(n=50, size=16) + 3
    out = da.cutout(x, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    size = 8  # half of 16
    tops = torch.randint(0, 16 + 1, (50,), generator=g)  # the official draw: [0, side + (1 - size % 2))
    lefts = torch.randint(0, 16 + 1, (50,), generator=g)
    for k in range(50):
        expected = torch.ones(16, 16)
        rows = (torch.arange(size) + tops[k] - size // 2).clamp(0, 15)
        cols = (torch.arange(size) + lefts[k] - size // 2).clamp(0, 15)
        expected[rows[:, None], cols[None, :]] = 0
        assert torch.equal(out[k] == 0, (expected == 0).expand(3, -1, -1)), k


def test_color_matches_the_papers_formulas():
    x = _images()
    g = torch.Generator().manual_seed(3)
    out = da.color(x, g)
    g = torch.Generator().manual_seed(3)
    u = [torch.rand(6, 1, 1, 1, generator=g) for _ in range(3)]
    y = x + (u[0] - 0.5)
    m = y.mean(1, keepdim=True)
    y = (y - m) * (u[1] * 2) + m
    m = y.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(out, (y - m) * (u[2] + 0.5) + m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_all_policies_keep_shape_dtype_layout_and_pass_gradients(dtype, channels_last):
    x = _images().to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    out = da.diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    out.float().square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_discriminator_sees_augmented_reals_and_fakes_in_every_step(tmp_path):
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, **{"train.diffaugment": "translation,cutout"}))
    trainer = Trainer(cfg)
    seen = []
    trainer.recipe.networks["D"].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()),
                                                           prepend=True)  # before the augmentation
    trainer.recipe.networks["D"].register_forward_hook(lambda m, args, out: seen.append(("in", args[0].detach())))
    trainer.train_step()
    trainer.stream.close()
    pairs = [(seen[i], seen[i + 1][1]) for i in range(0, len(seen), 2)]
    assert len(pairs) >= 3, "D steps (real, fake, interpolates) and the G step"
    assert all(not torch.equal(before, after) for before, after in pairs), "every call is augmented"


def test_a_bad_policy_or_a_family_without_image_judge_stops_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"train.diffaugment='colour': DiffAugment policy 'colour' is not one of"):
        Trainer(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, **{"train.diffaugment": "colour"})))


def test_resume_with_diffaugment_continues_bit_for_bit(tmp_path):
    extra = {"train.diffaugment": "color,translation,cutout", "train.steps": 6, "train.ckpt_every": 3}
    straight = train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "a", name="r", **extra)))
    first = train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "b", name="r", **{**extra, "train.steps": 3})))
    assert first.step == 3
    resumed = resume(tmp_path / "b" / "r", ["train.steps=6"])
    assert_states_equal(load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint))
    off = train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "c", name="r", **{**extra, "train.diffaugment": ""})))
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(latest_checkpoint(off.run_dir / "checkpoints"))
    assert not torch.equal(a["networks"]["D"]["main.0.weight"], b["networks"]["D"]["main.0.weight"])


FAMILY_STEPS = {  # small networks of each family's shapes preset, one step each
    "dcgan/shapes": ["model.image_size=32", "data.image_size=32", "model.g_channels=8", "model.d_channels=8"],
    "biggan/shapes": ["model.g_ch=8", "model.d_ch=8", "runtime.precision=bf16"],
    "stargan/shapes": ["model.g_conv_dim=8", "model.d_conv_dim=8", "model.g_repeat_num=1", "model.image_size=32",
                       "data.image_size=32", "recipe.sample_images=2"],
    "starganv2/shapes": ["model.image_size=16", "data.image_size=16", "model.base_dim=8", "model.max_conv_dim=16",
                         "recipe.sample_images=3", "runtime.precision=bf16"],
    "storygan/shapes": ["model.gf_dim=4", "model.df_dim=4", "recipe.image_batch_size=6", "recipe.sample_stories=2"],
}


@pytest.mark.parametrize("preset", sorted(FAMILY_STEPS))
def test_every_family_trains_a_step_with_diffaugment(preset):
    cfg = load_config(preset, FAMILY_STEPS[preset] + ["data.num_workers=0", "train.batch_size=4", "eval.every=0",
                                                      "train.diffaugment=color,translation,cutout"])
    trainer = Trainer(cfg)
    totals = trainer.train_step()
    trainer.stream.close()
    assert all(torch.isfinite(t).all() for _, t in totals)
