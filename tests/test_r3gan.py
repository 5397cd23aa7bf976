"""R3GAN: official architecture and counts, the RpGAN + R1 + R2 loop against the official one, the
restricted import of official snapshots, schedules, precision per stage, resume and export."""

from __future__ import annotations

import math
import pickle
import sys

import pytest
import torch

from gfhelpers import (REPO, assert_latest_checkpoints_equal, assert_official_output, check_exports, fill_by_key_order,
                       grid_size)
from ganforge.config import ConfigError
from ganforge.layers.augment_pipe import R3GAN_AUGMENT, AugmentPipe, sample_bilinear
from ganforge.models.r3gan.losses import discriminator_loss, zero_centered_penalty
from ganforge.models.r3gan.networks import R3ganDiscriminator, R3ganGenerator, R3ganModelConfig
from ganforge.models.r3gan.official import ganforge_key, import_official, read_snapshot
from ganforge.models.r3gan.recipe import Schedules, cosine_decay
from ganforge.presets import load_config
from ganforge.run.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from ganforge.train.phases import count_parameters
from ganforge.train.trainer import Trainer, resume, train

# Made by scripts/r3gan_official_reference.py from brownvc/R3GAN (see its docstring).
OFFICIAL = REPO / "tests" / "data" / "r3gan_official"
# The small network of the step reference: 16 px, widths 24, 16, 16, class-conditional on 3 classes.
SMALL = {"model.image_size": 16, "model.widths": "[24,16,16]", "model.cardinalities": "[4,4,2]",
         "model.blocks": "[1,2,1]", "model.noise_dim": 8, "model.num_classes": 3, "model.bf16_stages": "[]",
         "data.image_size": 16}


def tiny(tmp_path, **extra) -> list[str]:
    base = {"out_dir": str(tmp_path), "name": "run", "data.length": 64, "data.num_workers": 0,
            "train.batch_size": 4, "train.steps": 4, "train.log_every": 1, "train.sample_every": 2,
            "train.ckpt_every": 2, "train.sample_count": 4, "train.progress": False, "train.tensorboard": False,
            "runtime.deterministic": True, "runtime.device": "cpu", "runtime.precision": "fp32",
            "model.widths": "[8,8,8]", "model.cardinalities": "[2,2,2]", "model.blocks": "[1,1,1]",
            "model.image_size": 16, "data.image_size": 16, "recipe.decay_nimg": 16, "recipe.ema_nimg": 8}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


# ----------------------------------------------------------------------------------------------
# networks


@pytest.mark.parametrize("preset, g_count, d_count", [("r3gan/cifar10", 20_781_952, 21_280_512),
                                                      ("r3gan/ffhq64", 22_429_824, 22_381_440)])
def test_parameter_counts_match_the_official_presets(preset, g_count, d_count):
    m = load_config(preset, []).model
    assert count_parameters(R3ganGenerator(m)) == g_count
    assert count_parameters(R3ganDiscriminator(m)) == d_count


def _fill_parameters(net: torch.nn.Module, seed: int) -> None:
    buffers = {k: v.clone() for k, v in net.named_buffers()}  # the resampling kernels keep their values
    fill_by_key_order(net, seed)
    net.load_state_dict({**net.state_dict(), **buffers})


@pytest.mark.slow
@pytest.mark.parametrize("name, preset", [("cifar10", "r3gan/cifar10"), ("ffhq64", "r3gan/ffhq64")])
def test_outputs_equal_the_official_networks(name, preset):
    """The official-size networks, filled with the same seeded values in key order as the reference
    script filled the official ones, give the official outputs (every stage in float32)."""
    ref = torch.load(OFFICIAL / "networks.pt", weights_only=True)
    m = load_config(preset, []).model
    G, D = R3ganGenerator(m).eval(), R3ganDiscriminator(m).eval()
    assert ref[f"{name}/counts"].tolist() == [count_parameters(G), count_parameters(D)]
    _fill_parameters(G, 0)
    _fill_parameters(D, 1)
    with torch.no_grad():
        assert_official_output(G(ref[f"{name}/z"], ref[f"{name}/y"]), ref[f"{name}/G"])
        assert_official_output(D(ref[f"{name}/x"], ref[f"{name}/y"]), ref[f"{name}/D"])


