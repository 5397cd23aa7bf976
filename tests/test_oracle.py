"""The shapes oracle (accuracy on held-out real shapes, task metrics, caching) and evaluation in
training and through the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from gfhelpers import tiny_overrides
from ganforge.cli import main
from ganforge.config import ConfigError
from ganforge.presets import load_config
from ganforge.data.shapes import COLORS, ShapeObject, Scene, ShapesDataset, render
from ganforge.metrics import oracle as oracle_mod
from ganforge.metrics.oracle import (ATTRIBUTES, OracleRecipe, attribute_accuracy, class_accuracy, load_oracle,
                                     object_set_accuracy, preservation, scene_targets, target_accuracy)
from ganforge.run.checkpoint import load_checkpoint
from ganforge.train.trainer import train


def images_of(ds: ShapesDataset, indices) -> torch.Tensor:
    return torch.stack([torch.from_numpy(ds.image_array(i).copy()).permute(2, 0, 1) for i in indices])


def test_oracle_is_at_least_98_percent_right_on_every_attribute(shapes_oracle):
    assert set(shapes_oracle.accuracy) == set(ATTRIBUTES)
    assert min(shapes_oracle.accuracy.values()) >= 0.98, shapes_oracle.accuracy
    # and on images it has never been scored on: other indices, 3 objects, 48 px
    ds = ShapesDataset(length=3000, image_size=48, max_objects=3)
    idx = range(2500, 3000)
    acc = attribute_accuracy(shapes_oracle.read(images_of(ds, idx)), scene_targets(ds.scene(i) for i in idx))
    assert min(acc.values()) >= 0.98, acc


def test_the_default_oracle_ships_with_the_package_and_other_recipes_train_once(shapes_oracle, monkeypatch,
                                                                                 tmp_path, capsys):
    assert OracleRecipe().digest() == OracleRecipe().digest() != OracleRecipe(steps=1).digest()
    monkeypatch.setattr(oracle_mod, "train_oracle", lambda *a, **k: pytest.fail("an oracle was trained"))
    again = load_oracle()  # the packaged weights: nothing trained, nothing cached
    for (k, a), b in zip(shapes_oracle.net.state_dict().items(), again.net.state_dict().values()):
        assert torch.equal(a, b), k
    assert not oracle_mod.oracle_path(OracleRecipe()).exists()
    assert main(["oracle", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["path"] == str(oracle_mod.packaged_oracle_path(OracleRecipe()))
    assert shown["held_out_accuracy"] == shapes_oracle.accuracy

    tiny = OracleRecipe(steps=4, train_images=64, batch_size=16)
    with pytest.raises(FileNotFoundError, match="ganforge oracle"):
        load_oracle(tiny, train_if_missing=False)
    monkeypatch.undo()
    # Held-out accuracy on 50 instead of 2,000 images per setting: this test is about caching.
    held_out = oracle_mod.held_out_accuracy
    monkeypatch.setattr(oracle_mod, "held_out_accuracy", lambda oracle: held_out(oracle, count=50))
    trained = load_oracle(tiny, progress=False)
    assert oracle_mod.oracle_path(tiny).is_file()
    monkeypatch.setattr(oracle_mod, "train_oracle", lambda *a, **k: pytest.fail("the cached oracle was retrained"))
    cached = load_oracle(tiny)
    for (k, a), b in zip(trained.net.state_dict().items(), cached.net.state_dict().values()):
        assert torch.equal(a, b), k

    # `ganforge oracle --retrain --out` writes the packaged format; it is read back only for its own recipe.
    monkeypatch.setattr(oracle_mod, "train_oracle", lambda recipe, progress=True: trained)
    out = tmp_path / "retrained.safetensors"
    assert main(["oracle", "--out", str(out)]) == 2
    assert "--retrain" in capsys.readouterr().err and not out.exists()
    assert main(["oracle", "--retrain", "--out", str(out)]) == 0
    assert "shape" in capsys.readouterr().out
    back = oracle_mod.read_packaged_oracle(out, tiny)
    assert back.accuracy == trained.accuracy
    for (k, a), b in zip(trained.net.state_dict().items(), back.net.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="retrained.safetensors.*trained from recipe"):
        oracle_mod.read_packaged_oracle(out, OracleRecipe())


def test_task_accuracies_on_real_and_wrong_images(shapes_oracle):
    ds = ShapesDataset(length=300, image_size=32, view="class")
    images, labels = images_of(ds, range(300)), torch.tensor([ds.label(i) for i in range(300)])
    reading = shapes_oracle.read(images)
    assert class_accuracy(reading, labels) >= 0.98
    assert class_accuracy(reading, labels.roll(1)) < 0.2

    # Translation: the same scene recoloured is a perfect translation; the unchanged source is not.
    scenes = [ds.scene(i) for i in range(100)]
    targets = torch.tensor([(s.objects[0].color + 1) % len(COLORS) for s in scenes])
    recoloured = [Scene(s.background, (ShapeObject(s.objects[0].shape, int(t), s.objects[0].size,
                                                   s.objects[0].x, s.objects[0].y),)) for s, t in zip(scenes, targets)]
    out = shapes_oracle.read(torch.stack([torch.from_numpy(render(s, 32).copy()).permute(2, 0, 1) for s in recoloured]))
    src = shapes_oracle.read(images[:100])
    assert target_accuracy(out, "color", targets) >= 0.98
    assert target_accuracy(src, "color", targets) == 0.0
    kept = preservation(src, out, ("shape", "position", "size"))
    assert min(kept.values()) >= 0.98, kept
    moved = preservation(src, shapes_oracle.read(images[:100].flip(3)), ("position",))
    assert moved["position"] < 0.5

    multi = ShapesDataset(length=200, image_size=32, max_objects=4)
    truth = scene_targets(multi.scene(i) for i in range(200))["object"]
    assert object_set_accuracy(shapes_oracle.read(images_of(multi, range(200))), truth) >= 0.97


def test_evaluation_during_training_keeps_the_best_and_does_not_change_training(tmp_path, shapes_oracle):
    common = tiny_overrides(tmp_path, **{"train.steps": 6, "train.ckpt_every": 2, "train.keep_last": 1,
                                         "train.sample_every": 6})
    plain = train(load_config("wgan_gp/shapes", [*common, "name=plain"]))
    evaluated = train(load_config("wgan_gp/shapes", [*common, "name=eval", "eval.every=2", "eval.n=20",
                                                     "eval.keep_best=2", "eval.metric=oracle_precision"]))
    a, b = load_checkpoint(plain.checkpoint), load_checkpoint(evaluated.checkpoint)
    for net in a["networks"]:  # evaluation uses its own RNG streams: training is bit-for-bit the same
        for key, value in a["networks"][net].items():
            assert torch.equal(value, b["networks"][net][key]), (net, key)
    run = evaluated.run_dir
    results = [json.loads((run / "eval" / f"step-{s:08d}.json").read_text()) for s in (2, 4, 6)]
    assert all(r["n"] == 20 and "oracle_fid" in r["metrics"] and "oracle_fid" in r["real_vs_real"] for r in results)
    best = json.loads((run / "checkpoints" / "best" / "best.json").read_text())
    values = sorted(((r["metrics"]["oracle_precision"], -r["step"]) for r in results), reverse=True)[:2]
    assert [e["step"] for e in best["entries"]] == [-s for _, s in values]
    assert best["higher_is_better"] is True
    kept = sorted(p.name for p in (run / "checkpoints" / "best").glob("step-*.pt"))
    assert kept == sorted(e["file"] for e in best["entries"])
    # keep_last=1 pruned the ordinary checkpoints; the best ones are still whole and loadable
    assert [p.name for p in (run / "checkpoints").glob("step-*.pt")] == ["step-00000006.pt"]
    for name in kept:
        assert load_checkpoint(run / "checkpoints" / "best" / name)["step"] in (2, 4, 6)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/oracle_fid" in rec for rec in lines)


def test_eval_config_errors_come_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="eval.metric: 'fid' comes from the 'fid' metrics"):
        load_config("wgan_gp/shapes", ["eval.every=10", "eval.keep_best=1", "eval.metric=fid"])
    with pytest.raises(ConfigError, match="unknown metric"):
        load_config("wgan_gp/shapes", ["eval.metrics=[fidd]"])
    with pytest.raises(ConfigError, match="not a metric that can rank checkpoints"):
        load_config("wgan_gp/shapes", ["eval.metric=kid_std"])


def test_evaluate_cli_table_json_and_missing_weights(tmp_path, shapes_oracle, capsys, monkeypatch):
    monkeypatch.setenv("GANFORGE_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    assert main(["train", "wgan_gp/shapes", *tiny_overrides(tmp_path, name="ev", **{"train.steps": 2})]) == 0
    run = tmp_path / "ev"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--n", "20"]) == 0
    out = capsys.readouterr().out
    assert "real vs real" in out and "oracle_fid" in out
    # The run kept no EMA, so the default --weights ema evaluates (and says it evaluated) the raw weights.
    assert not (run / "eval" / "step-00000002-ema.json").exists()
    saved = json.loads((run / "eval" / "step-00000002-raw.json").read_text())
    assert saved["weights"] == "raw"
    assert saved["step"] == 2 and saved["oracle"]["held_out_accuracy"]["shape"] >= 0.98
    # No Inception weights here: exit 2 with what to do, before any image is generated.
    assert main(["evaluate", str(run), "--metrics", "fid,oracle", "--n", "20"]) == 2
    err = capsys.readouterr().err
    assert "weights-inception-2015-12-05-6726825d.pth" in err and "ganforge weights import" in err
    assert main(["evaluate", str(run), "--metrics", "fid,fidd"]) == 2
    assert "unknown metric" in capsys.readouterr().err
