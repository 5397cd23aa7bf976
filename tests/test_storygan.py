"""StoryGAN: official networks and checkpoints, CLEVR-SV and shapes stories, training, story verb, metrics."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import subprocess

import numpy as np
import pytest
import torch

from gfhelpers import (PYTHON, REPO, SHARED_DATA, assert_latest_checkpoints_equal, check_exports, grid_size,
                       labelled_columns, python_env, short_run)
from ganforge.cli import main
from ganforge.config import ConfigError
from ganforge.presets import load_config
from ganforge.data import write_dataset
from ganforge.data.images import DataError
from ganforge.data.story import ClevrStoryDataset, ShapesStoryDataset, story_labels_from_descriptions
from ganforge.layers.norm import to_channels_last
from ganforge.metrics.ssim import ssim
from ganforge.models.storygan.losses import discriminator_loss, kl_loss
from ganforge.models.storygan.networks import (ImageDiscriminator, StoryDiscriminator, StoryganGenerator,
                                               StoryganModelConfig)
from ganforge.models.storygan.official import import_official
from ganforge.run.checkpoint import CheckpointError, load_checkpoint
from ganforge.train.phases import count_parameters
from ganforge.train.trainer import resume, train

OFFICIAL = REPO / "tests" / "data" / "storygan_official"
CLEVR = SHARED_DATA / "clevr_sv"
needs_clevr = pytest.mark.skipif(not (CLEVR / "CLEVR_dict.npy").is_file(),
                                 reason="../shared/data/clevr_sv (the CLEVR-SV demo subset) is not beside this checkout")


def test_parameter_counts_match_the_official_clevr_config():
    cfg = StoryganModelConfig()
    assert count_parameters(StoryganGenerator(cfg)) == 35_003_478
    assert count_parameters(ImageDiscriminator(cfg)) == 12_226_945
    assert count_parameters(StoryDiscriminator(cfg)) == 27_967_873


def _imported(tmp_path, eval_bn: str):
    import_official(OFFICIAL / "netG_epoch_5.pth", tmp_path / "run", overrides=[f"model.eval_bn={eval_bn}"])
    state = load_checkpoint(next((tmp_path / "run" / "checkpoints").glob("step-*.pt")))
    m = load_config(tmp_path / "run" / "config.yaml").model
    nets = (StoryganGenerator(m), ImageDiscriminator(m), StoryDiscriminator(m))
    for net, name in zip(nets, ("G", "D_im", "D_st")):
        net.load_state_dict(state["networks"][name])
    return m, nets


@torch.no_grad()
def test_official_checkpoints_import_with_identical_outputs(tmp_path):
    # Made by scripts/storygan_official_reference.py from yitong91/StoryGAN's model.py (seed 0).
    ref = torch.load(OFFICIAL / "reference.pt", weights_only=True)
    m, (G, D_im, D_st) = _imported(tmp_path, "running")
    assert (m.gf_dim, m.df_dim, m.video_len, m.text_dim, m.noise_dim, m.label_num) == (4, 4, 4, 75, 100, 15)
    d = ref["descriptions"]
    for mode in ("eval", "train"):  # eval first: train-mode forwards move the running statistics
        for net in (G, D_im, D_st):
            net.train(mode == "train")
        story = G.story(d, ref[f"{mode}/story_noise"])
        assert (story.images - ref[f"{mode}/story"]).abs().max() < 1e-5
        assert torch.equal(story.condition, ref[f"{mode}/story_condition"])
        image = G.image(d[:, 2], d.mean(1), ref[f"{mode}/image_noise"])
        assert (image.images - ref[f"{mode}/image"]).abs().max() < 1e-5
        features = D_im(ref["images"])
        assert (D_im.get_cond_logits(features, d[:, 0]) - ref[f"{mode}/d_im_prob"]).abs().max() < 1e-6
        assert (D_im.categories(features) - ref[f"{mode}/d_im_categories"]).abs().max() < 1e-6
        assert (D_st.get_cond_logits(D_st(ref["stories"]), d.mean(1)) - ref[f"{mode}/d_st_prob"]).abs().max() < 1e-6
    assert (ref["eval/story"] - ref["train/story"]).abs().max() > 1e-3  # the two modes really differ


@torch.no_grad()
def test_batch_statistics_sampling_is_the_official_test_loop_and_leaves_running_stats(tmp_path):
    ref = torch.load(OFFICIAL / "reference.pt", weights_only=True)
    _, (G, _, _) = _imported(tmp_path, "batch")
    before = {k: v.clone() for k, v in G.state_dict().items()}
    G.eval()
    out = G(ref["descriptions"], ref["train/story_noise"])
    assert (out - ref["train/story"]).abs().max() < 1e-5  # the official code never calls eval()
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items())


def test_import_errors_name_the_file(tmp_path, capsys):
    torch.save({"main.0.weight": torch.zeros(1)}, tmp_path / "netG_epoch_1.pth")
    with pytest.raises(CheckpointError, match="netG_epoch_1.pth.*recurrent.weight_ih"):
        import_official(tmp_path / "netG_epoch_1.pth", tmp_path / "run")
    assert main(["import", "storygan", str(tmp_path / "none.pth"), "--out", str(tmp_path / "r")]) == 2
    assert "none.pth" in capsys.readouterr().err


@pytest.mark.slow
def test_imported_generator_alone_runs_and_resume_starts_its_discriminators_fresh(tmp_path, caplog):
    only_g = tmp_path / "g"
    only_g.mkdir()
    shutil.copy(OFFICIAL / "netG_epoch_5.pth", only_g)
    shapes = ["data.name=shapes", "data.view=story", "data.length=8", "data.num_workers=0", "train.batch_size=4",
              "train.progress=false", "train.tensorboard=false", "train.sample_every=100"]
    import_official(only_g / "netG_epoch_5.pth", tmp_path / "run", overrides=shapes)
    state = load_checkpoint(next((tmp_path / "run" / "checkpoints").glob("step-*.pt")))
    assert set(state["networks"]) == {"G"} and state["imported_from"]["D_im"] is None
    with caplog.at_level(logging.WARNING):
        result = resume(tmp_path / "run", ["train.steps=1"])
    assert result.step == 1 and "no 'D_im' weights" in caplog.text


def test_discriminator_loss_is_the_official_formula():
    torch.manual_seed(0)
    m = StoryganModelConfig(gf_dim=2, df_dim=2)
    D = ImageDiscriminator(m)
    real, fake = torch.rand(4, 3, 64, 64) * 2 - 1, torch.rand(4, 3, 64, 64) * 2 - 1
    cond, labels = torch.rand(4, 75), (torch.rand(4, 15) > 0.5).float()
    loss, parts = discriminator_loss(D, real, fake, cond, labels, 1.0, contextlib.nullcontext)
    # compute_discriminator_loss with BCELoss on the sigmoid outputs, same forward order
    f_real, f_fake = D(real), D(fake)
    bce = torch.nn.BCELoss()
    r = bce(D.get_cond_logits(f_real, cond), torch.ones(4))
    w = bce(D.get_cond_logits(f_real[:3], cond[1:]), torch.zeros(3))
    f = bce(D.get_cond_logits(f_fake, cond), torch.zeros(4))
    c = torch.nn.MultiLabelSoftMarginLoss()(D.cate_classify(f_real).squeeze(), labels)
    assert torch.allclose(loss, r + (f + w) * 0.5 + c, atol=1e-5)
    assert torch.allclose(parts["wrong"], w, atol=1e-6)


def test_paper_variant_trains_the_conditioning_augmentation():
    torch.manual_seed(0)
    d, z = torch.rand(2, 4, 75), torch.randn(2, 4, 100)
    for variant, grows in (("official_code", False), ("paper", True)):
        G = StoryganGenerator(StoryganModelConfig(gf_dim=2, variant=variant))
        out = G.story(d, z)
        kl = kl_loss(out.kl_mu, out.kl_logvar)
        assert kl.requires_grad == grows
        if grows:
            kl.backward()
            assert G.ca_net.fc.weight.grad.abs().sum() > 0
        else:  # the official code: the descriptions stand in for mu and log-variance, KL is data only
            assert torch.equal(out.kl_mu, d.flatten(0, 1)) and torch.equal(out.condition, d.mean(1))


# ----------------------------------------------------------------------------------------------
# data


@needs_clevr
def test_clevr_sv_official_split_frames_and_labels(caplog):
    import PIL.Image
    import torchvision.transforms as T

    with caplog.at_level(logging.WARNING):
        test = ClevrStoryDataset(CLEVR, story_range=(172, 196))
    # the official test range (172..196 inclusive); story 196 has no descriptions: reported, skipped
    assert test.story_ids == list(range(172, 196)) and test.skipped["no_description"][0] == "CLEVR_new_000196_1.png"
    assert "CLEVR_new_000196_1.png" in caplog.text
    train_set = ClevrStoryDataset(CLEVR, story_range=(100, 172))
    assert len(train_set) == 73 and (train_set.video_len, train_set.text_dim, train_set.label_num) == (4, 75, 15)
    item = train_set.get(5)
    assert item["images"].shape == (4, 3, 64, 64) and item["descriptions"].shape == (4, 75)
    # frames exactly as the official transform (Resize((64, 64)) on the RGBA array, first 3 channels)
    official = T.Compose([PIL.Image.fromarray, T.Resize((64, 64)), T.ToTensor(), lambda x: x[:3],
                          T.Normalize((0.5,) * 3, (0.5,) * 3)])
    path = CLEVR / "images" / "CLEVR_new_000105_3.png"
    assert torch.allclose(item["images"][2], official(np.array(PIL.Image.open(path))), atol=1e-6)
    table = np.load(CLEVR / "CLEVR_dict.npy", allow_pickle=True, encoding="latin1").item()
    assert torch.equal(item["descriptions"][2], torch.tensor(table["CLEVR_new_000105_3.png"], dtype=torch.float32))
    # the story loader's cumulative labels equal the image loader's OR over slots, frame by frame
    assert torch.equal(item["labels"], torch.stack([train_set.frame_label(5, t) for t in range(4)]))
    assert item["labels"][0].sum() == 4 and (item["labels"][3] >= item["labels"][0]).all()


@needs_clevr
def test_clevr_sv_bad_input_is_reported(tmp_path, caplog):
    root = tmp_path / "clevr"
    shutil.copytree(CLEVR, root)
    table = np.load(root / "CLEVR_dict.npy", allow_pickle=True, encoding="latin1").item()
    del table["CLEVR_new_000101_2.png"]  # a frame without a description
    np.save(root / "CLEVR_dict.npy", np.array(table, dtype=object), allow_pickle=True)
    (root / "images" / "CLEVR_new_000102_4.png").unlink()  # a story with a frame missing
    with caplog.at_level(logging.WARNING):
        ds = ClevrStoryDataset(root, story_range=(100, 110))
    assert 101 not in ds.story_ids and 102 not in ds.story_ids and len(ds) == 9
    assert "CLEVR_new_000101_2.png" in caplog.text and "102" in caplog.text
    with pytest.raises(DataError, match="no complete, described story"):
        ClevrStoryDataset(root, story_range=(101, 102))
    with pytest.raises(DataError, match="no 'images' sub-folder"):
        ClevrStoryDataset(tmp_path)
    np.save(root / "CLEVR_dict.npy", np.arange(3))
    with pytest.raises(DataError, match="CLEVR_dict.npy"):
        ClevrStoryDataset(root)


@needs_clevr
def test_video_len_and_text_dim_are_checked_against_the_data(tmp_path):
    cfg = load_config("configs/storygan/clevr_sv.yaml", [f"data.root={CLEVR}", "model.video_len=5",
                                                          f"out_dir={tmp_path}"])
    assert cfg.data.path == str(CLEVR)  # data.root is data.path
    with pytest.raises(ConfigError, match="model.video_len=5 but the data has 4"):
        train(cfg)
    with pytest.raises(ConfigError, match="data.root.*data.path.*differ"):
        load_config("storygan/clevr_sv", ["data.root=/a", "data.path=/b"])


def test_shapes_story_view_and_the_clevr_sv_writer(tmp_path):
    ds = ShapesStoryDataset(length=6, video_len=4)
    item = ds.get(2)
    scene = ds.scenes[2]
    assert len(scene.objects) == 4 and item["images"].shape == (4, 3, 64, 64)
    d = item["descriptions"].numpy()
    for t, obj in enumerate(scene.objects):  # object t appears at frame t and stays described after it
        slot = d[:, t * 18:(t + 1) * 18]
        assert (slot[:t] == 0).all() and (slot[t:, obj.shape] == 1).all() and (slot[t:, 3 + obj.color] == 1).all()
        assert np.allclose(slot[t:, 15], (obj.x - 0.5) * 6)
    assert np.array_equal(item["labels"].numpy(), story_labels_from_descriptions(d))
    write_dataset(ds, "clevr_sv", tmp_path / "sv", progress=False)
    back = ClevrStoryDataset(tmp_path / "sv")
    assert len(back) == 6 and back.story_ids == list(range(6))
    assert torch.equal(back.get(2)["descriptions"], item["descriptions"])
    assert (back.get(2)["images"] - item["images"]).abs().max() < 1 / 127.5 + 1e-6  # uint8 PNG round trip
    with pytest.raises(DataError, match="clevr_sv format"):
        write_dataset(ds, "image_folder", tmp_path / "x", progress=False)


# ----------------------------------------------------------------------------------------------
# training, story verb, export, metrics


def tiny(out, shapes: bool = True, **extra) -> list[str]:
    # data.length is a key of the shapes data only
    return short_run(out, {"model.gf_dim": 2, "model.df_dim": 2, **({"data.length": 12} if shapes else {}),
                           "recipe.image_batch_size": 6, "recipe.sample_stories": 3, "runtime.precision": "fp32"},
                     **extra)


@pytest.fixture(scope="module")
def storygan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("story")
    result = train(load_config("storygan/shapes", tiny(out)))
    assert result.status == "finished"
    return out / "run"


def test_training_writes_story_strips_and_resumes_bit_for_bit(storygan_run, tmp_path):
    strip = storygan_run / "samples" / "step-00000004.png"
    assert grid_size(strip) == (8 * 66 + 2, 3 * 66 + 2)  # 3 stories: 4 generated frames, then 4 real ones
    lines = [json.loads(x) for x in (storygan_run / "metrics.jsonl").read_text().splitlines()]
    assert {"D_im/category", "D_st/wrong", "G/kl"} <= set(lines[-1])
    train(load_config("storygan/shapes", tiny(tmp_path, **{"train.steps": 2})))
    resume(tmp_path / "run", ["train.steps=4"])
    assert_latest_checkpoints_equal(storygan_run, tmp_path / "run")


@pytest.mark.parametrize("df_dim", [2, 3, 96])  # 8ndf = 16 and 24 hit PyTorch's bf16 channels_last bug
def test_conditional_logits_agree_in_bf16_channels_last(df_dim):
    """The presets train channels_last; the 4x4 -> 1x1 logit conv must give the contiguous result."""
    torch.manual_seed(0)
    cfg = StoryganModelConfig(df_dim=df_dim)
    d = ImageDiscriminator(cfg).train()
    images, condition = torch.rand(6, 3, 64, 64) * 2 - 1, torch.rand(6, cfg.text_dim)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = d.get_cond_logits.logits(d(images), condition).float()
        d = to_channels_last(d)
        fast = d.get_cond_logits.logits(d(images.contiguous(memory_format=torch.channels_last)), condition).float()
    assert torch.allclose(fast, plain, atol=0.05 * plain.abs().max().item())


def test_bf16_training_tracks_fp32(tmp_path):
    """The shapes preset trains in bf16: the same steps give finite losses close to fp32's."""
    runs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        train(load_config("storygan/shapes", tiny(out, **{"runtime.precision": precision, "train.steps": 3})))
        runs[precision] = [json.loads(x) for x in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    for fp32, bf16 in zip(runs["fp32"], runs["bf16"], strict=True):
        for key in ("D_im/loss", "D_st/loss", "G/loss"):
            assert math.isfinite(bf16[key])
            assert bf16[key] == pytest.approx(fp32[key], rel=0.05), (key, fp32["step"])


@pytest.mark.slow
def test_two_process_torchrun_trains_and_splits_both_batches(tmp_path):
    """torchrun with 2 processes: each takes half of the story and image batches (the conditioning
    network, unused by the official code, has no gradient on any rank), and a split that leaves a
    process one story per micro-batch is refused, since wrong pairs need two."""
    args = tiny(tmp_path, **{"train.steps": 2})
    ddp = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganforge",
                          "train", "storygan/shapes", *args], env=python_env(), capture_output=True, text=True,
                         timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step-00000002.pt")
    assert state["data_position"] == 2 * 4  # steps x global story batch
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(line["G/loss"]) for line in lines) and len(lines) == 2
    small = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                            "ganforge", "train", "storygan/shapes", *tiny(tmp_path / "small", **{"train.batch_size": 2})],
                           env=python_env(), capture_output=True, text=True, timeout=300)
    assert small.returncode != 0
    assert "train.batch_size over 2 process(es)" in small.stderr and "at least 4" in small.stderr


