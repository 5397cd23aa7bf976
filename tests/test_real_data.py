"""Fashion-MNIST (IDX files) and the emoji (Noto Color Emoji + emoji-test.txt), and writing them out."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from gfhelpers import write_fashion_idx
from ganforge.config import ConfigError
from ganforge.data import build_dataset, data_config
from ganforge.data.emoji import DEFAULT_FONT, DEFAULT_LIST
from ganforge.data.fashion_mnist import DEFAULT_PATH, FashionMnistDataset
from ganforge.data.images import DataError

HAVE_FONT = Path(DEFAULT_FONT).is_file() and Path(DEFAULT_LIST).is_file()
HAVE_FMNIST = (Path(DEFAULT_PATH) / "train-images-idx3-ubyte.gz").is_file()
needs_font = pytest.mark.skipif(not HAVE_FONT, reason="needs Debian's fonts-noto-color-emoji and unicode-data")
needs_fmnist = pytest.mark.skipif(not HAVE_FMNIST, reason="needs Debian's dataset-fashion-mnist")


def test_idx_files_are_read_padded_and_labelled(tmp_path):
    images = write_fashion_idx(tmp_path)
    ds = build_dataset(data_config("fashion_mnist", path=str(tmp_path), classes=True))
    assert len(ds) == 20 and ds.num_classes == 10
    item = ds.get(3)
    assert item["image"].shape == (1, 32, 32) and int(item["label"]) == 3
    pixels = ((item["image"][0] + 1) * 127.5).round().to(torch.uint8).numpy()
    assert (pixels[:2] == 0).all() and (pixels[:, :2] == 0).all(), "2 px of black around the 28 px image"
    assert np.array_equal(pixels[2:30, 2:30], images[3])
    rgb = build_dataset(data_config("fashion_mnist", path=str(tmp_path), channels=3, fit="resize", image_size=64))
    assert rgb.get(0)["image"].shape == (3, 64, 64) and "label" not in rgb.get(0)
    assert len(build_dataset(data_config("fashion_mnist", path=str(tmp_path), split="test"))) == 5
    assert len(build_dataset(data_config("fashion_mnist", path=str(tmp_path), split="all"))) == 25


def test_a_fraction_keeps_a_fixed_share_of_every_class(tmp_path):
    write_fashion_idx(tmp_path, n_train=200)
    small = FashionMnistDataset(tmp_path, fraction=0.1)
    again = FashionMnistDataset(tmp_path, fraction=0.1)
    assert len(small) == 20 and np.array_equal(small.labels, again.labels)
    assert np.bincount(small.labels, minlength=10).tolist() == [2] * 10


def test_missing_or_broken_idx_files_are_named(tmp_path):
    with pytest.raises(DataError, match=r"no 'train-images-idx3-ubyte.gz' .* under '.*nowhere'.*apt-get install "
                                        r"dataset-fashion-mnist"):
        FashionMnistDataset(tmp_path / "nowhere")
    write_fashion_idx(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:500]))
    with pytest.raises(DataError, match="promises .* holds .*truncated"):
        FashionMnistDataset(tmp_path)
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + bytes(20)))
    with pytest.raises(DataError, match="not an IDX file of unsigned bytes"):
        FashionMnistDataset(tmp_path)


@needs_fmnist
def test_the_debian_fashion_mnist_is_complete():
    train, test = FashionMnistDataset(classes=True), FashionMnistDataset(split="test", classes=True)
    assert (len(train), len(test)) == (60000, 10000)
    assert np.bincount(train.labels).tolist() == [6000] * 10


EMOJI_LIST = """# group: Smileys & Emotion
# subgroup: face-smiling
1F600 ; fully-qualified # 😀 E1.0 grinning face
1F603 ; fully-qualified # 😃 E0.6 grinning face with big eyes
1F604 ; fully-qualified # 😄 E0.6 grinning face with smiling eyes
263A FE0F ; fully-qualified # ☺️ E0.6 smiling face
263A ; unqualified # ☺ E0.6 smiling face
# group: Animals & Nature
# subgroup: animal-mammal
1F436 ; fully-qualified # 🐶 E0.6 dog face
1F431 ; fully-qualified # 🐱 E0.6 cat face
1F42D ; fully-qualified # 🐭 E0.6 mouse face
# subgroup: animal-bird
1F414 ; fully-qualified # 🐔 E0.6 chicken
# group: Food & Drink
# subgroup: food-fruit
1F347 ; fully-qualified # 🍇 E0.6 grapes
1F348 ; fully-qualified # 🍈 E0.6 melon
"""


@pytest.fixture
def emoji_list(tmp_path):
    path = tmp_path / "emoji-test.txt"
    path.write_text(EMOJI_LIST, encoding="utf-8")
    return path


@needs_font
def test_emoji_are_rendered_on_the_background_with_their_groups(emoji_list):
    ds = build_dataset(data_config("emoji", emoji_list=str(emoji_list), image_size=32, split="all",
                                   background=[0, 0, 255]))
    assert ds.class_names == ["Smileys & Emotion", "Animals & Nature", "Food & Drink"]
    assert ds.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2], "fully-qualified only, in file order"
    image = ((ds.get(0)["image"] + 1) * 127.5).round()
    assert image[:, 0, 0].tolist() == [0.0, 0.0, 255.0], "the corner shows the background"
    assert image[:, 16, 16].tolist() != [0.0, 0.0, 255.0], "the centre shows the emoji"
    by_sub = build_dataset(data_config("emoji", emoji_list=str(emoji_list), image_size=32, split="all",
                                       labels="subgroup", groups=["animal-bird", "food-fruit"]))
    assert by_sub.class_names == ["animal-bird", "food-fruit"] and by_sub.labels.tolist() == [0, 1, 1]


@needs_font
def test_emoji_domains_view_serves_starganv2_and_the_split_is_fixed(emoji_list):
    train = build_dataset(data_config("emoji", emoji_list=str(emoji_list), image_size=16, view="domains"))
    assert [len(d) for d in train.by_domain] == [4, 4, 2], "every 10th of a group is test: none of 4, 4 and 2"
    with pytest.raises(DataError, match="no images in split 'test'"):
        build_dataset(data_config("emoji", emoji_list=str(emoji_list), image_size=16, view="domains", split="test"))
    groups = ["Smileys & Emotion", "Animals & Nature", "Food & Drink"]
    full = {split: build_dataset(data_config("emoji", image_size=16, view="domains", groups=groups, split=split))
            for split in ("train", "test")}
    for k in range(3):
        n_train, n_test = len(full["train"].by_domain[k]), len(full["test"].by_domain[k])
        assert n_test == (n_train + n_test) // 10 and n_test > 5
    item = train.get(1, np.random.default_rng(0))
    assert item["image"].shape == (3, 16, 16) and int(item["label"]) == 0


@needs_font
def test_emoji_errors_name_the_file_the_group_and_the_package(tmp_path, emoji_list):
    with pytest.raises(DataError, match=r"data.groups: 'Plants' is not a group .* Smileys & Emotion, Animals"):
        build_dataset(data_config("emoji", emoji_list=str(emoji_list), groups=["Plants"]))
    with pytest.raises(DataError, match=r"data.font: '.*none.ttf' does not exist; `apt-get install fonts-noto-color-emoji`"):
        build_dataset(data_config("emoji", emoji_list=str(emoji_list), font=str(tmp_path / "none.ttf")))
    with pytest.raises(DataError, match=r"data.emoji_list: '.*missing.txt' does not exist; `apt-get install unicode-data`"):
        build_dataset(data_config("emoji", emoji_list=str(tmp_path / "missing.txt")))
    with pytest.raises(ConfigError, match=r"data.background=\[1, 2\]"):
        build_dataset(data_config("emoji", emoji_list=str(emoji_list), background=[1, 2]))


@needs_font
def test_the_rendered_set_is_cached(emoji_list, isolated_cache):
    build_dataset(data_config("emoji", emoji_list=str(emoji_list), image_size=16))
    cached = list((isolated_cache / "emoji").glob("*.npz"))
    assert len(cached) == 1
    before = cached[0].stat().st_mtime_ns
    build_dataset(data_config("emoji", emoji_list=str(emoji_list), image_size=16, labels="subgroup"))
    assert cached[0].stat().st_mtime_ns == before and len(list((isolated_cache / "emoji").glob("*.npz"))) == 1


def test_data_write_exports_real_sets_as_class_folders(tmp_path, capsys):
    from ganforge.cli import main

    write_fashion_idx(tmp_path / "idx")
    assert main(["data", "write", "fashion_mnist", f"data.path={tmp_path / 'idx'}", "--format", "image_folder",
                 "--out", str(tmp_path / "out"), "--count", "12", "--image-size", "32"]) == 0
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert folders == sorted(["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                              "Ankle boot"])
    assert sum(len(list(p.iterdir())) for p in (tmp_path / "out").iterdir()) == 12
    assert main(["data", "write", "fashion_mnist", "--format", "cifar", "--out", str(tmp_path / "c")]) == 2
    assert "written as image_folder or hdf5" in capsys.readouterr().err


REAL_PRESETS = {  # preset -> what it needs; each trains one step at its own size
    "wgan_gp/fashion_mnist": needs_fmnist, "dcgan/fashion_mnist": needs_fmnist,
    "biggan/fashion_mnist": needs_fmnist, "biggan/emoji": needs_font, "starganv2/emoji": needs_font,
    "r3gan/fashion_mnist": needs_fmnist,
}


@pytest.mark.parametrize("preset", [pytest.param(p, marks=m) for p, m in REAL_PRESETS.items()
                                    if p != "starganv2/emoji"])  # StarGAN v2 evaluates with its own code
def test_real_data_presets_evaluate_as_many_images_as_their_data_holds(preset):
    """The size check a run makes before step 1 (the test below trains with the evaluation off)."""
    from ganforge.metrics.evaluate import check_sizes, parse_metrics
    from ganforge.registry import get_family
    from ganforge.presets import load_config

    cfg = load_config(preset, [])
    assert get_family(cfg.family).training_evaluator is None, "this family evaluates with its own code"
    dataset = build_dataset(cfg.data, cfg.runtime.seed)
    check_sizes(parse_metrics(cfg.eval.metrics), dataset, None, cfg.eval.n, stories=False)


@pytest.mark.slow
@pytest.mark.parametrize("preset", [pytest.param(p, marks=m) for p, m in REAL_PRESETS.items()])
def test_real_data_presets_train_and_sample_at_their_own_size(preset, tmp_path):
    from ganforge.presets import load_config
    from ganforge.train.trainer import train

    cfg = load_config(preset, [f"out_dir={tmp_path}", "name=r", "train.steps=1", "train.ckpt_every=1",
                               "train.sample_every=1", "train.progress=false", "train.tensorboard=false",
                               "eval.every=0"])
    result = train(cfg)
    assert result.step == 1
    assert (result.run_dir / "samples" / "step-00000001.png").is_file()
    assert cfg.model.image_size == cfg.data.image_size == 32
