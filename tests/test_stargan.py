"""StarGAN: official architecture and checkpoints, labels, schedules, CelebA data, train/translate/export."""

from __future__ import annotations

import random

import pytest
import torch

from gfhelpers import (REPO, assert_latest_checkpoints_equal, check_exports, grid_size, grid_size_box, labelled_columns,
                       short_run, tiny_overrides)
from ganforge.cli import main
from ganforge.config import ConfigError
from ganforge.presets import load_config
from ganforge.data import build_dataset, write_dataset
from ganforge.data.celeba import CelebADataset, official_split
from ganforge.data.images import DataError
from ganforge.data.shapes import ATTRIBUTES, ShapesDataset, background_level
from ganforge.models.stargan.labels import Conditioning, LabelError, LabelSpace, Part
from ganforge.models.stargan.networks import StarganDiscriminator, StarganGenerator, StarganModelConfig
from ganforge.models.stargan.official import import_official
from ganforge.models.stargan.recipe import official_code_lr_factor
from ganforge.models.stargan.translate import open_translator
from ganforge.train.phases import count_parameters
from ganforge.train.trainer import resume, train

OFFICIAL = REPO / "tests" / "data" / "stargan_official"


def test_parameter_counts_match_the_official_defaults():
    cfg = StarganModelConfig()
    assert count_parameters(StarganGenerator(cfg)) == 8_430_528
    assert count_parameters(StarganDiscriminator(cfg)) == 44_762_048


def test_shapes_at_module_borders():
    cfg = StarganModelConfig(image_size=32, g_conv_dim=8, d_conv_dim=8, g_repeat_num=1, d_repeat_num=4)
    x, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]])
    y = StarganGenerator(cfg)(x, c)
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
    src, cls = StarganDiscriminator(cfg)(x)
    assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 5)


@pytest.mark.parametrize("mode, key", [("batch_stats", "g_train"), ("running_stats", "g_eval")])
def test_official_checkpoints_import_with_identical_outputs(tmp_path, mode, key):
    # Made by scripts/stargan_official_reference.py from yunjey/stargan's model.py (seed 0).
    ref = torch.load(OFFICIAL / "reference.pt", weights_only=True)
    import_official(OFFICIAL / "200000-G.ckpt", tmp_path / "run", overrides=[f"model.instance_norm={mode}"])
    tr = open_translator(tmp_path / "run", weights="raw")
    assert tr.cond.all_names == ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    assert tr.generator.model_config.image_size == 32 and tr.generator.model_config.g_repeat_num == 2
    with torch.no_grad():
        out = tr.generator(ref["x"], ref["c"])
        src, cls = tr.discriminator(ref["x"])
    assert (out - ref[key]).abs().max() < 1e-5
    assert (src - ref["d_src"]).abs().max() < 1e-5 and (cls - ref["d_cls"]).abs().max() < 1e-5
    if mode == "batch_stats":  # the other mode really is different: the test can tell them apart
        assert (out - ref["g_eval"]).abs().max() > 1e-3


def test_imported_run_resumes_training_with_fresh_optimizers(tmp_path):
    import_official(OFFICIAL / "200000-G.ckpt", tmp_path / "run", labels=ATTRIBUTES,
                    overrides=["data.name=shapes", "data.view=attributes", "data.length=32", "data.num_workers=0",
                               "train.batch_size=4", "train.progress=false", "train.tensorboard=false",
                               "runtime.device=cpu"])
    result = resume(tmp_path / "run", ["train.steps=40001", "recipe.n_critic=1"])
    assert result.status == "finished" and result.step == 40001