def test_config_errors_name_the_value():
    with pytest.raises(ConfigError, match="cardinalities has 2 entries but model.widths has 3"):
        R3ganModelConfig(image_size=16, widths=[8, 8, 8], cardinalities=[2, 2], blocks=[1, 1, 1]).validate()
    with pytest.raises(ConfigError, match="3 groups do not divide the 16 expanded channels"):
        R3ganModelConfig(image_size=16, widths=[8, 8, 8], cardinalities=[2, 3, 2], blocks=[1, 1, 1]).validate()
    with pytest.raises(ConfigError, match="image_size=32 but 3 stages make 16 px"):
        R3ganModelConfig(image_size=32, widths=[8, 8, 8], cardinalities=[2, 2, 2], blocks=[1, 1, 1]).validate()
    with pytest.raises(ConfigError, match="runtime.precision=fp16"):
        load_config("r3gan/shapes", ["runtime.precision=fp16"])


def test_residual_blocks_start_as_the_identity_and_bf16_stages_run_in_bf16():
    m = R3ganModelConfig(image_size=16, widths=[8, 8, 8], cardinalities=[2, 2, 2], blocks=[1, 1, 1],
                         num_classes=3, bf16_stages=[-1])
    G, D = R3ganGenerator(m), R3ganDiscriminator(m)
    block = G.main_layers[1].layers[1]
    x = torch.randn(2, 8, 8, 8)
    assert torch.equal(block(x), x)  # the projection starts at zero, as the official init
    z, y = G.make_inputs(2, torch.Generator().manual_seed(0))
    G.set_reduced_precision(True)
    D.set_reduced_precision(True)
    assert G.synthesize(z, y).dtype == torch.bfloat16 and G(z, y).dtype == torch.float32
    assert [s.compute_dtype for s in D.main_layers] == [torch.bfloat16, None, None]  # the mirror stage: 16 px
    assert D(G(z, y), y).dtype == torch.float32


# ----------------------------------------------------------------------------------------------
# losses and schedules


def test_penalties_are_the_squared_input_gradient_norms():
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    w = torch.randn(2, 4, 4)
    scores = (x * w).sum([1, 2, 3]) ** 2 / 2  # d/dx = s * w with s = (x * w).sum
    s = (x * w).sum([1, 2, 3]).detach()
    expected = s ** 2 * (w ** 2).sum()
    assert torch.allclose(zero_centered_penalty(x, scores), expected)


def test_discriminator_loss_is_rpgan_plus_half_gamma_r1_r2():
    m = R3ganModelConfig(image_size=16, widths=[8, 8, 8], cardinalities=[2, 2, 2], blocks=[1, 1, 1])
    torch.manual_seed(0)
    G, D = R3ganGenerator(m), R3ganDiscriminator(m)
    fill_by_key_order(D, 3)
    z, real = torch.randn(4, 64), torch.randn(4, 3, 16, 16)
    loss0, parts0 = discriminator_loss(G, D, z, real, None, gamma=0.0)
    loss1, parts1 = discriminator_loss(G, D, z, real, None, gamma=2.0)
    assert loss0.item() == pytest.approx(parts0["adversarial"].item())
    assert parts0["adversarial"].item() == pytest.approx(
        torch.nn.functional.softplus(-parts0["real_minus_fake"]).item(), rel=0.2)  # mean of softplus vs softplus of mean
    assert loss1.item() == pytest.approx((parts1["adversarial"] + parts1["r1"] + parts1["r2"]).item(), rel=1e-6)
    assert parts1["r1"] > 0 and parts1["r2"] > 0


def test_schedules_follow_the_official_cosine_decay():
    r = load_config("r3gan/cifar10", []).recipe
    sched = Schedules(r, 512)
    assert sched.lr(0) == 2e-4 and sched.beta2(0) == 0.9 and sched.gamma(0) == 0.05
    assert sched.ema_decay(0) == 0.0  # a half-life of 0 images: the EMA copies G
    half = int(1e7 / 512)
    nimg = half * 512
    assert sched.lr(half) == pytest.approx(2e-4 + (1 - 0.5 * (1 + math.cos(math.pi * nimg / 2e7))) * (5e-5 - 2e-4))
    assert sched.lr(10 ** 6) == 5e-5 and sched.gamma(10 ** 6) == 0.005 and sched.beta2(10 ** 6) == 0.99
    assert sched.ema_decay(10 ** 6) == pytest.approx(0.5 ** (512 / 5e6))
    assert cosine_decay(5, 1.0, 0.0, 10) == pytest.approx(0.5)


