"""Pictures that explain themselves: labelled grids, raw beside EMA early on, evaluation tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gfhelpers import labelled_columns, tiny_overrides
from ganforge.metric_names import GENERIC
from ganforge.metrics.evaluate import EvalResult
from ganforge.presets import load_config
from ganforge.sample.grid import GridLabels, grid_boxes, save_grid, side_by_side, labelled_grid, save_picture
from ganforge.train import trainer as trainer_module
from ganforge.train.trainer import train


def test_labels_sit_in_margins_and_the_grid_stays_whole(tmp_path):
    images = torch.linspace(-1, 1, 6 * 3 * 8 * 8).reshape(6, 3, 8, 8)
    plain = save_grid(images, tmp_path / "plain.png", 3)
    labelled = save_grid(images, tmp_path / "labelled.png", 3,
                         GridLabels(title="a title", columns=["input", "Blond_Hair", "Male=0,Young=1"],
                                    rows=["first.png", "second.png"]))
    left, top, width, height = grid_boxes(labelled)[0]
    assert (width, height) == Image.open(plain).size and left > 0 and top > 0
    grid = np.asarray(Image.open(labelled))[top:top + height, left:left + width]
    assert np.array_equal(grid, np.asarray(Image.open(plain))), "the labels never cover an image"
    assert labelled_columns(labelled, 3) == [True, True, True]
    assert not (np.asarray(Image.open(labelled).convert("L"))[top:top + height, :left] == 255).all(), "row labels"


def test_a_title_wider_than_the_grid_widens_the_picture(tmp_path):
    path = save_grid(torch.zeros(1, 3, 8, 8), tmp_path / "t.png", 1, GridLabels(title="a long title " * 4))
    assert Image.open(path).size[0] > 200


def test_side_by_side_records_both_grids(tmp_path):
    a = labelled_grid(torch.zeros(4, 3, 8, 8), 2, GridLabels(title="raw weights"))
    b = labelled_grid(torch.zeros(4, 3, 8, 8), 2, GridLabels(title="EMA weights"))
    boxes = grid_boxes(save_picture(side_by_side([a, b], title="step 1"), tmp_path / "s.png"))
    assert len(boxes) == 2 and boxes[0][2:] == boxes[1][2:] == (22, 22) and boxes[1][0] > boxes[0][0] + 22


def test_training_samples_show_raw_beside_ema_until_it_settles(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "EMA_SETTLE_STEPS", 4)
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="e", **{"train.ema.enabled": True,
                                                                             "train.ema.start": 1}))
    train(cfg)  # samples at steps 3 and 6; the EMA settles after step 1 + 4
    assert len(grid_boxes(tmp_path / "e" / "samples" / "step-00000003.png")) == 2
    assert len(grid_boxes(tmp_path / "e" / "samples" / "step-00000006.png")) == 1


def test_the_table_says_which_way_each_metric_is_better():
    result = EvalResult({"fid": 12.0, "precision": 0.5, "is_std": 0.1, "target_acc/Red": 0.9}, {"fid": 1.0}, 100)
    rows = {line.split()[0]: line.split() for line in result.table(GENERIC).splitlines()[2:]}
    assert rows["fid"][-1] == "lower" and rows["precision"][-1] == "higher"
    assert rows["is_std"][-1] == "-" and rows["target_acc/Red"][-1] == "higher"
    assert result.table().splitlines()[0].split()[-1] == "better"


def test_evaluate_defaults_follow_the_data():
    from ganforge.data.image_folder import ImageFolderDataset
    from ganforge.data.shapes import ShapesDataset
    from ganforge.metrics.command import default_metrics, default_n

    from ganforge.data.fashion_mnist import FashionMnistDataset

    folder = ImageFolderDataset.__new__(ImageFolderDataset)
    assert default_metrics(ShapesDataset(length=10), False) == "oracle"
    assert default_metrics(FashionMnistDataset.__new__(FashionMnistDataset), False) == "judge"
    assert default_metrics(folder, False) == "fid,kid"
    assert default_metrics(folder, True) == "story"
    assert default_n(list(range(5000)), False) == 1000 and default_n(list(range(300)), False) == 150
    assert default_n(list(range(300)), True) == 300


@pytest.mark.parametrize("count", [4])
def test_the_story_ssim_reference_is_a_real_story_against_another(count):
    from ganforge.data.story import ShapesStoryDataset
    from ganforge.models.storygan.evaluate import StoryganEvaluation

    data = ShapesStoryDataset(length=count, image_size=32)
    reference = StoryganEvaluation(data).reference(None, np.arange(count))
    assert 0 < reference["ssim"] < 0.95, "what a story unrelated to its description scores, not 1"
