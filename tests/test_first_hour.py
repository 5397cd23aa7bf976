"""Small things a first-time user meets: float images, option names in errors, size advice, tiny data."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from gfhelpers import tiny_overrides
from ganforge.config import ConfigError
from ganforge.data.images import DataError, check_header, decode_file
from ganforge.presets import load_config
from ganforge.train.trainer import Trainer


def test_float_images_are_scaled_or_refused_by_name(tmp_path):
    unit = tmp_path / "unit.tif"
    Image.fromarray(np.full((8, 8), 0.5, np.float32), "F").save(unit)
    assert check_header(unit) is None and decode_file(unit, 3, None)[0, 0].tolist() == [128, 128, 128]
    wide = tmp_path / "wide.tif"
    Image.fromarray(np.full((8, 8), 200.0, np.float32), "F").save(wide)
    assert decode_file(wide, 1, None)[0, 0, 0] == 200
    negative = tmp_path / "negative.tif"
    Image.fromarray(np.linspace(-3, 1, 64, dtype=np.float32).reshape(8, 8), "F").save(negative)
    assert "float image with values -3..1" in check_header(negative)


def _write_images(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / name)


def test_translation_folders_are_named_by_the_option_the_user_typed(tmp_path):
    from ganforge.models.starganv2.sampling import sample_from_folders

    net = SimpleNamespace(model_config=SimpleNamespace(image_size=16, num_domains=2, latent_dim=4))
    flat = tmp_path / "flat"
    _write_images(flat, ["a.png", "b.png"])
    with pytest.raises(DataError, match=r"--ref \(one sub-folder per domain\) needs every image inside a class "
                                        r"sub-folder .*e\.g\. '.*cat.*img1\.png'"):
        sample_from_folders(net, tmp_path / "nope", flat, tmp_path / "out")
    domains = tmp_path / "domains"
    _write_images(domains, ["cat/1.png", "cat/2.png", "dog/1.png"])
    with pytest.raises(DataError, match=r"^--src: '.*nope' does not exist"):
        sample_from_folders(net, tmp_path / "nope", domains, tmp_path / "out")


def test_a_size_mismatch_suggests_a_size_the_model_can_draw(tmp_path):
    with pytest.raises(ConfigError, match=r"data.image_size=63 differ; set both, e.g. model.image_size=64 "
                                          r"data.image_size=64 \(this model draws 32, 64, 128 px\)"):
        load_config("wgan_gp/shapes", ["data.image_size=63"])


def test_a_batch_larger_than_the_data_says_that_images_repeat(tmp_path, caplog):
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, **{"data.length": 5, "train.batch_size": 64}))
    with caplog.at_level(logging.WARNING):
        Trainer(cfg).stream.close()
    assert "the data has 5 examples and train.batch_size=64: every batch repeats each one about 13 times" in caplog.text


@pytest.fixture
def bars_at_once(monkeypatch):
    """Progress bars shown from the first item (they wait 2 s otherwise)."""
    from ganforge.runtime import progress

    monkeypatch.setattr(progress, "DELAY_S", 0.0)


def test_long_work_shows_progress(tmp_path, bars_at_once, capsys):
    import torch

    from ganforge.data.image_folder import build_index
    from ganforge.models.starganv2.sampling import write_video

    _write_images(tmp_path / "imgs", ["a.png", "b.png"])
    build_index(tmp_path / "imgs", use_cache=False)
    write_video(torch.zeros(3, 3, 16, 16), tmp_path / "v.mp4")
    err = capsys.readouterr().err
    assert "indexing" in err and "file" in err
    assert "encoding 'v.mp4'" in err and "3/3" in err


def test_evaluation_counts_its_batches(bars_at_once, capsys):
    import torch

    from ganforge.data.shapes import ShapesDataset
    from ganforge.metrics.evaluate import Evaluator

    evaluator = Evaluator(ShapesDataset(length=40, image_size=32), "oracle", 10, batch_size=5, progress=True)
    evaluator.evaluate(lambda: iter([torch.zeros(5, 3, 32, 32), torch.zeros(5, 3, 32, 32)]))
    err = capsys.readouterr().err
    assert "features of 10 real images" in err and "features of 10 generated images" in err and "2/2" in err