def test_augment_pipe_equals_the_official_one():
    """StyleGAN2-ADA's pipeline with R3GAN's --aug=1 settings, on the same seeded draws, gives the official
    pipeline's images (colour and grey, two probabilities)."""
    ref = torch.load(OFFICIAL / "augment.pt", weights_only=True)
    pipe = AugmentPipe(R3GAN_AUGMENT)
    for channels in (3, 1):
        for p in (0.6, 1.0):
            out = pipe(ref[f"c{channels}/images"], p, torch.Generator().manual_seed(100 + channels))
            assert_official_output(out, ref[f"c{channels}/p{p}"])


def test_augment_pipe_is_differentiable_twice_and_seeded():
    pipe = AugmentPipe(R3GAN_AUGMENT)
    x = torch.randn(3, 3, 16, 16, requires_grad=True)
    w = torch.randn(3, 16, 16)
    score = (pipe(x, 1.0, torch.Generator().manual_seed(0)) * w).sum([1, 2, 3]) ** 2
    r1 = zero_centered_penalty(x, score)  # the penalty differentiates through the augmentation
    r1.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    a = pipe(x.detach(), 0.7, torch.Generator().manual_seed(4))
    assert torch.equal(a, pipe(x.detach(), 0.7, torch.Generator().manual_seed(4)))
    assert not torch.equal(a, pipe(x.detach(), 0.7, torch.Generator().manual_seed(5)))
    # p = 0 changes nothing but the resampling round trip (the official pipeline runs it at any p)
    assert (pipe(x.detach(), 0.0, torch.Generator().manual_seed(4)) - x).abs().max() < 0.05