def test_import_errors_name_the_file(tmp_path, capsys):
    bad = tmp_path / "1000-G.ckpt"
    torch.save({"weight": torch.zeros(1)}, bad)
    assert main(["import", "stargan", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "1000-G.ckpt" in capsys.readouterr().err
    assert main(["import", "stargan", str(tmp_path / "none-G.ckpt"), "--out", str(tmp_path / "r")]) == 2


def test_official_targets_set_one_hair_color_and_flip_the_rest():
    labels = LabelSpace("attributes", ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"),
                        ("Black_Hair", "Blond_Hair", "Brown_Hair"))
    source = torch.tensor([[1.0, 0, 0, 1, 0]])
    targets = dict((name, t[0].tolist()) for name, t in labels.official_targets(source))
    assert targets["Blond_Hair"] == [0, 1, 0, 1, 0]
    assert targets["Black_Hair"] == [1, 0, 0, 1, 0]
    assert targets["Male"] == [1, 0, 0, 0, 0] and targets["Young"] == [1, 0, 0, 1, 1]
    assert labels.parse_target("Brown_Hair,Male=0", source)[0].tolist() == [0, 0, 1, 0, 0]
    with pytest.raises(LabelError, match="Smiling"):
        labels.parse_target("Smiling", source)
    with pytest.raises(LabelError, match="0 or 1"):
        labels.parse_target("Male=2", source)
    rafd = LabelSpace("classes", ("angry", "happy"))
    assert [t[0].tolist() for _, t in rafd.official_targets(torch.zeros(1, 2))] == [[1, 0], [0, 1]]


def test_classification_losses_use_the_official_normalization():
    labels = LabelSpace("attributes", ("a", "b"))
    logits, target = torch.tensor([[0.3, -1.0], [2.0, 0.5]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum") / 2
    assert torch.allclose(labels.classification_loss(logits, target), expected)
    assert torch.allclose(LabelSpace("classes", ("a", "b")).classification_loss(logits, torch.tensor([0, 1])),
                          torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))


def test_lr_decay_modes():
    # official: 200k iterations = 40k steps x n_critic 5, decay over the last 100k, update every 1000
    assert official_code_lr_factor(20000, 40000, 20000, 5, 1000) == 1.0
    assert official_code_lr_factor(20200, 40000, 20000, 5, 1000) == pytest.approx(1 - 1 / 100000)
    assert official_code_lr_factor(40000, 40000, 20000, 5, 1000) == pytest.approx(0.999)
    cfg = load_config("stargan/celeba", ["data.path=x"])
    assert cfg.recipe.lr_decay == "paper" and cfg.train.steps == 40000 and cfg.train.lr_decay_start == 20000
    with pytest.raises(ConfigError, match="recipe.lr_decay"):
        load_config("stargan/celeba", ["train.lr_schedule=linear"])
    with pytest.raises(ConfigError, match="view=attributes"):
        load_config("stargan/shapes", ["data.view=class"])


@pytest.fixture(scope="module")
def celeba_folder(tmp_path_factory):
    """The shapes attributes view written as a real CelebA-format folder (2,100 rows)."""
    out = tmp_path_factory.mktemp("celeba")
    write_dataset(ShapesDataset(length=2100, image_size=40, view="attributes"), "celeba", out, progress=False)
    return out


def test_celeba_official_split_and_labels(celeba_folder):
    lines = (celeba_folder / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "2100" and lines[1].split() == list(ATTRIBUTES)
    shuffled = lines[2:]
    random.seed(1234)
    random.shuffle(shuffled)  # exactly what the official loader does
    test = CelebADataset(celeba_folder, ATTRIBUTES, image_size=32, crop_size=40, split="test")
    train_ds = CelebADataset(celeba_folder, ATTRIBUTES, image_size=32, crop_size=40, split="train")
    assert len(test) == 1999 and len(train_ds) == 101
    assert test.files == [line.split()[0] for line in shuffled[:1999]]
    assert len(official_split(2100, "test", "exact")) == 2000
    row = shuffled[0].split()
    assert test.get(0)["attrs"].tolist() == [float(v == "1") for v in row[1:]]
    assert test.get(0)["image"].shape == (3, 32, 32)
    source = ShapesDataset(length=2100, image_size=40, view="attributes")
    assert test.get(0)["attrs"].tolist() == source.get(int(row[0][:6]) - 1)["attrs"].tolist()


def test_celeba_errors_name_the_attribute_and_the_file(celeba_folder, tmp_path):
    with pytest.raises(DataError, match="'Blond_Hair'.*not in the header"):
        CelebADataset(celeba_folder, ("Red", "Blond_Hair"), split="all")
    with pytest.raises(DataError, match="did you mean 'Large'"):
        CelebADataset(celeba_folder, ("Larg",), split="all")
    with pytest.raises(DataError, match="does not exist"):
        CelebADataset(celeba_folder, ATTRIBUTES, attr_file=tmp_path / "nope.txt")
    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    (broken / "list_attr_celeba.txt").write_text("1\nA B\n000001.png 1\n")
    with pytest.raises(DataError, match="line 3"):
        CelebADataset(broken, ("A",), split="all")
    (broken / "list_attr_celeba.txt").write_text("2\nA B\n000001.png 1 -1\n000002.png 1 1\n")
    with pytest.raises(DataError, match="missing"):
        CelebADataset(broken, ("A",), split="all")
    (broken / "list_attr_celeba.txt").write_text("3\nA B\n000001.png 1 -1\n000002.png 1 1\n")  # a row lost
    with pytest.raises(DataError, match="line 1 declares 3 images but the file has 2 rows"):
        CelebADataset(broken, ("A",), split="all")


def test_shapes_attributes_view():
    ds = ShapesDataset(length=200, image_size=32, view="attributes")
    attrs = torch.stack([ds.get(i)["attrs"] for i in range(200)])
    assert attrs[:, :3].sum(1).max() == 1  # exclusive colors
    light = attrs[:, 4].bool()
    assert 0.3 < light.float().mean() < 0.7
    level = background_level(torch.stack([ds.get(i)["image"] for i in range(200)]))
    assert (level[light] > 140).all() and (level[~light] < 70).all()
    # same objects as the class view, whose scenes come from the same seeds
    cls = ShapesDataset(length=200, image_size=32, view="class")
    assert all(ds.scene(i).objects == cls.scene(i).objects for i in range(50))


def tiny(tmp_path, shapes: bool = True, **extra):
    # 32 px, fp32, contiguous: small and exact whatever size and precision the preset trains at
    # (data.length is a key of the shapes data only)
    return short_run(tmp_path, {"model.g_conv_dim": 8, "model.d_conv_dim": 8, "model.g_repeat_num": 1,
                                "model.d_repeat_num": 4, "model.image_size": 32, "data.image_size": 32,
                                **({"data.length": 64} if shapes else {}), "recipe.n_critic": 2,
                                "recipe.sample_images": 3, "runtime.precision": "fp32", "runtime.channels_last": False},
                     **extra)


@pytest.fixture(scope="module")
def stargan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sg")
    result = train(load_config("stargan/shapes", tiny(out)))
    assert result.status == "finished"
    return out / "run"


def test_training_writes_translation_grids_and_resumes_bit_for_bit(stargan_run, tmp_path):
    grid = stargan_run / "samples" / "step-00000004.png"
    assert grid_size(grid) == (6 * 34 + 2, 3 * 34 + 2)  # 3 rows: input + 5 attribute columns
    cfg = load_config("stargan/shapes", tiny(tmp_path, **{"train.steps": 2}))
    train(cfg)
    resume(tmp_path / "run", ["train.steps=4"])
    assert_latest_checkpoints_equal(stargan_run, tmp_path / "run")


def test_translate_verb_writes_grids_and_singles(stargan_run, tmp_path, capsys):
    folder = tmp_path / "in"
    write_dataset(ShapesDataset(length=3, image_size=48, view="attributes"), "image_folder", folder, progress=False)
    out = tmp_path / "out"
    assert main(["translate", str(stargan_run), "--input", str(folder), "--out", str(out),
                 "--attrs", "Red", "--attrs", "Large=0,Light_Background=1"]) == 0
    assert grid_size(out / "grid-0001.png") == (3 * 34 + 2, 3 * 34 + 2)
    assert labelled_columns(out / "grid-0001.png", 3) == [True] * 3  # input, Red, Large=0,Light_Background=1
    assert grid_size_box(out / "grid-0001.png")[0] > 0, "each row is labelled with its file name"
    assert (out / "columns.txt").read_text().split() == ["input", "Red", "Large=0,Light_Background=1"]
    assert len(list((out / "000000").glob("*.png"))) == 3
    assert main(["translate", str(stargan_run), "--input", str(folder), "--attrs", "Smiling"]) == 2
    assert "Smiling" in capsys.readouterr().err
    assert main(["sample", str(stargan_run)]) == 2
    assert "translate" in capsys.readouterr().err


def test_translate_points_other_families_to_their_verb(tmp_path, capsys):
    train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="w", **{"train.steps": 1})))
    assert main(["translate", str(tmp_path / "w"), "--input", str(tmp_path)]) == 2
    assert f"does not draw with it. Use `ganforge sample {tmp_path / 'w'}`" in capsys.readouterr().err


@pytest.mark.slow
def test_translate_from_python_matches_the_verbs_columns(stargan_run):
    import ganforge

    gen = ganforge.load(stargan_run)
    images = torch.stack([ShapesDataset(length=2, image_size=48, view="attributes").get(i)["image"] for i in range(2)])
    images = torch.nn.functional.interpolate(images, size=gen.model_config.image_size)
    out = gen.translate(images, ["Red", "Large=0,Light_Background=1"])
    assert list(out) == ["Red", "Large=0,Light_Background=1"] and out["Red"].shape == images.shape
    assert len(gen.translate(images)) == 5, "default: the official targets, one per attribute"
    with pytest.raises(ValueError, match="Smiling"):
        gen.translate(images, "Smiling")


def test_export_takes_image_and_labels(stargan_run, tmp_path):
    check_exports(stargan_run, 3, tmp_path)
    assert main(["export", str(stargan_run), "--out", str(tmp_path / "st")]) == 0
    assert main(["translate", str(tmp_path / "st"), "--input", str(REPO / "tests" / "data"), "--out",
                 str(tmp_path / "t")]) == 2  # no images there: a clear error, not a crash


def test_translation_metrics_on_shapes(stargan_run, shapes_oracle):
    from ganforge.metrics.evaluate import Evaluator
    from ganforge.metrics.source import open_source
    from ganforge.models.stargan.evaluate import StarganEvaluation

    source = open_source(stargan_run)
    ev = Evaluator(source.dataset, "translation,oracle", 20, oracle=shapes_oracle, batch_size=10,
                   family_eval=StarganEvaluation(source.dataset))
    result = ev.evaluate_generator(source.generator.net)
    m = result.metrics
    for key in ("target_acc", "preserve_attrs", "preserve_shape", "preserve_position", "target_acc/Red", "oracle_fid"):
        assert 0 <= m[key] <= 1 or key == "oracle_fid"
    # an identity "translator" keeps everything and reaches no target
    class Identity(torch.nn.Module):
        def forward(self, x, c):
            return x

    ident = ev.evaluate_generator(Identity()).metrics
    assert ident["preserve_shape"] == 1.0 and ident["preserve_position"] == 1.0 and ident["preserve_attrs"] == 1.0
    assert ident["target_acc/Large"] == 0.0 and ident["target_acc/Light_Background"] == 0.0
    assert ident["target_acc"] < 0.5  # only "set Red" on an already red object counts
    assert all(ident[f"preserve_shape/{n}"] == 1.0 for n in ATTRIBUTES)
    # a translator that draws the same image whatever the input keeps a shape only where the source
    # happens to read like that image: the same fraction in every column, below 1
    class Constant(torch.nn.Module):
        def forward(self, x, c):
            return x[:1].flip(2).expand_as(x)

    const = ev.evaluate_generator(Constant()).metrics
    per_column = {const[f"preserve_shape/{n}"] for n in ATTRIBUTES}
    assert per_column == {const["preserve_shape"]} and const["preserve_shape"] < 1.0


def test_celeba_preset_trains_on_a_celeba_format_folder(celeba_folder, tmp_path):
    cfg = load_config("stargan/celeba", tiny(tmp_path, shapes=False, **{
        "data.path": str(celeba_folder), "data.crop_size": 40, "data.image_size": 32, "model.image_size": 32,
        "data.selected_attrs": "[Red,Large,Light_Background]", "train.steps": 2}))
    assert cfg.model.c_dim == 3 and cfg.model.labels == ["Red", "Large", "Light_Background"]
    assert cfg.model.exclusive == []
    result = train(cfg)
    assert result.status == "finished" and result.step == 2
    assert len(build_dataset(cfg.data)) == 101  # the train split of 2,100 rows


def test_joint_conditioning_matches_the_official_layout():
    cond = Conditioning([Part(LabelSpace("attributes", ("a", "b", "c")), "image", "attrs", "celeba"),
                         Part(LabelSpace("classes", ("x", "y")), "image2", "label2", "rafd")])
    assert cond.c_dim == 7 and cond.cls_dim == 5
    # official: [c_celeba, zero_rafd, mask [1, 0]] and [zero_celeba, onehot_rafd, mask [0, 1]]
    assert cond.condition(0, torch.tensor([[1.0, 0, 1]]))[0].tolist() == [1, 0, 1, 0, 0, 1, 0]
    assert cond.condition(1, torch.tensor([1]))[0].tolist() == [0, 0, 0, 0, 1, 0, 1]
    logits = torch.arange(5.0)[None]
    assert cond.logits(1, logits)[0].tolist() == [3, 4]
    columns = cond.official_targets(0, torch.tensor([[1.0, 0, 0]]))
    assert [name for name, _ in columns] == ["a", "b", "c", "x", "y"]
    assert columns[3][1][0].tolist() == [0, 0, 0, 1, 0, 0, 1]
    assert cond.parse_target("y", 0, torch.zeros(1, 3))[0].tolist() == [0, 0, 0, 0, 1, 0, 1]
    with pytest.raises(LabelError, match="mixes"):
        cond.parse_target("a,y", 0, torch.zeros(1, 3))


def test_joint_celeba_rafd_training(celeba_folder, tmp_path):
    from PIL import Image

    rafd = tmp_path / "rafd"
    shapes = ShapesDataset(length=9, image_size=48, view="class")
    for i in range(9):
        folder = rafd / ("angry", "happy", "sad")[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(shapes.image_array(i)).save(folder / f"{i}.png")
    cfg = load_config("stargan/celeba_rafd", tiny(tmp_path, shapes=False, **{
        "data.path": str(celeba_folder), "data.rafd_path": str(rafd), "data.crop_size": 40, "data.rafd_crop_size": 48,
        "data.image_size": 32, "model.image_size": 32, "data.selected_attrs": "[Red,Green,Large]",
        "model.c_dim": 8, "model.cls_dim": 6, "train.steps": 2}))
    result = train(cfg)
    assert result.status == "finished"
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "D_celeba/cls" in metrics and "G_rafd/rec" in metrics
    grid = tmp_path / "run" / "samples" / "step-00000002.png"
    assert grid_size(grid) == (7 * 34 + 2, 3 * 34 + 2)  # input + 3 CelebA + 3 RaFD columns
    tr = open_translator(tmp_path / "run")
    assert tr.cond.all_names == ("Red", "Green", "Large", "angry", "happy", "sad") and tr.cond.joint
    bad = load_config("stargan/celeba_rafd", tiny(tmp_path / "b", shapes=False, **{
        "data.path": str(celeba_folder), "data.rafd_path": str(rafd), "data.crop_size": 40, "data.image_size": 32,
        "model.image_size": 32, "data.selected_attrs": "[Red,Green,Large]"}))
    with pytest.raises(ConfigError, match="model.c_dim=8"):
        train(bad)


def test_data_write_celeba_format_needs_the_attributes_view(tmp_path, capsys):
    assert main(["data", "write", "shapes", "--format", "celeba", "--out", str(tmp_path / "a"), "--count", "4"]) == 2
    assert "--view attributes" in capsys.readouterr().err
    assert main(["data", "write", "shapes", "--format", "celeba", "--view", "attributes", "--out",
                 str(tmp_path / "b"), "--count", "4", "--image-size", "32"]) == 0
    assert len(CelebADataset(tmp_path / "b", ATTRIBUTES, crop_size=32, image_size=32, split="all")) == 4


def test_shapes_selected_attributes():
    ds = ShapesDataset(length=20, image_size=32, view="attributes", attributes=("Green", "Light_Background"))
    full = ShapesDataset(length=20, image_size=32, view="attributes")
    assert ds.exclusive_attrs == ("Green",)
    assert all(ds.get(i)["attrs"].tolist() == full.get(i)["attrs"][[1, 4]].tolist() for i in range(20))
    with pytest.raises(DataError, match="Smiling"):
        ShapesDataset(view="attributes", attributes=("Smiling",))
    cfg = load_config("stargan/shapes", ["data.selected_attrs=[Red,Large]"])
    assert cfg.model.c_dim == 2 and cfg.model.labels == ["Red", "Large"] and cfg.model.exclusive == ["Red"]
    with pytest.raises(ConfigError, match="Smiling"):
        load_config("stargan/shapes", ["data.selected_attrs=[Smiling]"])


def test_channels_last_for_named_networks_only_and_same_training_step(tmp_path):
    from ganforge.train.trainer import Trainer

    def first_step(channels_last):
        trainer = Trainer(load_config("stargan/shapes", tiny(tmp_path, **{"runtime.channels_last": channels_last})))
        return trainer, trainer.train_step()

    (ref, ref_losses), (ours, losses) = first_step(False), first_step(["D"])
    cl = torch.channels_last
    D, G = ours.recipe.networks["D"], ours.recipe.networks["G"]
    assert D.main[0].weight.is_contiguous(memory_format=cl) and not D.main[0].weight.is_contiguous()
    assert all(p.is_contiguous() for p in G.parameters())  # G and the batches keep their format
    assert not ours.ctx.channels_last
    # the same losses in both D updates (gradient penalty included) and the G update, fp32
    assert [name for name, _ in losses] == [name for name, _ in ref_losses]
    for (name, a), (_, b) in zip(losses, ref_losses):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
    # and the same discriminator function once the weights are equal
    D.load_state_dict(ref.recipe.networks["D"].state_dict())
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    for a, b in zip(D(x), ref.recipe.networks["D"](x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match=r"no network named E in stargan; its networks are G, D"):
        first_step(["E"])
