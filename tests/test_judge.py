"""Judges: trained from a recipe on a real set's training split, cached, shipped for Fashion-MNIST,
and measured by `ganforge evaluate --metrics judge`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gfhelpers import tiny_overrides, write_fashion_idx
from ganforge.data import build_dataset, data_config
from ganforge.data.fashion_mnist import DEFAULT_PATH
from ganforge.metric_names import EvalError
from ganforge.metrics import judge as judge_module
from ganforge.metrics.evaluate import Evaluator
from ganforge.metrics.judge import JudgeRecipe, labelled_tensors, load_judge

QUICK = JudgeRecipe(steps=15, batch_size=32)
HAVE_FMNIST = (Path(DEFAULT_PATH) / "train-images-idx3-ubyte.gz").is_file()


def test_a_judge_is_trained_once_then_read_from_the_cache(tmp_path, isolated_cache, monkeypatch):
    write_fashion_idx(tmp_path, n_train=100, n_test=30)
    cfg = data_config("fashion_mnist", path=str(tmp_path))
    judge = load_judge(cfg, QUICK, show=False)
    assert judge.class_names[0] == "T-shirt/top" and 0.0 <= judge.accuracy <= 1.0
    assert len(list((isolated_cache / "judge").glob("fashion_mnist-*.safetensors"))) == 1
    trained = []
    real_train = judge_module.train_judge
    monkeypatch.setattr(judge_module, "train_judge", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    again = load_judge(cfg, QUICK, show=False)
    assert again.accuracy == judge.accuracy and trained == [], "read from the cache"
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    assert torch.equal(again.read(x)[0], judge.read(x)[0])
    load_judge(cfg, JudgeRecipe(steps=16, batch_size=32), show=False)
    assert trained == [1], "another recipe is another judge"


def test_data_without_a_judge_is_refused_before_any_work(tmp_path):
    with pytest.raises(EvalError, match=r"judges exist for fashion_mnist, emoji; this run's data is 'shapes'"):
        Evaluator(build_dataset(data_config("shapes", length=40)), "judge", 10, data_config=data_config("shapes"))


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_FMNIST, reason="needs Debian's dataset-fashion-mnist")
def test_the_shipped_fashion_mnist_judge_reads_the_test_split_at_its_reported_accuracy(monkeypatch):
    monkeypatch.setattr(judge_module, "train_judge", lambda *a, **k: pytest.fail("the package ships this judge"))
    judge = load_judge(data_config("fashion_mnist"), show=False)
    assert judge.accuracy >= 0.92
    _, test = judge_module.judge_data(data_config("fashion_mnist"))
    images, labels = labelled_tensors(test)
    measured = (judge.read(images)[1] == labels).float().mean().item()
    assert measured == pytest.approx(judge.accuracy, abs=1e-6)


def test_evaluate_with_the_judge_reads_classes_back_for_conditional_models(tmp_path, isolated_cache):
    from ganforge.presets import load_config
    from ganforge.train.trainer import Trainer

    write_fashion_idx(tmp_path / "idx", n_train=100, n_test=30)
    data = [f"data.path={tmp_path / 'idx'}", "data.name=fashion_mnist", "data.classes=true", "data.channels=3",
            "model.num_classes=0", "eval.every=0", "model.g_ch=4", "model.d_ch=4", "runtime.precision=fp32",
            "data.num_workers=0", "train.batch_size=4"]
    trainer = Trainer(load_config("biggan/shapes", data))
    trainer.stream.close()
    judge = load_judge(trainer.cfg.data, QUICK, show=False)
    evaluator = Evaluator(trainer.dataset, "judge", 20, batch_size=10, data_config=trainer.cfg.data, judge=judge)
    result = evaluator.evaluate_generator(trainer.generator)
    assert {"judge_fid", "judge_kid", "judge_precision", "judge_coverage", "judge_class_acc"} <= set(result.metrics)
    assert "judge_class_acc" in result.real_vs_real and result.info["judge"]["data"] == "fashion_mnist"


@pytest.mark.slow
@pytest.mark.skipif(not (Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf").is_file()
                         and Path("/usr/share/unicode/emoji/emoji-test.txt").is_file()),
                    reason="needs Debian's fonts-noto-color-emoji and unicode-data")
def test_starganv2_on_emoji_domains_reports_the_judges_domain_accuracy(isolated_cache):
    from ganforge.load import build_generator
    from ganforge.models.starganv2.evaluate import Starganv2EvalConfig, Starganv2Evaluation, evaluation_data

    groups = ["Smileys & Emotion", "Animals & Nature", "Food & Drink"]
    cfg = data_config("emoji", view="domains", groups=groups, image_size=16)
    judge = load_judge(cfg, QUICK, show=False)
    assert judge.class_names == groups
    train, val = evaluation_data(cfg)
    torch.manual_seed(0)
    _, net = build_generator("starganv2", {"image_size": 16, "base_dim": 8, "max_conv_dim": 16, "num_domains": 3})
    evaluation = Starganv2Evaluation(train, val, Starganv2EvalConfig(metrics=("judge",), num_outs=2, sources=3,
                                                                     batch_size=3), judge=judge)
    values = evaluation.run(net).values
    assert set(values) == {f"judge_{mode}/{what}" for mode in ("latent", "reference")
                           for what in ("domain_acc", "diversity")}
    assert all(0.0 <= v <= 1.0 for k, v in values.items() if k.endswith("domain_acc"))
    # unit-length features: distances lie in (0, 2]; outputs of different styles are not identical
    assert all(0.0 < v <= 2.0 for k, v in values.items() if k.endswith("diversity"))
    with pytest.raises(EvalError, match="judge metrics need the judge of these domains"):
        Starganv2Evaluation(train, val, Starganv2EvalConfig(metrics=("judge",)), judge=None)
