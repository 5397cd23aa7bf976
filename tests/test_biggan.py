"""BigGAN: official architectures and checkpoints, the training function, sampling tools, data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gfhelpers import (REPO, assert_latest_checkpoints_equal, assert_official_output, check_exports, grid_size,
                       grid_size_box)
from ganforge.cli import main
from ganforge.config import ConfigError
from ganforge.presets import load_config
from ganforge.models.biggan.networks import BigganDiscriminator, BigganGenerator, BigganModelConfig
from ganforge.models.biggan.official import import_official
from ganforge.models.biggan.losses import add_ortho_gradient, discriminator_losses
from ganforge.models.biggan.sampling import (accumulate_standing_stats, class_sheet, interpolation_sheet,
                                             truncated_normal)
from ganforge.runtime.precision import Precision
from ganforge.run.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from ganforge.train.phases import count_parameters
from ganforge.train.trainer import Trainer, resume, train

OFFICIAL = REPO / "tests" / "data" / "biggan_official"
IMAGENET = {"image_size": 128, "g_shared": True, "hier": True, "dim_z": 120, "shared_dim": 128}


@pytest.mark.parametrize("preset, extra, g_count, d_count", [
    ("biggan/cifar10", {}, 4_304_387, 4_207_361),
    ("biggan/imagenet128", {}, 70_433_988, 87_982_370),
    ("biggan/imagenet128_ch64", {}, 31_978_628, 39_448_258),
])
def test_parameter_counts_match_the_official_scripts(preset, extra, g_count, d_count):
    model = load_config(preset).model
    with torch.device("meta"):  # counting needs no memory and no init
        G, D = BigganGenerator(model), BigganDiscriminator(model)
    assert (count_parameters(G), count_parameters(D)) == (g_count, d_count)


@pytest.mark.parametrize("size, blocks_g, blocks_d", [(32, 3, 4), (64, 4, 5), (128, 5, 6), (256, 6, 7)])
def test_every_resolution_builds_and_runs(size, blocks_g, blocks_d):
    cfg = BigganModelConfig(image_size=size, num_classes=3, g_ch=4, d_ch=4, dim_z=14, g_shared=True, shared_dim=6,
                            hier=True, g_attention=[16], d_attention=[16])
    G, D = BigganGenerator(cfg), BigganDiscriminator(cfg)
    assert len(G.blocks) == blocks_g and len(D.blocks) == blocks_d
    assert G.dim_z == 14 // (blocks_g + 1) * (blocks_g + 1)  # hier rounds z to equal chunks
    z, y = G.make_inputs(2, torch.Generator().manual_seed(0))
    x = G(z, y)
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
    assert D(x, y).shape == (2,)
    # attention blocks start as the identity (gamma = 0), as in SAGAN's released code
    gammas = [m.gamma.item() for m in G.modules() if hasattr(m, "gamma") and isinstance(m.gamma, torch.nn.Parameter)]
    assert gammas == [0.0]


@pytest.mark.parametrize("weights, key", [("ema", "G_ema"), ("raw", "G")])
def test_official_weights_import_with_identical_outputs(tmp_path, weights, key):
    import ganforge

    # state_dict.pth as the official utils.save_weights writes it: its config pickles nn.ReLU modules
    assert torch.serialization.get_unsafe_globals_in_checkpoint(OFFICIAL / "state_dict.pth") == [
        "torch.nn.modules.activation.ReLU"]
    path = import_official(OFFICIAL, tmp_path / "run")
    ref = torch.load(OFFICIAL / "reference.pt", weights_only=True)
    gen = ganforge.load(tmp_path / "run", weights=weights)
    with torch.no_grad():
        assert_official_output(gen(ref["z"], ref["y"]), ref[f"{key}_eval"])  # G_eval_mode: stored statistics
        gen.train()
        assert_official_output(gen(ref["z"], ref["y"]), ref[f"{key}_train"])  # batch statistics
    state = load_checkpoint(path)
    assert state["step"] == 1234  # the official itr
    D = BigganDiscriminator(gen.model_config)
    D.load_state_dict(state["networks"]["D"])
    for mode in ("eval", "train"):
        D.train(mode == "train")
        with torch.no_grad():
            assert_official_output(D(ref["x"], ref["y"]), ref[f"D_{mode}"].reshape(-1))  # logits of about 115
    # the config came from state_dict.pth, not from the preset
    cfg = state["config"]
    assert cfg["model"]["g_ch"] == 4 and cfg["model"]["g_attention"] == [16] and cfg["model"]["sn_eps"] == 1e-6
    assert cfg["recipe"]["num_d_accumulations"] == 2 and cfg["train"]["ema"]["start"] == 20
    assert set(state["optimizers"]) == {"G", "D"}


def test_mybn_checkpoints_load_with_renamed_statistics(tmp_path):
    import ganforge

    ref = torch.load(OFFICIAL / "reference.pt", weights_only=True)
    import_official(OFFICIAL / "mybn" / "G_ema.pth", tmp_path / "run", "biggan/imagenet128",
                    ["model.image_size=32", "model.num_classes=5", "model.g_ch=4", "model.d_ch=4", "model.dim_z=20",
                     "model.shared_dim=8", "model.g_attention=[16]", "model.d_attention=[16]", "model.sn_eps=1e-6",
                     "data.image_size=32"])
    gen = ganforge.load(tmp_path / "run")
    with torch.no_grad():
        assert (gen(ref["z"], ref["y"]) - ref["mybn_eval"]).abs().max() < 1e-5


def test_imported_run_resumes_with_the_official_optimizer_state(tmp_path):
    import_official(OFFICIAL, tmp_path / "run", overrides=["data.name=shapes", "data.view=class", "data.length=40",
                                                            "data.num_workers=0", "train.progress=false",
                                                            "train.tensorboard=false", "runtime.device=cpu"])
    # the shapes class view has 18 classes; the official model 5: the mismatch is named
    with pytest.raises(ConfigError, match="num_classes=5"):
        resume(tmp_path / "run", ["train.steps=1235"])
    fake = tmp_path / "data.h5"
    import h5py

    with h5py.File(fake, "w") as f:  # BigGAN's own HDF5 layout: imgs (N, 3, H, W) and labels
        f["imgs"] = np.random.default_rng(0).integers(0, 255, (12, 3, 32, 32), dtype=np.uint8)
        f["labels"] = np.arange(12) % 5
    result = resume(tmp_path / "run", ["train.steps=1235", "data.name=hdf5", f"data.path={fake}", "data.in_memory=false",
                                       "train.batch_size=6"])
    assert result.step == 1235
    after = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    adam = after["optimizers"]["G"]["state"][0]["step"]
    assert float(adam) == 4.0  # 3 official Adam steps + 1 here: the state was imported, not recreated


@pytest.mark.slow
def test_import_errors_name_the_file(tmp_path, capsys):
    with pytest.raises(CheckpointError, match="G.pth or G_ema.pth"):
        import_official(tmp_path / "model.ckpt", tmp_path / "out")
    with pytest.raises(CheckpointError, match="do not fit.*Missing key"):
        import_official(OFFICIAL / "mybn" / "G_ema.pth", tmp_path / "out")  # imagenet128 preset: wrong size
    assert main(["import", "biggan", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "missing" in capsys.readouterr().err


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.slow
def test_import_never_runs_code_from_a_file(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save({"linear.weight": _Payload(marker)}, folder / "G_ema.pth")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        import_official(folder / "G_ema.pth", tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# the training function


def tiny(tmp_path, **extra):
    # The ImageNet models' shared embedding and hierarchical z (the shapes preset has the CIFAR
    # script's per-class conditioning): the class-interpolation sheets and G_ortho's exclusion need them.
    base = {"out_dir": str(tmp_path), "name": "run", "model.g_ch": 4, "model.d_ch": 4, "model.dim_z": 16,
            "model.g_shared": True, "model.hier": True, "model.shared_dim": 8, "data.length": 64,
            "data.num_workers": 0, "train.batch_size": 6, "train.steps": 4,
            "train.log_every": 1, "train.sample_every": 2, "train.ckpt_every": 2, "train.sample_count": 4,
            "train.progress": False, "train.tensorboard": False, "runtime.deterministic": True,
            "runtime.device": "cpu", "train.ema.start": 2, "eval.every": 0, "runtime.precision": "fp32",
            "runtime.channels_last": False}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def _snapshot(net):
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def test_each_phase_updates_only_its_network(tmp_path):
    trainer = Trainer(load_config("biggan/shapes", tiny(tmp_path, **{"recipe.num_d_steps": 2})))
    G, D = trainer.recipe.networks["G"], trainer.recipe.networks["D"]
    phases = list(trainer.recipe.phases)
    assert [(p.name, p.repeats) for p in phases] == [("D", 2), ("G", 1)]
    for phase, moved, still in ((phases[0], D, G), (phases[1], G, D)):
        trainer.recipe.phases = [phase]
        before_moved, before_still = _snapshot(moved), _snapshot(still)
        trainer.train_step()
        assert all(torch.equal(v, dict(still.named_parameters())[k]) for k, v in before_still.items())
        changed = [k for k, v in before_moved.items() if not torch.equal(v, dict(moved.named_parameters())[k])]
        assert len(changed) > 0.9 * len(before_moved)


def test_ortho_gradient_matches_its_formula():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.Linear(4, 6), torch.nn.Embedding(7, 3))
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    add_ortho_gradient(net, 0.5, exclude=[net[2].weight])
    for p in (net[0].weight, net[1].weight):
        w = p.detach().reshape(p.shape[0], -1).requires_grad_()
        mask = 1 - torch.eye(w.shape[0])
        (0.5 * 0.5 * ((w @ w.t()) * mask).square().sum()).backward()  # beta/2 ||W W^T (1-I)||^2
        assert torch.allclose(p.grad.reshape(w.shape), w.grad, atol=1e-6)
    assert net[2].weight.grad.abs().sum() == 0  # excluded (G's shared embedding)
    assert net[0].bias.grad.abs().sum() == 0  # 1-D parameters are never regularized


def test_ortho_runs_between_backward_and_step_and_skips_the_shared_embedding(tmp_path, monkeypatch):
    import ganforge.models.biggan.recipe as recipe_module

    calls = []
    real = recipe_module.add_ortho_gradient
    monkeypatch.setattr(recipe_module, "add_ortho_gradient",
                        lambda net, s, ex: calls.append((type(net).__name__, s, len(ex))) or real(net, s, ex))
    trainer = Trainer(load_config("biggan/shapes", tiny(tmp_path, **{"recipe.g_ortho": 1e-4, "recipe.d_ortho": 2e-4,
                                                                     "recipe.num_d_steps": 2})))
    trainer.train_step()
    assert calls == [("BigganDiscriminator", 2e-4, 0)] * 2 + [("BigganGenerator", 1e-4, 1)]


def test_accumulated_micro_batches_equal_one_large_batch():
    torch.manual_seed(0)
    cfg = BigganModelConfig(image_size=32, num_classes=4, g_ch=4, d_ch=4, dim_z=16, g_attention=[], d_attention=[16],
                            eval_bn="stored")
    G, D = BigganGenerator(cfg).eval(), BigganDiscriminator(cfg).eval()  # eval: SN vectors and BN stats fixed
    real, labels = torch.rand(8, 3, 32, 32) * 2 - 1, torch.randint(4, (8,))
    z, y = torch.randn(8, 16), torch.randint(4, (8,))
    prec = Precision("fp32", torch.device("cpu"))

    def grads(chunks: int, split: bool) -> list[torch.Tensor]:
        D.zero_grad()
        for idx in torch.arange(8).chunk(chunks):
            lr, lf = discriminator_losses(G, D, real[idx], labels[idx], z[idx], y[idx], split, prec)
            ((lr + lf) / chunks).backward()
        return [p.grad.clone() for p in D.parameters()]

    big = grads(1, False)
    for chunks, split in ((2, False), (4, True)):
        # equal up to fp32 summation order (relative 1e-5)
        assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max())) for a, b in zip(big, grads(chunks, split)))


def test_trainer_sums_accumulated_micro_batches_into_one_update(tmp_path):
    cfg = load_config("biggan/shapes", tiny(tmp_path, **{"recipe.num_d_accumulations": 3, "recipe.num_d_steps": 1,
                                                          "recipe.d_ortho": 0.0}))
    trainer = Trainer(cfg)
    D = trainer.recipe.networks["D"]
    phase = trainer.recipe.phases[0]
    assert phase.accumulations == 3
    per_batch, final = [], []
    loss_fn = phase.loss

    def recording(batch):
        loss, parts = loss_fn(batch)
        per_batch.append(torch.autograd.grad(loss, list(D.parameters()), retain_graph=True))
        return loss, parts

    phase.loss = recording
    phase.before_step = lambda: final.append([p.grad.clone() for p in D.parameters()])
    trainer.recipe.phases = [phase]
    trainer.train_step()
    assert len(per_batch) == 3 and len(final) == 1  # three micro-batches, one optimizer step
    for i, got in enumerate(final[0]):
        expect = sum(g[i] for g in per_batch) / 3
        assert torch.allclose(got, expect, rtol=1e-4, atol=1e-4 * float(expect.abs().max()))


def test_ema_averages_buffers_and_starts_at_the_official_iteration(tmp_path):
    from ganforge.train.ema import make_ema, update_ema

    net = torch.nn.BatchNorm1d(2)
    ema = make_ema(net)
    net.running_mean.fill_(1.0)
    net.weight.data.fill_(3.0)
    update_ema(ema, net, 1, 0.5, start=2, average_buffers=True)  # itr 1 < start: copy
    assert ema.running_mean.tolist() == [1.0, 1.0] and ema.weight.tolist() == [3.0, 3.0]
    net.running_mean.fill_(3.0)
    net.weight.data.fill_(5.0)
    update_ema(ema, net, 2, 0.5, start=2, average_buffers=True)  # itr 2: average, buffers too
    assert ema.running_mean.tolist() == [2.0, 2.0] and ema.weight.tolist() == [4.0, 4.0]
    assert ema.num_batches_tracked == net.num_batches_tracked  # integers are copied
    # the trainer passes the 1-based iteration: with start 2, the first step copies, the second averages
    trainer = Trainer(load_config("biggan/shapes", tiny(tmp_path, **{"train.ema.enabled": True,
                                                                      "train.ema.decay": 0.5})))
    G = trainer.generator
    trainer.train_step()
    trainer.step += 1
    assert all(torch.equal(a, b) for a, b in zip(trainer.ema.state_dict().values(), G.state_dict().values()))
    before = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    trainer.train_step()
    expect = {k: (before[k] + v) / 2 if v.is_floating_point() else v for k, v in G.state_dict().items()}
    assert all(torch.allclose(trainer.ema.state_dict()[k], v) for k, v in expect.items())


def test_config_errors_come_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="g_shared"):
        load_config("biggan/shapes", tiny(tmp_path, **{"model.g_shared": False}))
    with pytest.raises(ConfigError, match="num_d_accumulations"):
        load_config("biggan/shapes", tiny(tmp_path, **{"train.grad_accum": 2}))
    with pytest.raises(ConfigError, match="attention"):
        load_config("biggan/shapes", tiny(tmp_path, **{"model.g_attention": "[48]"}))
    with pytest.raises(ConfigError, match="num_classes=18"):
        Trainer(load_config("biggan/shapes", tiny(tmp_path, **{"model.num_classes": 10})))
    with pytest.raises(ConfigError, match="no class labels.*data.view=class"):
        Trainer(load_config("biggan/shapes", tiny(tmp_path, **{"data.view": "unconditional"})))


def test_unlabelled_data_trains_a_one_class_model(tmp_path):
    trainer = Trainer(load_config("biggan/shapes", tiny(tmp_path, **{"model.num_classes": 0,
                                                                      "data.view": "unconditional"})))
    assert trainer.cfg.model.num_classes == 1
    totals = trainer.train_step()
    assert all(torch.isfinite(t) for _, t in totals)


@pytest.fixture(scope="module")
def biggan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bg")
    result = train(load_config("biggan/shapes", tiny(out, **{"train.ema.enabled": True})))
    assert result.status == "finished"
    return out / "run"


def test_training_writes_the_official_sample_sheets(biggan_run):
    names = sorted(p.name for p in (biggan_run / "samples").glob("*-step-00000004.png"))
    assert names == ["classes-step-00000004.png", "interpY-step-00000004.png", "interpZ-step-00000004.png",
                     "interpZY-step-00000004.png"]
    # the official layouts: 10 columns; 18 classes, 16 rows (a title line above names sheet and weights)
    assert grid_size(biggan_run / "samples" / "classes-step-00000004.png") == (10 * 34 + 2, 18 * 34 + 2)
    assert grid_size(biggan_run / "samples" / "interpZ-step-00000004.png") == (10 * 34 + 2, 16 * 34 + 2)


@pytest.mark.slow
def test_training_resumes_bit_for_bit(biggan_run, tmp_path):
    train(load_config("biggan/shapes", tiny(tmp_path, **{"train.steps": 2, "train.ema.enabled": True})))
    resume(tmp_path / "run", ["train.steps=4"])
    assert_latest_checkpoints_equal(biggan_run, tmp_path / "run")  # weights, EMA, Adam, noise, data position


# ----------------------------------------------------------------------------------------------
# sampling


def test_truncation_redraws_values_outside_the_threshold():
    z = truncated_normal((2000, 8), 0.5, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5 and z.std() > 0.2
    assert torch.equal(truncated_normal((3, 4), None, torch.Generator().manual_seed(1)),
                       torch.randn(3, 4, generator=torch.Generator().manual_seed(1)))


def test_class_sheet_rows_are_classes_and_columns_share_z(biggan_run):
    import ganforge

    gen = ganforge.load(biggan_run)
    images, nrow = class_sheet(gen, [2, 5, 7], samples_per_class=4, seed=3)
    assert images.shape == (12, 3, 32, 32) and nrow == 4
    gen_ = torch.Generator().manual_seed(3)
    z0 = truncated_normal((3, gen.net.dim_z), None, gen_)
    with torch.no_grad():
        first_column = gen(z0, torch.tensor([2, 5, 7]))
    assert torch.allclose(images[0::4], first_column, atol=1e-6)


@pytest.mark.parametrize("kind", ["zy", "z", "y"])
def test_interpolation_sheets_start_and_end_on_samples(biggan_run, kind):
    import ganforge

    gen = ganforge.load(biggan_run)
    images, nrow = interpolation_sheet(gen, rows=2, midpoints=3, kind=kind, seed=0)
    assert images.shape == (10, 3, 32, 32) and nrow == 5
    g = torch.Generator().manual_seed(0)
    z0, z1 = truncated_normal((2, gen.net.dim_z), None, g), truncated_normal((2, gen.net.dim_z), None, g)
    y0, y1 = torch.randint(18, (2,), generator=g), torch.randint(18, (2,), generator=g)
    with torch.no_grad():
        assert torch.allclose(images[0::5], gen(z0, y0), atol=1e-5)
        end = gen(z0 if kind == "y" else z1, y0 if kind == "z" else y1)
    assert torch.allclose(images[4::5], end, atol=1e-5)


def test_standing_stats_average_the_batch_statistics(biggan_run):
    import ganforge

    gen = ganforge.load(biggan_run)
    bn = gen.net.output_layer[0]
    inputs = []
    hook = bn.register_forward_hook(lambda m, args, out: inputs.append(args[0].detach()))
    accumulate_standing_stats(gen, accumulations=3, batch_size=5, seed=0)
    hook.remove()
    means = torch.stack([x.mean((0, 2, 3)) for x in inputs])
    variances = torch.stack([x.var((0, 2, 3), unbiased=True) for x in inputs])
    assert torch.allclose(bn.stored_mean, means.mean(0), atol=1e-5)
    assert torch.allclose(bn.stored_var, variances.mean(0), atol=1e-5)
    assert not gen.net.training and not bn.eval_batch_stats


def test_training_samples_can_use_standing_stats_without_touching_the_ema(tmp_path):
    trainer = Trainer(load_config("biggan/shapes", tiny(tmp_path, **{"train.ema.enabled": True,
                                                                      "recipe.standing_stats": 2})))
    trainer.run_dir = tmp_path / "run"
    trainer.train_step()
    before = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    prepared = trainer._sampler()
    assert prepared is not trainer.ema
    bn = prepared.output_layer[0]
    assert not torch.equal(bn.stored_mean, trainer.ema.output_layer[0].stored_mean)  # standing, not stored
    assert trainer.write_samples().is_file()
    assert all(torch.equal(v, trainer.ema.state_dict()[k]) for k, v in before.items())


def test_sample_verb_modes(biggan_run, tmp_path, capsys):
    assert main(["sample", str(biggan_run), "--mode", "sheet", "--classes", "0-2,5", "--per-class", "3",
                 "--truncation", "0.7", "--out", str(tmp_path / "sheet.png")]) == 0
    assert grid_size(tmp_path / "sheet.png") == (3 * 34 + 2, 4 * 34 + 2)
    assert grid_size_box(tmp_path / "sheet.png")[0] > 0, "a label left of each class row"
    assert main(["sample", str(biggan_run), "--mode", "interpolate", "--interp", "y", "--rows", "2", "--steps", "6",
                 "--standing-stats", "2", "--out", str(tmp_path / "interp.png")]) == 0
    assert grid_size(tmp_path / "interp.png") == (6 * 34 + 2, 2 * 34 + 2)
    assert main(["sample", str(biggan_run), "--mode", "sheet", "--classes", "18"]) == 2
    assert "outside 0..17" in capsys.readouterr().err


@pytest.mark.slow
def test_export_takes_noise_and_classes(biggan_run, tmp_path):
    check_exports(biggan_run, 1, tmp_path, atol=1e-4)


def test_class_accuracy_metric(shapes_oracle):
    from ganforge.data.shapes import ShapesDataset
    from ganforge.metrics.evaluate import EvalError, Evaluator

    data = ShapesDataset(length=400, image_size=32, view="class")
    by_class: dict[int, torch.Tensor] = {}
    for i in range(len(data)):
        item = data.get(i)
        by_class.setdefault(int(item["label"]), item["image"])

    class Perfect(torch.nn.Module):  # draws a real image of the requested class
        shift = 0

        def make_inputs(self, n, generator=None):
            return torch.randn(n, 2, generator=generator), torch.randint(18, (n,), generator=generator)

        def forward(self, z, y):
            return torch.stack([by_class[(int(c) + self.shift) % 18] for c in y])

    ev = Evaluator(data, "class", 100, oracle=shapes_oracle, batch_size=50)
    assert ev.evaluate_generator(Perfect()).metrics["class_acc"] >= 0.97
    assert ev.real_vs_real["class_acc"] >= 0.97
    wrong = Perfect()
    wrong.shift = 1
    assert ev.evaluate_generator(wrong).metrics["class_acc"] <= 0.05
    with pytest.raises(EvalError, match="class-conditional"):
        Evaluator(ShapesDataset(length=400, image_size=32), "class", 100, oracle=shapes_oracle)


def test_hdf5_reads_biggan_packs(tmp_path):
    import h5py

    from ganforge.data.hdf5 import HDF5Dataset

    imgs = np.random.default_rng(0).integers(0, 255, (4, 3, 16, 16), dtype=np.uint8)
    with h5py.File(tmp_path / "I16.hdf5", "w") as f:
        f["imgs"], f["labels"] = imgs, np.array([3, 0, 6, 1])
    for in_memory in (False, True):
        ds = HDF5Dataset(tmp_path / "I16.hdf5", in_memory=in_memory)
        assert len(ds) == 4 and ds.num_classes == 7
        item = ds.get(2)
        assert int(item["label"]) == 6
        expect = torch.from_numpy(imgs[2]).float() / 127.5 - 1
        assert torch.allclose(item["image"], expect, atol=1e-6)


@pytest.mark.slow
def test_cifar10_preset_trains_on_a_cifar_format_folder(tmp_path):
    from ganforge.data.cifar import write_cifar

    rng = np.random.default_rng(0)
    write_cifar(tmp_path / "cifar-10-batches-py", rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8),
                np.arange(20) % 10)
    cfg = load_config("biggan/cifar10", [f"data.path={tmp_path / 'cifar-10-batches-py'}", f"out_dir={tmp_path}",
                                         "name=c10", "train.steps=1", "train.batch_size=4", "data.num_workers=0",
                                         "train.progress=false", "train.tensorboard=false"])
    assert cfg.recipe.num_d_steps == 4 and cfg.train.ema.start == 1000 and cfg.model.g_init == "N02"
    result = train(cfg)
    assert result.status == "finished" and (tmp_path / "c10" / "samples" / "step-00000001.png").is_file()


def test_image_folder_preset_takes_the_classes_from_the_folders(tmp_path):
    from ganforge.data import write_dataset
    from ganforge.data.shapes import ShapesDataset

    write_dataset(ShapesDataset(length=36, image_size=32, view="class"), "image_folder", tmp_path / "imgs",
                  progress=False)
    cfg = load_config("biggan/image_folder", [f"data.path={tmp_path / 'imgs'}", f"out_dir={tmp_path}", "name=f",
                                              "model.image_size=32", "data.image_size=32", "model.g_ch=4",
                                              "model.d_ch=4", "model.g_attention=[16]", "model.d_attention=[16]",
                                              "train.steps=1", "train.batch_size=4", "data.num_workers=0",
                                              "train.progress=false", "train.tensorboard=false"])
    trainer = Trainer(cfg)
    assert trainer.cfg.model.num_classes == len(trainer.dataset.index.class_names) > 1
    assert [p.accumulations for p in trainer.recipe.phases] == [4, 4]