def test_learning_rate_halves_every_lr_decay_epochs():
    from ganforge.models.storygan.recipe import steps_per_epoch

    assert steps_per_epoch(73, 24) == 3  # the demo subset: the last partial batch is dropped
    cfg = load_config("storygan/shapes", ["recipe.lr_decay_epochs=2", "data.length=8", "train.batch_size=4",
                                          "model.gf_dim=2", "model.df_dim=2", "data.num_workers=0"])
    from ganforge.train.trainer import Trainer

    schedule = Trainer(cfg).recipe.lr_schedule  # 2 steps an epoch: halves at steps 4, 8
    assert [schedule(s) for s in (0, 3, 4, 7, 8)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_bad_configs_are_refused_before_work():
    with pytest.raises(ConfigError, match="data.view=story"):
        load_config("storygan/shapes", ["data.view=class"])
    with pytest.raises(ConfigError, match="data.image_size must be 64"):
        load_config("storygan/shapes", ["data.image_size=32"])
    with pytest.raises(ConfigError, match="data.video_len=3.*model.video_len=4"):
        load_config("storygan/shapes", ["data.video_len=3"])


def test_story_verb_from_files_and_from_data(storygan_run, tmp_path, capsys):
    vectors = ShapesStoryDataset(length=2).get(1)["descriptions"].numpy()
    np.save(tmp_path / "one.npy", vectors)
    assert main(["story", str(storygan_run), "--descriptions", str(tmp_path / "one.npy"), "--out",
                 str(tmp_path / "one.png"), "--frames"]) == 0
    assert grid_size(tmp_path / "one.png") == (4 * 66 + 2, 66 + 2)
    assert labelled_columns(tmp_path / "one.png", 4) == [True] * 4  # "generated 1" .. "generated 4"
    assert len(list((tmp_path / "one").glob("*.png"))) == 4
    (tmp_path / "two.json").write_text(json.dumps([vectors.tolist(), vectors.tolist()]))
    assert main(["story", str(storygan_run), "--descriptions", str(tmp_path / "two.json")]) == 0
    assert (storygan_run / "samples" / "story-two-seed0.png").is_file()
    assert main(["story", str(storygan_run), "--from-data", "2"]) == 0
    assert "generated | ground truth" in capsys.readouterr().out
    # Another range of stories gets its own strip instead of overwriting the first one's.
    write_dataset(ShapesStoryDataset(length=6), "clevr_sv", tmp_path / "sv", progress=False)
    assert main(["story", str(storygan_run), "--from-data", "2", "data.name=clevr_sv", f"data.root={tmp_path / 'sv'}",
                 "data.story_range=[2,4]"]) == 0
    assert {p.name for p in (storygan_run / "samples").glob("story-*")} >= {
        "story-shapes2-seed0.png", "story-clevr_sv2-stories2-4-seed0.png"}
    np.save(tmp_path / "short.npy", vectors[:3])
    assert main(["story", str(storygan_run), "--descriptions", str(tmp_path / "short.npy")]) == 2
    assert "3 frames; this model draws 4" in capsys.readouterr().err
    (tmp_path / "text.txt").write_text("a red cube\na blue ball\na cylinder\na cube\n")
    assert main(["story", str(storygan_run), "--descriptions", str(tmp_path / "text.txt")]) == 2
    assert "--text-encoder" in capsys.readouterr().err
    assert main(["sample", str(storygan_run)]) == 2
    assert "ganforge story" in capsys.readouterr().err


def test_text_encoder_dimension_is_checked(tmp_path):
    from ganforge.models.storygan.story import encode_sentences

    with pytest.raises(DataError, match="not a folder"):
        encode_sentences(["a cube"], tmp_path / "missing", 75)


@pytest.mark.slow
def test_stories_from_python(storygan_run, tmp_path):
    import ganforge

    vectors = np.stack([ShapesStoryDataset(length=3).get(i)["descriptions"].numpy() for i in range(2)])
    gen = ganforge.load(storygan_run)
    stories = gen.story(vectors, seed=1)
    assert stories.shape == (2, 4, 3, 64, 64) and torch.equal(stories, gen.story(vectors, seed=1))
    np.save(tmp_path / "two.npy", vectors)
    assert torch.equal(gen.story(tmp_path / "two.npy", seed=1), stories), "a file as the story verb reads it"
    with pytest.raises(ValueError, match=r"descriptions must be \(N, 4, "):
        gen.story(vectors[:, :3])


def test_export_takes_descriptions_and_noise(storygan_run, tmp_path):
    check_exports(storygan_run, 3, tmp_path, atol=1e-4)


def test_story_metrics_on_shapes(storygan_run, shapes_oracle):
    from ganforge.metrics.evaluate import EvalError, Evaluator
    from ganforge.metrics.source import open_source
    from ganforge.models.storygan.evaluate import StoryganEvaluation

    source = open_source(storygan_run)
    family = StoryganEvaluation(source.dataset)
    ev = Evaluator(source.dataset, "story", 6, oracle=shapes_oracle, batch_size=4, family_eval=family)
    result = ev.evaluate_generator(source.generator)
    assert set(result.metrics) >= {"ssim", "object_acc", "count_acc", "in_place", "object_acc/frame4"}
    # the ground truth is what a perfect model would draw: the metrics read it as right
    truth = result.real_vs_real
    assert truth["in_place"] == 1.0 and truth["object_acc"] >= 0.95 and truth["count_acc"] >= 0.95
    assert result.metrics["in_place"] < 0.9  # 4 steps of training draw no objects in place
    assert 0.0 < result.metrics["ssim"] < 0.9
    with pytest.raises(EvalError, match="--metrics story"):
        Evaluator(source.dataset, "story,fid", 6, oracle=shapes_oracle, family_eval=family)


def test_evaluate_verb_measures_stories_by_default(storygan_run, tmp_path, capsys):
    # No --metrics and no --n: the story group over every story of the data (12 here).
    assert main(["evaluate", str(storygan_run), "--out", str(tmp_path / "eval.json")]) == 0
    assert "object_acc/slot4" in capsys.readouterr().out
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["n"] == 12 and {"ssim", "object_acc", "in_place"} <= set(result["metrics"])


def test_slot_accuracy_finds_the_objects_a_story_loses(shapes_oracle):
    from ganforge.data.story import ShapesStoryDataset
    from ganforge.models.storygan.evaluate import shapes_story_metrics

    ds = ShapesStoryDataset(length=12, image_size=64, video_len=4)
    idx = np.arange(12)
    real = torch.stack([ds.get(int(i))["images"] for i in idx])
    truth = shapes_story_metrics(ds, idx, real, shapes_oracle)
    assert [truth[f"object_acc/slot{k}"] for k in range(1, 5)] == pytest.approx([1.0] * 4, abs=0.05)
    # Every frame shows the first frame again: only the first object is read, in every frame. A later
    # object counts as read only where its class is the first one's.
    frozen = shapes_story_metrics(ds, idx, real[:, :1].expand_as(real).contiguous(), shapes_oracle)
    assert frozen["object_acc/slot1"] >= 0.95
    for k in range(1, 4):
        same = np.mean([ds.scenes[i].objects[k].class_id == ds.scenes[i].objects[0].class_id for i in idx])
        assert frozen[f"object_acc/slot{k + 1}"] == pytest.approx(same, abs=0.1)


def test_ssim_reference_values():
    i = torch.arange(32.0)
    x = torch.stack([torch.sin(i[:, None] / 3 + c) * torch.cos(i[None, :] / 5) for c in range(3)])[None]
    y = torch.stack([torch.sin(i[:, None] / 4 + c) * torch.cos(i[None, :] / 5 + 1) for c in range(3)])[None] * 0.8
    assert torch.allclose(ssim(x, x), torch.ones(1))
    assert torch.allclose(ssim(x, y), ssim(y, x))
    # scikit-image 0.26 structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    # data_range=1, channel_axis=0) on the same pair scaled to [0, 1]: 0.11454958448083875
    assert abs(ssim(x, y).item() - 0.11454958448) < 1e-6


def _pororo_folder(root, missing_label: str | None = None):
    """A tiny Pororo-SV folder: 2 videos of 6 frames, each frame a strip of 3 squares of 32 px."""
    from PIL import Image

    labels, vectors, attrs, texts, firsts, followings = {}, {}, {}, {}, [], []
    for v in range(2):
        for n in range(6):
            fid = f"Pororo_ENGLISH1_{v}_ep1/{n}"
            (root / f"Pororo_ENGLISH1_{v}_ep1").mkdir(parents=True, exist_ok=True)
            strip = np.zeros((96, 32, 3), np.uint8)
            for k in range(3):  # square k of frame n has gray level 10 * n + 60 * k
                strip[32 * k:32 * (k + 1)] = 10 * n + 60 * k
            Image.fromarray(strip).save(root / f"{fid}.png")
            labels[fid] = np.eye(9)[(v + n) % 9]
            vectors[fid] = [np.full(4, n, np.float32), np.full(4, -n, np.float32)]  # two descriptions
            attrs[fid] = [np.ones(3), np.zeros(3)]
            texts[fid] = [f"frame {n} of video {v}", "another sentence"]
        for first in range(2):  # stories start at frames 0 and 1 (5 frames each)
            firsts.append(f"Pororo_ENGLISH1_{v}_ep1/{first}.png".encode())
            followings.append([f"Pororo_ENGLISH1_{v}_ep1/{first + k}.png".encode() for k in range(1, 5)])
    if missing_label:
        del labels[missing_label]
    for name, table in (("labels", labels), ("descriptions_vec", vectors), ("descriptions_attr", attrs),
                        ("descriptions", texts)):
        np.save(root / f"{name}.npy", np.array(table, dtype=object), allow_pickle=True)
    np.save(root / "img_cache4.npy", np.array(firsts))
    np.save(root / "following_cache4.npy", np.array(followings))
    np.save(root / "train_test_ids.npy", np.array([np.array([0, 1, 2]), np.array([3])], dtype=object),
            allow_pickle=True)
    return root


def test_pororo_sv_format(tmp_path, caplog):
    from ganforge.data.story import PororoStoryDataset

    root = _pororo_folder(tmp_path / "pororo")
    train_set = PororoStoryDataset(root, split="train")
    assert len(train_set) == 3 and len(PororoStoryDataset(root, split="test")) == 1
    assert (train_set.video_len, train_set.text_dim, train_set.label_num) == (5, 7, 9)
    item = train_set.get(1)  # video 0, frames 1..5, first square and first description without an rng
    assert item["images"].shape == (5, 3, 64, 64)
    assert torch.allclose(item["images"][:, 0, 0, 0], torch.tensor([10.0 * n for n in range(1, 6)]) / 127.5 - 1)
    assert torch.equal(item["descriptions"][2], torch.tensor([3.0] * 4 + [1.0] * 3))
    assert torch.equal(item["labels"][0], torch.eye(9)[1])
    # in training, a square of the strip and one of the descriptions are drawn from the item's generator
    levels, firsts = set(), set()
    for seed in range(12):
        drawn = train_set.get(1, np.random.default_rng(seed))
        levels.add(round(float(drawn["images"][0, 0, 0, 0] + 1) * 127.5))
        firsts.add(float(drawn["descriptions"][0, 0]))
    assert levels == {10, 70, 130} and firsts == {1.0, -1.0}
    broken = _pororo_folder(tmp_path / "broken", missing_label="Pororo_ENGLISH1_1_ep1/5")
    with caplog.at_level(logging.WARNING):
        assert len(PororoStoryDataset(broken, split="all")) == 3  # video 1's second story needs frame 5
    assert "Pororo_ENGLISH1_1_ep1/5" in caplog.text
    (broken / "labels.npy").unlink()
    with pytest.raises(DataError, match="no labels.npy"):
        PororoStoryDataset(broken)


def test_pororo_sv_trains_with_the_data_dimensions(tmp_path):
    root = _pororo_folder(tmp_path / "pororo")
    over = tiny(tmp_path, shapes=False, **{"data.path": str(root), "train.steps": 1, "train.batch_size": 3,
                             "recipe.image_batch_size": 3})
    with pytest.raises(ConfigError, match="model.video_len=4 but the data has 5"):
        train(load_config("storygan/pororo_sv", [*over, "model.video_len=4"]))
    assert train(load_config("storygan/pororo_sv", [*over, "model.text_dim=7", "model.condition_dim=7",
                                                    "name=ok"])).step == 1


class _GrayCharacters(torch.nn.Module):
    """A stand-in classifier: character k is present when the frame's mean (ImageNet-normalized red)
    falls in band k; lets the test know the right answer for any frame."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = x[:, 0].mean((1, 2))
        centers = torch.linspace(-2.0, 2.2, 9)
        return 20.0 * (0.25 - (level[:, None] - centers).abs())


def test_pororo_character_accuracy_with_a_classifier_file(tmp_path, capsys):
    from ganforge.models.storygan.characters import character_scores, load_character_classifier

    path = tmp_path / "classifier.pt"
    torch.jit.script(_GrayCharacters()).save(str(path))
    clf = load_character_classifier(path, 9)
    frames = torch.full((2, 3, 16, 16), -1.0)  # black: normalized red -2.12, nearest band 0
    scores = character_scores(clf, frames, torch.eye(9)[[0, 1]])
    assert scores["char_acc"] == 0.5 and scores["char_f1"] == 0.5  # tp 1, fp 1, fn 1
    torch.save({"fc.weight": torch.zeros(5, 2048)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="9 character outputs"):
        load_character_classifier(tmp_path / "bad.pth", 9)
    root = _pororo_folder(tmp_path / "pororo")
    over = tiny(tmp_path, shapes=False, **{"data.path": str(root), "train.steps": 1, "train.batch_size": 3,
                             "recipe.image_batch_size": 3, "model.text_dim": 7, "model.condition_dim": 7})
    train(load_config("storygan/pororo_sv", over))
    assert main(["evaluate", str(tmp_path / "run"), "--metrics", "story", "--n", "3", "--classifier", str(path)]) == 0
    out = capsys.readouterr().out
    assert "char_acc" in out and "char_f1" in out


def test_free_text_stories_through_a_local_sentence_encoder(storygan_run, tmp_path, monkeypatch, capsys):
    """The sentence-transformers API (a stand-in module: the package and its models are the user's)."""
    import sys
    import types

    class FakeEncoder:
        def __init__(self, path, device="cpu", local_files_only=False):
            assert local_files_only  # never a download
            self.dim = int((tmp_path / "enc" / "dim.txt").read_text())

        def get_embedding_dimension(self):
            return self.dim

        def encode(self, sentences, convert_to_numpy=True):
            return np.stack([np.full(self.dim, len(s) / 10, np.float32) for s in sentences])

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.SimpleNamespace(SentenceTransformer=FakeEncoder))
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "dim.txt").write_text("75")
    (tmp_path / "story.txt").write_text("A red square.\nA blue circle appears.\nThen a triangle.\nAnd one more.\n\n"
                                        "One.\nTwo.\nThree.\nFour.\n")
    assert main(["story", str(storygan_run), "--descriptions", str(tmp_path / "story.txt"), "--text-encoder",
                 str(tmp_path / "enc"), "--out", str(tmp_path / "s.png")]) == 0
    assert "drew 2 stories" in capsys.readouterr().out
    (tmp_path / "enc" / "dim.txt").write_text("384")  # all-MiniLM-L6-v2's size: not what the model reads
    assert main(["story", str(storygan_run), "--descriptions", str(tmp_path / "story.txt"), "--text-encoder",
                 str(tmp_path / "enc")]) == 2
    assert "embeds sentences in 384 values; this model was trained on 75" in capsys.readouterr().err