def test_bilinear_gathers_equal_grid_sample():
    x = torch.randn(2, 3, 9, 7)
    grid = torch.rand(2, 5, 6, 2) * 2.4 - 1.2  # some points outside the image: zeros there
    expected = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.allclose(sample_bilinear(x, grid), expected, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# the training loop against the official one


def test_two_training_iterations_equal_the_official_loop(tmp_path, float64_default):
    """Two trainer steps from the official initial weights, on the official loop's batches and noise, in
    float64: every loss the official loop reported, and G, D, the EMA and both Adam states after them."""
    ref = torch.load(OFFICIAL / "step.pt", weights_only=True)
    overrides = tiny(tmp_path, **SMALL, **{"recipe.augment_p": 0, "recipe.lr": 2e-4, "recipe.lr_final": 5e-5, "recipe.gamma": 0.5,
                                           "recipe.gamma_final": 0.05, "recipe.decay_nimg": 8,
                                           "recipe.ema_nimg": 8, "data.view": "domains"})
    trainer = Trainer(load_config("r3gan/shapes", [*overrides, "model.num_classes=3"]))
    G, D, ema = trainer.recipe.networks["G"], trainer.recipe.networks["D"], trainer.ema
    for net, key in ((G, "G"), (D, "D")):
        net.load_state_dict({ganforge_key(k[len(f"init/{key}/"):]): v for k, v in ref.items()
                             if k.startswith(f"init/{key}/")})
    ema.load_state_dict(G.state_dict())
    batches, noise = [], []
    for i in range(2):
        for phase in ("D", "G"):
            batches.append({"image": ref[f"input{i}/{phase}_image"].double() / 127.5 - 1,
                            "label": ref[f"input{i}/{phase}_label"].argmax(1)})
            noise.append(ref[f"input{i}/{phase}_z"])
    trainer.stream = iter(batches)
    supply = iter(noise)
    trainer.ctx.randn = lambda *shape: next(supply)
    sums: dict[str, list[float]] = {}
    for i in range(2):
        trainer.step, step_sums = i, {}
        trainer.train_step(step_sums)
        for key, value in step_sums.items():
            sums.setdefault(key, []).append(float(value))
    official = {k.removeprefix("loss/"): v for k, v in ref.items() if k.startswith("loss/")}  # logged in float32
    assert sums["D/adversarial"] == pytest.approx(official["Loss/D/loss"].mean(1).tolist(), rel=1e-7)
    assert sums["D/r1"] == pytest.approx(official["Loss/r1_penalty"].mean(1).tolist(), rel=1e-7)
    assert sums["D/r2"] == pytest.approx(official["Loss/r2_penalty"].mean(1).tolist(), rel=1e-7)
    assert sums["G/loss"] == pytest.approx(official["Loss/G/loss"].mean(1).tolist(), rel=1e-7)
    snap = read_snapshot(OFFICIAL / "step-snapshot.pkl")
    from ganforge.models.r3gan.official import flat_state

    for net, key in ((G, "G"), (D, "D"), (ema, "G_ema")):
        expected = {ganforge_key(k): v for k, v in flat_state(snap[key].Model).items()}
        for name, value in net.state_dict().items():
            assert torch.allclose(value, expected[name], rtol=0, atol=1e-12 * max(1.0, expected[name].abs().max())), \
                (key, name)
    for key, opt in (("G_opt_state", trainer.recipe.optimizers["G"]), ("D_opt_state", trainer.recipe.optimizers["D"])):
        theirs, ours = snap[key], opt.state_dict()
        assert ours["param_groups"][0]["lr"] == pytest.approx(theirs["param_groups"][0]["lr"], rel=1e-15)
        assert ours["param_groups"][0]["betas"][1] == pytest.approx(theirs["param_groups"][0]["betas"][1], rel=1e-15)
        for index, state in theirs["state"].items():
            for name in ("exp_avg", "exp_avg_sq"):
                assert torch.allclose(ours["state"][index][name], state[name], rtol=1e-10, atol=1e-20), (key, index)


# ----------------------------------------------------------------------------------------------
# importing official snapshots


def test_import_reads_an_official_snapshot_without_its_code(tmp_path):
    """The snapshot the official loop pickled (bf16 stages, default operators) imports without importing
    R3GAN's modules; the architecture is read from it and G_ema gives the official outputs."""
    ckpt = import_official(OFFICIAL / "bf16-snapshot.pkl", tmp_path / "run", overrides=["train.batch_size=4"])
    assert not any(name.split(".")[0] in ("R3GAN", "training", "torch_utils", "dnnlib") for name in sys.modules)
    record = load_checkpoint(ckpt)
    m = R3ganModelConfig(**record["config"]["model"])
    assert (m.widths, m.cardinalities, m.blocks, m.noise_dim, m.num_classes, m.bf16_stages) == \
        ([24, 16, 16], [4, 4, 2], [1, 2, 1], 8, 3, [-2, -1])
    assert record["step"] == 1 and set(record["optimizers"]) == {"G", "D"}
    G = R3ganGenerator(m).eval()
    G.load_state_dict(record["ema"])
    ref = torch.load(OFFICIAL / "bf16.pt", weights_only=True)
    with torch.no_grad():
        assert_official_output(G(ref["z"], ref["y"]), ref["G_ema"])


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_import_refuses_anything_but_networks_and_tensors(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"G": _Payload(marker), "D": 1, "G_ema": 2}))
    with pytest.raises(CheckpointError, match="evil.pkl' is not a readable R3GAN snapshot: 'io.open' is not part of"):
        import_official(bad, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()
    partial = tmp_path / "partial.pkl"
    partial.write_bytes(pickle.dumps({"G": 1}))
    with pytest.raises(CheckpointError, match="has no D, G_ema"):
        import_official(partial, tmp_path / "out")
    with pytest.raises(CheckpointError, match="no such file"):
        import_official(tmp_path / "missing.pkl", tmp_path / "out")
    with pytest.raises(CheckpointError, match="not a whole number of batches"):
        import_official(OFFICIAL / "step-snapshot.pkl", tmp_path / "out", overrides=["train.batch_size=3"])


def test_imported_snapshot_resumes_on_its_schedules_with_its_adam_state(tmp_path):
    import_official(OFFICIAL / "step-snapshot.pkl", tmp_path / "run", preset="r3gan/shapes",
                    overrides=["train.batch_size=4", "data.view=domains", "data.length=16", "data.image_size=16",
                               "data.num_workers=0", "train.progress=false", "train.tensorboard=false",
                               "runtime.device=cpu", "runtime.precision=fp32"])
    result = resume(tmp_path / "run", ["train.steps=3"])
    assert result.step == 3
    after = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert float(after["optimizers"]["D"]["state"][0]["step"]) == 3.0  # 2 official Adam steps + 1 here


# ----------------------------------------------------------------------------------------------
# training, resume, export


@pytest.fixture(scope="module")
def r3gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("r3")
    result = train(load_config("r3gan/shapes", tiny(out, **{"data.view": "class", "model.num_classes": 0})))
    assert result.status == "finished"
    return out / "run"


def test_class_conditional_training_takes_the_data_classes_and_writes_samples(r3gan_run):
    record = load_checkpoint(latest_checkpoint(r3gan_run / "checkpoints"))
    assert record["config"]["model"]["num_classes"] == 18  # shapes' class view: 3 shapes x 6 colours
    assert (r3gan_run / "samples").is_dir() and any((r3gan_run / "samples").glob("*.png"))
    assert record["ema"] is not None


@pytest.mark.slow
def test_training_resumes_bit_for_bit(r3gan_run, tmp_path):
    train(load_config("r3gan/shapes", tiny(tmp_path, **{"data.view": "class", "model.num_classes": 0,
                                                         "train.steps": 2})))
    resume(tmp_path / "run", ["train.steps=4"])
    assert_latest_checkpoints_equal(r3gan_run, tmp_path / "run")


@pytest.mark.slow
def test_bf16_stages_train_on_the_cpu(tmp_path):
    result = train(load_config("r3gan/shapes", tiny(tmp_path, **{"runtime.precision": "bf16",
                                                                  "model.bf16_stages": "[-1,-2]", "train.steps": 2})))
    assert result.status == "finished"


def test_sample_verb_draws_class_sheets_and_grids(r3gan_run, tmp_path, capsys):
    from ganforge.cli import main

    assert main(["sample", str(r3gan_run), "--mode", "sheet", "--classes", "0-2", "--per-class", "4",
                 "--out", str(tmp_path / "sheet.png")]) == 0
    assert grid_size(tmp_path / "sheet.png") == (4 * 18 + 2, 3 * 18 + 2)  # 16 px images, 2 px gaps
    assert main(["sample", str(r3gan_run), "--n", "6", "--out", str(tmp_path / "grid.png")]) == 0
    assert main(["sample", str(r3gan_run), "--mode", "sheet", "--classes", "17-18"]) == 2
    assert "outside 0..17" in capsys.readouterr().err


def test_export_takes_noise_and_classes(r3gan_run, tmp_path):
    check_exports(r3gan_run, 1, tmp_path, atol=1e-4)


def test_the_page_serves_it_as_a_class_model_or_unconditionally(r3gan_run, tmp_path):
    from ganforge.serve import model as drawing
    from ganforge.serve.model import ServeError, open_model

    served = open_model(r3gan_run)
    assert served.kind == "class" and len(served.labels) == 18 and served.labels[0] == "red circle"
    grid = drawing.class_grid(served, "green circle", 1.0, 0, 4)  # 2 x 2 images of 16 px, 2 px gaps
    assert grid.shape == (2 + 2 * 18, 2 + 2 * 18, 3)
    assert (grid == drawing.class_grid(served, "green circle", 1.0, 0, 4)).all()  # a seed draws the same
    assert drawing.class_sheet(served, 0.0, 0, 2).shape == (2 + 18 * 18, 2 + 2 * 18, 3)
    with pytest.raises(ServeError, match="purple"):
        drawing.class_grid(served, "purple circle", 1.0, 0, 4)

    assert train(load_config("r3gan/shapes", tiny(tmp_path, **{"train.steps": 1}))).status == "finished"
    unconditional = open_model(tmp_path / "run")  # one class: the noise controls, no class picker
    assert unconditional.kind == "noise" and unconditional.labels == []
    assert drawing.noise_grid(unconditional, 3, 4).shape == (2 + 2 * 18, 2 + 2 * 18, 3)
    assert drawing.interpolation(unconditional, 0, 1, 3).shape == (20, 2 + 3 * 18, 3)
