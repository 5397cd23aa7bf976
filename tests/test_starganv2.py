"""StarGAN v2: official architecture (G, F, E, D and the FAN landmark network), masks, domain data, training."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from gfhelpers import (REPO, SHARED_DATA, assert_latest_checkpoints_equal, assert_official_output, check_exports,
                       face_like_heatmaps, fan_probe, fill_by_key_order, grid_size, short_run, update_projections)
from ganforge.cli import main
from ganforge.config import ConfigError
from ganforge.presets import load_config
from ganforge.data.domains import DomainFolderDataset, DomainTrainingPairs, random_resized_box
from ganforge.layers.norm import to_channels_last
from ganforge.models.starganv2.fan import FAN, landmark_masks
from ganforge.models.starganv2.networks import (Discriminator, Generator, MappingNetwork, Starganv2ModelConfig,
                                                StyleEncoder)
from ganforge.models.starganv2.translator import load_fan_weights
from ganforge.run.checkpoint import load_checkpoint
from ganforge.train.phases import count_parameters
from ganforge.train.trainer import resume, train

# Made by scripts/starganv2_official_reference.py from clovaai/stargan-v2's core/model.py and core/wing.py.
REFERENCE = REPO / "tests" / "data" / "starganv2_official.pt"


def _networks(cfg: Starganv2ModelConfig) -> dict[str, torch.nn.Module]:
    return {"G": Generator(cfg), "F": MappingNetwork(cfg), "E": StyleEncoder(cfg), "D": Discriminator(cfg)}


@pytest.mark.parametrize("domains, w_hpf, expected", [
    (3, 0.0, (33_892_995, 3_259_072, 20_949_760, 20_852_803)),   # AFHQ
    (2, 1.0, (43_467_395, 2_438_272, 20_916_928, 20_852_290)),   # CelebA-HQ
])
def test_parameter_counts_match_the_official_256px_networks(domains, w_hpf, expected):
    nets = _networks(Starganv2ModelConfig(image_size=256, num_domains=domains, w_hpf=w_hpf))
    assert tuple(count_parameters(n) for n in nets.values()) == expected


def test_fan_has_the_official_parameter_count_and_stays_frozen_in_eval():
    fan = FAN()
    assert count_parameters(fan) == 6_333_603
    assert not any(p.requires_grad for p in fan.parameters())  # frozen: nothing trains it
    fan.train()
    assert not fan.training and not any(m.training for m in fan.modules())


@pytest.mark.slow
@pytest.mark.parametrize("name, domains, w_hpf", [("afhq", 3, 0.0), ("celebahq", 2, 1.0)])
@torch.no_grad()
def test_outputs_equal_the_official_networks(name, domains, w_hpf):
    ref = torch.load(REFERENCE, weights_only=True)
    nets = _networks(Starganv2ModelConfig(image_size=64, num_domains=domains, w_hpf=w_hpf))
    for seed, net in enumerate(nets.values()):
        fill_by_key_order(net, seed)  # the official networks were filled the same way, key by key
        net.eval()
    x, y, z, s = (ref[f"{name}/{k}"] for k in "xyzs")
    assert_official_output(nets["G"](x, s), ref[f"{name}/G"])
    assert_official_output(nets["F"](z, y), ref[f"{name}/F"])
    assert_official_output(nets["E"](x, y), ref[f"{name}/E"])
    assert_official_output(nets["D"](x, y), ref[f"{name}/D"])
    if w_hpf > 0:
        masks = ref[f"{name}/masks"]
        masked = nets["G"](x, s, (masks[:, :1], masks[:, 1:]))
        assert_official_output(masked, ref[f"{name}/G_masked"])
        assert (masked - ref[f"{name}/G"]).abs().max() > 1e-3  # the masks really reach the output
    else:
        with pytest.raises(ValueError, match="w_hpf"):
            nets["G"](x, s, (x[:, :1], x[:, :1]))


@pytest.mark.slow
@torch.no_grad()
def test_channels_last_networks_give_the_official_outputs():
    """runtime.channels_last (bf16 convolutions run several times faster so on CPU) keeps the layout
    through AdaIN and the instance norms and still gives the official outputs, up to fp32 rounding."""
    ref = torch.load(REFERENCE, weights_only=True)
    nets = _networks(Starganv2ModelConfig(image_size=64, num_domains=2, w_hpf=1.0))
    for seed, net in enumerate(nets.values()):
        fill_by_key_order(net, seed)
        to_channels_last(net.eval())
    x, y, s = (ref[f"celebahq/{k}"] for k in "xys")
    x = x.contiguous(memory_format=torch.channels_last)
    masks = ref["celebahq/masks"].contiguous(memory_format=torch.channels_last)
    out = nets["G"](x, s, (masks[:, :1], masks[:, 1:]))
    assert out.is_contiguous(memory_format=torch.channels_last)
    # Channels_last convolutions sum in another order: fp32 rounding, about 6e-5 on outputs of 2.8 here.
    torch.testing.assert_close(out, ref["celebahq/G_masked"], rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(nets["E"](x, y), ref["celebahq/E"], rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(nets["D"](x, y), ref["celebahq/D"], rtol=1e-4, atol=2e-4)


@torch.no_grad()
def test_fan_heatmaps_and_masks_equal_the_official():
    ref = torch.load(REFERENCE, weights_only=True)
    fan = FAN()
    fill_by_key_order(fan, 7)
    faces, positions = fan_probe()
    assert_official_output(fan(faces).flatten()[positions], ref["fan/heatmaps_at"])
    whole, inner = landmark_masks(face_like_heatmaps(1, int(ref["masks/seed"])))
    assert_official_output(torch.cat([whole, inner], 1), ref["masks/outputs"])
    # Face-like heatmaps give partial masks, the inner one inside the whole one.
    assert 0.01 < whole.mean() < 0.5 and 0 < inner.mean() < whole.mean()


@torch.no_grad()
def test_fan_masks_take_any_image_size_and_give_256px_masks():
    fan = FAN()
    fill_by_key_order(fan, 7)
    whole, inner = fan.masks(torch.rand(1, 3, 128, 128) * 2 - 1)
    assert whole.shape == inner.shape == (1, 1, 256, 256)
    assert 0 <= float(whole.min()) and float(whole.max()) <= 1


# ---------------------------------------------------------------------------------------------
# data: domain folders

AFHQ = SHARED_DATA / "stargan_v2_representative" / "afhq"
needs_afhq = pytest.mark.skipif(not (AFHQ / "src" / "cat").is_dir(),
                                reason="../shared/data/stargan_v2_representative is not beside this checkout")


def _domain_folder(root, counts: dict[str, int], size: int = 40):
    """Write ``counts[domain]`` small solid-colour JPEGs per domain (colour = domain index)."""
    from PIL import Image

    for k, (domain, count) in enumerate(counts.items()):
        (root / domain).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (size + i, size), (80 * k, 10 * i, 200)).save(root / domain / f"{i:03d}.jpg")
    return root


def test_random_resized_box_stays_within_the_official_scale_and_ratio():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, w, h = random_resized_box(300, 300, rng)
        assert 0 <= left and left + w <= 300 and 0 <= top and top + h <= 300
        assert 0.8 * 0.98 <= w * h / 90000 <= 1.0  # rounding of w and h aside
        assert 0.9 * 0.97 <= w / h <= 1.1 * 1.03
    # A 3:1 image cannot hold any 0.8-area crop of ratio <= 1.1: the fallback is the official center crop.
    assert random_resized_box(300, 100, rng) == (95, 0, 110, 100)


def test_domain_folders_balanced_sampling_and_fixed_reference_partners(tmp_path):
    root = _domain_folder(tmp_path / "data", {"cat": 2, "dog": 6, "wild": 12})
    data = DomainFolderDataset(root, image_size=16)
    assert data.domains == ["cat", "dog", "wild"] and len(data) == 20
    pairs = DomainTrainingPairs(data, seed=0)
    draws = [pairs.get(i, np.random.default_rng(i)) for i in range(300)]
    counts = np.bincount([int(d["label"]) for d in draws], minlength=3)
    assert counts.min() > 70  # each domain about a third, though cat has 2 images and wild 12
    for d in draws[:50]:
        assert d["image"].shape == d["ref"].shape == d["ref2"].shape == (3, 16, 16)
        assert -1 <= float(d["ref"].min()) and float(d["ref"].max()) <= 1
    labels = np.asarray(data.index.labels)
    assert (labels[pairs.partner] == labels).all()  # a reference's partner is of its domain
    assert sorted(pairs.partner.tolist()) == list(range(20))  # every file is someone's partner once
    assert torch.equal(pairs.get(7, np.random.default_rng(99))["ref"], pairs.get(7, np.random.default_rng(99))["ref"])


def test_domains_dataset_picks_train_or_val_and_names_bad_folders(tmp_path):
    from ganforge.data import build_dataset
    from ganforge.data.images import DataError

    _domain_folder(tmp_path / "afhq" / "train", {"cat": 2, "dog": 2})
    _domain_folder(tmp_path / "afhq" / "val", {"cat": 1, "dog": 1})
    cfg = load_config("starganv2/afhq", [f"data.path={tmp_path / 'afhq'}"]).data
    assert len(build_dataset(cfg)) == 4
    cfg.split = "test"
    val = build_dataset(cfg)
    assert len(val) == 2 and not val.augment
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes((tmp_path / "afhq" / "val" / "cat" / "000.jpg").read_bytes())
    cfg.path, cfg.split = str(tmp_path / "flat"), "train"
    with pytest.raises(DataError, match="sub-folder"):
        build_dataset(cfg)


# ---------------------------------------------------------------------------------------------
# training


def tiny(out, data_path, **extra) -> list[str]:
    return short_run(out, {"data.path": str(data_path), "model.image_size": 16, "data.image_size": 16,
                           "model.base_dim": 8, "model.max_conv_dim": 16, "model.num_domains": 2,
                           "recipe.ds_iter": 4, "recipe.sample_images": 3}, **extra)


# Made by scripts/starganv2_official_step_reference.py: two iterations of the official Solver.train.
STEP_REFERENCE = REPO / "tests" / "data" / "starganv2_official_step.pt"


# The official widths at 2**9: the parameter counts its Solver printed (G, F, E, D).
STEP_CASES = {0.0: (STEP_REFERENCE, [112_643, 3_259_072, 443_728, 419_347]),
              1.0: (STEP_REFERENCE.with_name("starganv2_official_step_hpf1.pt"), [423_139, 3_259_072, 443_728, 419_347])}


@pytest.mark.slow
@pytest.mark.parametrize("w_hpf", [0.0, 1.0], ids=["afhq_generator", "celeba_hq_generator_with_fan_masks"])
def test_two_training_iterations_equal_the_official_solver(w_hpf, tmp_path, float64_default):
    """The same weights and inputs through two trainer steps and through two iterations of the official
    ``Solver.train`` (networks at 2**9 instead of 2**14 input channels, float64): every loss agrees to the
    float32 the trainer logs it in, and every parameter's update to 1e-9 of its size. With ``w_hpf`` 1 the
    official FAN (the same seeded weights, handed over as a ``wing.ckpt``) gives the masks of both."""
    from ganforge.train.trainer import Trainer

    reference, counts = STEP_CASES[w_hpf]
    ref = torch.load(reference, weights_only=True)
    folder = _domain_folder(tmp_path / "d", {"a": 2, "b": 2, "c": 2})
    extra = {"model.image_size": 32, "data.image_size": 32, "model.base_dim": 16, "model.max_conv_dim": 512,
             "model.num_domains": 3, "train.batch_size": 2, "model.w_hpf": w_hpf}
    if w_hpf > 0:
        fan = FAN()
        fill_by_key_order(fan, 4)  # the reference script's FAN_SEED
        torch.save({"state_dict": fan.state_dict()}, tmp_path / "wing.ckpt")
        extra["recipe.fan_weights"] = str(tmp_path / "wing.ckpt")
    overrides = tiny(tmp_path, folder, **extra)
    trainer = Trainer(load_config("starganv2/afhq", overrides))  # lambda_ds 2 decaying over ds_iter=4, as the reference
    T, D = trainer.recipe.networks["G"], trainer.recipe.networks["D"]
    nets = {"generator": T.generator, "mapping_network": T.mapping_network, "style_encoder": T.style_encoder,
            "discriminator": D}
    assert [count_parameters(n) for n in nets.values()] == counts
    for seed, net in enumerate(nets.values()):
        fill_by_key_order(net, seed)
    if w_hpf > 0:
        # A random FAN on noise saturates both masks near 1: the high-pass skips carry the whole encoder
        # features, so they and their gradients are compared here; the masks' landmark geometry is
        # compared in test_fan_heatmaps_and_masks_equal_the_official.
        whole, inner = T.masks(ref["input0/x_src"])
        assert whole.min() > 0.5 and inner.min() > 0.5
    before = {name: {k: v.detach().clone() for k, v in net.named_parameters()} for name, net in nets.items()}
    trainer.stream = iter([{"image": ref[f"input{i}/x_src"], "label": ref[f"input{i}/y_src"],
                            "ref": ref[f"input{i}/x_ref"], "ref2": ref[f"input{i}/x_ref2"],
                            "ref_label": ref[f"input{i}/y_ref"]} for i in range(2)])
    trainer.ctx.noise.manual_seed(11)  # z then z2 per iteration: the reference's latent codes
    losses: dict[str, list[float]] = {}
    for i in range(2):
        trainer.step, sums = i, {}
        trainer.train_step(sums)
        for key, value in sums.items():
            if not key.startswith("_count") and not key.endswith(("/loss", "/lambda_ds")):
                phase, part = key.split("/")
                net, guide = phase.split("_")
                losses.setdefault(f"{net}/{'ref' if guide == 'ref' else 'latent'}_{part}", []).append(float(value))
    expected = {k.removeprefix("loss/"): v.tolist() for k, v in ref.items() if k.startswith("loss/")}
    assert set(losses) == set(expected) and len(expected) == 14
    for key, values in expected.items():
        assert losses[key] == pytest.approx(values, rel=1e-7), key  # the trainer logs losses in float32
    for name, net in nets.items():
        ours = update_projections(before[name], dict(net.named_parameters()))
        for key, value in ours.items():
            official = ref[f"update/{name}/{key}"]
            assert (value - official).abs().max() <= 1e-9 * official[-1], (name, key)


@pytest.fixture(scope="module")
def domain_data(tmp_path_factory):
    return _domain_folder(tmp_path_factory.mktemp("domains") / "train", {"female": 3, "male": 5})


@pytest.mark.slow
def test_training_steps_the_official_networks_and_resumes_bit_for_bit(domain_data, tmp_path):
    result = train(load_config("starganv2/afhq", tiny(tmp_path / "a", domain_data)))
    assert result.status == "finished"
    run = tmp_path / "a" / "run"
    state = load_checkpoint(run / "checkpoints" / "step-00000004.pt")
    adam = state["optimizers"]["G"]["state"]
    groups = state["optimizers"]["G"]["param_groups"]
    assert [g["lr"] for g in groups] == [1e-4, 1e-6, 1e-4] and tuple(groups[0]["betas"]) == (0.0, 0.99)
    steps = {k: {float(adam[i]["step"]) for i in g["params"]} for k, g in zip(("G", "F", "E"), groups)}
    # Per iteration the official solver steps G twice (latent, reference), F and E once (latent).
    assert steps == {"G": {8.0}, "F": {4.0}, "E": {4.0}}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"step"' in x]
    weights = [line["G_latent/lambda_ds"] for line in lines if "G_latent/lambda_ds" in line]
    assert weights == pytest.approx([2.0, 1.5, 1.0, 0.5])  # AFHQ's 2, to zero at ds_iter=4
    assert {"D_latent/reg", "D_ref/fake", "G_ref/cyc", "G_latent/sty"} <= set(lines[-1])
    # Reference grid: white corner + 3 sources, then 3 rows of reference + outputs.
    assert grid_size(run / "samples" / "step-00000004.png") == (4 * 18 + 2, 4 * 18 + 2)
    train(load_config("starganv2/afhq", tiny(tmp_path / "b", domain_data, **{"train.steps": 2})))
    resume(tmp_path / "b" / "run", ["train.steps=4"])
    assert_latest_checkpoints_equal(run, tmp_path / "b" / "run")
    check_exports(run, 3, tmp_path / "exports")  # (images, domains, z) -> images
    _check_sample_mode(run, domain_data, tmp_path / "translations")


def _check_sample_mode(run, data, out):
    """`ganforge sample RUN --src --ref` writes the official reference grid, latent grid and video."""
    import imageio_ffmpeg
    assert main(["sample", str(run), "--src", str(data), "--ref", str(data), "--n", "4", "--per-domain", "2",
                 "--out", str(out)]) == 0
    # 4 sources; references 2 female + 2 male: a white corner and the sources, then a row per reference.
    assert grid_size(out / "reference.png") == (5 * 18 + 2, 5 * 18 + 2)
    assert grid_size(out / "latent.png") == (4 * 18 + 2, (1 + 2 * 2) * 18 + 2)  # sources + 2 z x 2 domains
    frames = imageio_ffmpeg.read_frames(str(out / "video_ref.mp4"))
    meta = next(frames)
    # one 31-frame morph per domain (its two references), then the last frame 10 more times
    assert meta["size"] == (16 + 32 + 4 * 16, 32) and sum(1 for _ in frames) == 2 * 31 + 10
    # --n 2 takes one reference per domain for the grid; the video still morphs within each domain.
    assert main(["sample", str(run), "--src", str(data), "--ref", str(data), "--n", "2", "--per-domain", "1",
                 "--out", str(out / "small")]) == 0
    assert grid_size(out / "small" / "reference.png") == (3 * 18 + 2, 3 * 18 + 2)
    frames = imageio_ffmpeg.read_frames(str(out / "small" / "video_ref.mp4"))
    assert next(frames)["size"] == (16 + 32 + 2 * 16, 32) and sum(1 for _ in frames) == 2 * 31 + 10
    # A --ref whose domain folders do not match the model's is refused (here: 1 folder, 'train').
    assert main(["sample", str(run), "--src", str(data), "--ref", str(data.parent), "--out", str(out / "x")]) == 2
    assert not (out / "x").exists()
    # No domain with two references: no video can morph, refused before anything is written.
    single = _domain_folder(out.parent / "single", {"female": 1, "male": 1})
    assert main(["sample", str(run), "--src", str(data), "--ref", str(single), "--out", str(out / "y")]) == 2
    assert not (out / "y").exists()
    assert main(["sample", str(run), "--src", str(data), "--ref", str(single), "--out", str(out / "y"),
                 "--no-video"]) == 0
    assert {p.name for p in (out / "y").iterdir()} == {"reference.png", "latent.png"}


def test_config_errors_name_what_to_change(domain_data, tmp_path):
    with pytest.raises(ConfigError, match="num_domains=2"):
        train(load_config("starganv2/afhq", tiny(tmp_path, domain_data, **{"model.num_domains": 3})))
    with pytest.raises(ConfigError, match="recipe.fan_weights"):
        train(load_config("starganv2/celeba_hq", tiny(tmp_path, domain_data)))
    with pytest.raises(ConfigError, match="data.name=domains"):
        load_config("starganv2/afhq", ["data.name=shapes"])


@pytest.mark.slow
def test_fan_weights_load_from_an_official_wing_file_and_reach_training(domain_data, tmp_path):
    fan = FAN()
    fill_by_key_order(fan, 7)
    torch.save({"state_dict": {f"module.{k}": v for k, v in fan.state_dict().items()}, "epoch": 3},
               tmp_path / "wing.ckpt")
    result = train(load_config("starganv2/celeba_hq", tiny(tmp_path, domain_data, **{
        "recipe.fan_weights": str(tmp_path / "wing.ckpt"), "train.steps": 2})))
    state = load_checkpoint(result.checkpoint)
    assert torch.equal(state["networks"]["G"]["fan.l0.weight"], fan.l0.weight)
    torch.save({"state_dict": {"conv1.conv.weight": fan.conv1.conv.weight}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="not a FAN checkpoint"):
        load_fan_weights(FAN(), tmp_path / "bad.ckpt")


@needs_afhq
def test_afhq_representative_images_train_on_cpu(tmp_path):
    result = train(load_config("starganv2/afhq", tiny(tmp_path, AFHQ / "src", **{
        "model.num_domains": 3, "train.steps": 1, "train.sample_every": 1})))
    assert result.status == "finished"


# ---------------------------------------------------------------------------------------------
# official checkpoints


def _official_files(folder, cfg: Starganv2ModelConfig, iteration: int, prefix: str = "", with_fan: bool = True):
    """Official-format files (CheckpointIO: one dict of per-network state dicts per file) of networks
    filled as the reference script fills the official ones (G 0, F 1, E 2, D 3), with Adam states."""
    nets = _networks(cfg)
    for seed, net in enumerate(nets.values()):
        fill_by_key_order(net, seed)
    names = dict(zip(nets, ("generator", "mapping_network", "style_encoder", "discriminator")))
    saved = {names[k]: {prefix + key: v for key, v in net.state_dict().items()} for k, net in nets.items()}
    if cfg.w_hpf > 0 and with_fan:
        fan = FAN()
        fill_by_key_order(fan, 7)
        saved["fan"] = fan.state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    ema = {k: v for k, v in saved.items() if k != "discriminator"}
    torch.save(ema, folder / f"{iteration:06d}_nets_ema.ckpt")
    torch.save(saved, folder / f"{iteration:06d}_nets.ckpt")
    optims = {}
    for k, net in nets.items():
        opt = torch.optim.Adam(net.parameters(), lr=1e-6 if k == "F" else 1e-4, betas=(0.0, 0.99), weight_decay=1e-4)
        for p in net.parameters():
            p.grad = torch.full_like(p, 0.01)
        opt.step()
        optims[names[k]] = opt.state_dict()
    torch.save(optims, folder / f"{iteration:06d}_optims.ckpt")
    return nets


@pytest.mark.slow
@pytest.mark.parametrize("name, domains, w_hpf, prefix", [("afhq", 3, 0.0, ""), ("celebahq", 2, 1.0, "module.")])
@torch.no_grad()
def test_official_checkpoints_import_with_the_official_outputs(name, domains, w_hpf, prefix, tmp_path):
    import ganforge

    ref = torch.load(REFERENCE, weights_only=True)
    cfg = Starganv2ModelConfig(image_size=64, num_domains=domains, w_hpf=w_hpf)
    _official_files(tmp_path / "expr", cfg, 50000, prefix)
    assert main(["import", "starganv2", str(tmp_path / "expr" / "050000_nets_ema.ckpt"),
                 "--out", str(tmp_path / "run")]) == 0
    run_cfg = load_config(tmp_path / "run" / "config.yaml")
    assert (run_cfg.model.image_size, run_cfg.model.num_domains, run_cfg.model.w_hpf) == (64, domains, w_hpf)
    assert run_cfg.recipe.lambda_ds == (1.0 if w_hpf else 2.0)  # the CelebA-HQ or AFHQ preset
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step-00050000.pt")
    assert set(state["networks"]) == {"G", "D"} and len(state["optimizers"]["G"]["param_groups"]) == 3
    T = ganforge.load(tmp_path / "run").net
    x, y, z, s = (ref[f"{name}/{k}"] for k in "xyzs")
    assert_official_output(T.generator(x, s), ref[f"{name}/G"])
    assert_official_output(T.mapping_network(z, y), ref[f"{name}/F"])
    assert_official_output(T.style_encoder(x, y), ref[f"{name}/E"])
    if w_hpf:
        masks = ref[f"{name}/masks"]
        assert_official_output(T.generator(x, s, (masks[:, :1], masks[:, 1:])), ref[f"{name}/G_masked"])
    D = Discriminator(run_cfg.model)
    D.load_state_dict(state["networks"]["D"])
    assert_official_output(D.eval()(x, y), ref[f"{name}/D"])


def test_imported_run_resumes_with_the_official_adam_state_and_iteration(domain_data, tmp_path):
    cfg = Starganv2ModelConfig(image_size=16, num_domains=2, w_hpf=0.0, base_dim=8, max_conv_dim=16)
    _official_files(tmp_path / "expr", cfg, 3)
    assert main(["import", "starganv2", str(tmp_path / "expr" / "000003_nets.ckpt"), "--out", str(tmp_path / "run"),
                 f"data.path={domain_data}", "data.image_size=16", "recipe.ds_iter=4"]) == 0
    optims = torch.load(tmp_path / "expr" / "000003_optims.ckpt", weights_only=True)
    merged = load_checkpoint(tmp_path / "run" / "checkpoints" / "step-00000003.pt")["optimizers"]["G"]
    n_g = len(optims["generator"]["state"])
    assert torch.equal(merged["state"][n_g]["exp_avg"], optims["mapping_network"]["state"][0]["exp_avg"])
    result = resume(tmp_path / "run", ["train.steps=4", "train.progress=false", "train.tensorboard=false",
                                       "data.num_workers=0", "runtime.device=cpu"])
    assert result.step == 4
    after = load_checkpoint(result.checkpoint)["optimizers"]["G"]
    assert [float(after["state"][i]["step"]) for i in (0, n_g)] == [3.0, 2.0]  # G: 1 + 2, F: 1 + 1


def test_import_errors_name_the_file(tmp_path):
    from ganforge.models.starganv2.official import import_official
    from ganforge.run.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="named like"):
        import_official(tmp_path / "G.ckpt", tmp_path / "run")
    cfg = Starganv2ModelConfig(image_size=16, num_domains=2, w_hpf=1.0, base_dim=8, max_conv_dim=16)
    _official_files(tmp_path / "expr", cfg, 10, with_fan=False)
    with pytest.raises(CheckpointError, match="--fan wing.ckpt"):
        import_official(tmp_path / "expr" / "000010_nets_ema.ckpt", tmp_path / "run")
    torch.save({"state_dict": FAN().state_dict()}, tmp_path / "expr" / "wing.ckpt")  # found beside
    assert import_official(tmp_path / "expr" / "000010_nets_ema.ckpt", tmp_path / "run").is_file()


def test_architecture_is_read_off_official_tensors():
    from ganforge.models.starganv2.official import official_model_config

    for cfg in (Starganv2ModelConfig(image_size=256, num_domains=3, w_hpf=0.0),
                Starganv2ModelConfig(image_size=32, num_domains=2, w_hpf=0.5, base_dim=8, max_conv_dim=32)):
        nets = _networks(cfg)
        states = {k: nets[n].state_dict() for k, n in (("generator", "G"), ("mapping_network", "F"),
                                                         ("style_encoder", "E"))}
        assert official_model_config(states) == cfg


# ----------------------------------------------------------------------------------------------
# the shapes domains view and the evaluation


def test_shapes_domain_view_reads_like_a_domain_folder_and_writes_one(tmp_path):
    from ganforge.data import build_dataset
    from ganforge.data.shapes import SHAPES
    from ganforge.data.shapes_domains import ShapesDomainDataset
    from ganforge.metrics.oracle import read_striped

    cfg = load_config("starganv2/shapes", ["data.length=60", "data.image_size=16", "model.image_size=16"])
    train_view = build_dataset(cfg.data)
    val_view = build_dataset(dataclasses.replace(cfg.data, split="test"))
    assert isinstance(train_view, ShapesDomainDataset) and (len(train_view), len(val_view)) == (60, 6)
    assert train_view.domains == list(SHAPES) and [len(m) for m in train_view.by_domain] == [20, 20, 20]
    scenes = [train_view.scene(i).objects[0] for i in range(60)]
    assert [o.shape for o in scenes] == list(train_view.labels)  # the domain is the shape
    assert {o.texture for o in scenes} == {0, 1}  # both textures occur
    positions = {(o.x, o.y) for o in scenes}
    assert not positions & {(o.x, o.y) for o in (val_view.scene(i).objects[0] for i in range(6))}  # disjoint splits
    at_32 = ShapesDomainDataset(60, 32, augment=False)  # the texture reader needs 32 px or more
    images = torch.stack([at_32.load(i, None) for i in range(60)])
    assert torch.equal(read_striped(images), torch.tensor([o.texture == 1 for o in scenes]))
    augmented = train_view.get(0, np.random.default_rng(1))
    assert augmented["image"].shape == (3, 16, 16) and int(augmented["label"]) == 0
    assert not val_view.augment and train_view.augment

    out = tmp_path / "written"
    assert main(["data", "write", "shapes", "--format", "domains", "--view", "domains", "--out", str(out),
                 "--count", "30", "--image-size", "16"]) == 0
    written = DomainFolderDataset(out / "train", image_size=16, augment=False)
    assert written.domains == sorted(SHAPES) and len(written) == 30
    assert len(DomainFolderDataset(out / "val", image_size=16, augment=False)) == 3
    # PNG is lossless: the folder holds exactly the view's pixels (triangle images 2, 5, ...).
    view = ShapesDomainDataset(30, 16, augment=False)
    first_triangle = written.by_domain[written.domains.index("triangle")][0]
    assert torch.equal(written.load(int(first_triangle), None), view.load(2, None))
    assert main(["data", "write", "shapes", "--format", "domains", "--out", str(tmp_path / "bad")]) == 2


class _CopyTranslator(torch.nn.Module):
    """A stand-in whose output is its style: the reference itself (reference guidance), or the source
    (latent guidance), so every oracle verdict is known."""

    def __init__(self, image_size: int, source_for_latent: dict):
        super().__init__()
        self.model_config = Starganv2ModelConfig(image_size=image_size, num_domains=3, latent_dim=4)
        self.source_for_latent = source_for_latent
        self.mapping_network = lambda z, y: self.source_for_latent["x"]
        self.style_encoder = lambda ref, y: ref
        self.generator = lambda x, s, masks: s

    def masks(self, x):
        self.source_for_latent["x"] = x
        return None


@pytest.mark.slow
def test_starganv2_evaluation_names_tasks_as_official_and_reads_shapes_with_the_oracle(shapes_oracle):
    from ganforge.data.shapes_domains import ShapesDomainDataset
    from ganforge.metrics.evaluate import EvalError
    from ganforge.metrics.inception import build_inception
    from ganforge.metrics.perceptual import build_lpips
    from ganforge.models.starganv2.evaluate import Starganv2EvalConfig, Starganv2Evaluation
    import torchvision

    train_view = ShapesDomainDataset(30, 32, augment=False)
    val_view = ShapesDomainDataset(12, 32, split="test", augment=False)
    cfg = Starganv2EvalConfig(metrics=("fid", "lpips", "oracle"), num_outs=3, sources=2, batch_size=2)
    torch.manual_seed(0)
    lpips = build_lpips("alex", backbone_state=torchvision.models.alexnet().state_dict())
    # A random Inception with batch statistics of these images: features that tell shapes apart.
    from ganforge.metrics.inception import calibrate_batchnorm
    from ganforge.metrics.oracle import rgb_uint8

    inception = calibrate_batchnorm(build_inception(None), [rgb_uint8(torch.stack([train_view.load(i, None)
                                                                                   for i in range(30)]))])
    evaluation = Starganv2Evaluation(train_view, val_view, cfg, inception=inception, lpips=lpips,
                                     oracle=shapes_oracle)
    result = evaluation.run(_CopyTranslator(32, {}))
    tasks = [f"{s}2{t}" for t in ("circle", "square", "triangle") for s in ("circle", "square", "triangle") if s != t]
    for mode in ("latent", "reference"):
        fids = [result.values[f"FID_{mode}/{task}"] for task in tasks]
        assert result.values[f"FID_{mode}/mean"] == pytest.approx(np.mean(fids))
        assert all(np.isfinite(fids))
    # Latent guidance returns the source 3 times: no diversity; references differ from each other.
    assert result.values["LPIPS_latent/mean"] == pytest.approx(0.0, abs=1e-6)
    assert result.values["LPIPS_reference/mean"] > 0.01
    # The source keeps its own shape, pose and color; the reference has the target shape, its color and texture.
    assert result.values["oracle_latent/domain_acc"] == 0.0 and result.values["oracle_latent/pose_kept"] == 1.0
    assert result.values["oracle_latent/colors_per_source"] == 1.0
    assert result.values["oracle_reference/domain_acc"] == 1.0
    assert result.values["oracle_reference/color_taken"] == 1.0 and result.values["oracle_reference/texture_taken"] == 1.0
    assert "circle2square" in result.table() and "FID_reference" in result.table()
    assert result.to_json()["metrics"]["oracle_reference/color_taken"] == 1.0  # values, not the request
    # Reference-guided outputs are the target domain's own images; latent-guided ones another shape's.
    assert result.values["FID_reference/mean"] < result.values["FID_latent/mean"]
    # Fixed seeds: the same numbers. Without FID (Inception at 299 px is most of this test's time); the
    # sources, z and references it would read are the ones LPIPS and the oracle read.
    again = Starganv2Evaluation(train_view, val_view, Starganv2EvalConfig(metrics=("lpips", "oracle"), num_outs=3,
                                                                          sources=2, batch_size=2),
                                lpips=lpips, oracle=shapes_oracle).run(_CopyTranslator(32, {}))
    repeated = {k: v for k, v in result.values.items() if not k.startswith("FID")}
    assert again.values == pytest.approx(repeated, rel=1e-9)

    with pytest.raises(EvalError, match="LPIPS diversity .* num_outs=1"):
        Starganv2Evaluation(train_view, val_view, Starganv2EvalConfig(metrics=("lpips",), num_outs=1), lpips=lpips)
    with pytest.raises(EvalError, match="domains are female, male"):
        folder_like = type("D", (), {"domains": ["female", "male"], "by_domain": [[0], [1]]})()
        Starganv2Evaluation(folder_like, folder_like, Starganv2EvalConfig(metrics=("oracle",)))


def test_imagenet_fid_net_is_the_official_inception_pool(empty_weight_dirs):
    import torch.nn as nn
    import torchvision
    from PIL import Image

    from ganforge.metrics.inception import ImageNetInceptionPool
    from ganforge.metrics.weights import WeightsMissingError
    from ganforge.models.starganv2.evaluate import Starganv2EvalConfig, Starganv2Evaluation

    torch.manual_seed(0)
    state = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True).state_dict()
    pool = ImageNetInceptionPool(state)
    images = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    # The official metrics/fid.py: PIL bilinear to 299, ImageNet normalization, the torchvision blocks
    # Conv2d_1a .. Mixed_7c with its two max pools, then the average pool.
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    net.load_state_dict(state)
    n = net.eval()
    layers = [n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, nn.MaxPool2d(3, 2), n.Conv2d_3b_1x1,
              n.Conv2d_4a_3x3, nn.MaxPool2d(3, 2), n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b,
              n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c, nn.AdaptiveAvgPool2d(1)]
    x = torch.stack([torch.from_numpy(np.asarray(Image.fromarray(i.permute(1, 2, 0).numpy()).resize((299, 299),
                     Image.BILINEAR)).copy()).permute(2, 0, 1) for i in images]).float() / 255
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = nn.Sequential(*layers)(x).flatten(1)
    got = pool(images)
    assert got.shape == (2, 2048) and (got - expected).abs().max() <= 1e-5 * expected.abs().max()  # random BN: huge values
    with pytest.raises(WeightsMissingError, match="inception_v3_google-0cc3c7bd.pth"):
        data = type("D", (), {"domains": ["a", "b"], "by_domain": [[0], [1]]})()
        Starganv2Evaluation(data, data, Starganv2EvalConfig(metrics=("fid",), fid_net="imagenet"))


@pytest.mark.slow
def test_evaluation_during_training_is_the_evaluate_verb(tmp_path, capsys):
    # The trainer measures with the family's own evaluation: the logged numbers are what
    # `ganforge evaluate` gives on the same checkpoint (not translations of noise).
    overrides = short_run(tmp_path, {"data.length": 60, "model.base_dim": 8, "model.max_conv_dim": 16,
                                     "recipe.sample_images": 3, "train.steps": 2, "train.ema.enabled": True},
                          **{"eval.every": 2, "eval.metrics": "[oracle]", "eval.n": 2, "eval.batch_size": 2,
                             "eval.keep_best": 1})
    assert main(["train", "starganv2/shapes", *overrides]) == 0
    run = tmp_path / "run"
    logged = json.loads((run / "eval" / "step-00000002.json").read_text())["metrics"]
    assert set(logged) >= {"oracle_latent/domain_acc", "oracle_reference/color_taken"}
    assert (run / "checkpoints" / "best").is_dir()
    assert main(["evaluate", str(run), "--metrics", "oracle", "--n", "2", "--batch-size", "2", "--json",
                 "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == logged
