"""End to end through the CLI: train -> resume -> sample -> export -> load, at a tiny size.

The run folder has a space and non-ASCII characters in its path on purpose.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganforge
from gfhelpers import grid_size, tiny_overrides
from ganforge.cli import main, verb_names


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "my runs" / "données ü 名前"
    args = tiny_overrides(out, name="e2e", **{"train.tensorboard": True, "train.ema.enabled": True,
                                              "train.ema.decay": 0.9, "train.steps": 4, "train.ckpt_every": 2})
    assert main(["train", "wgan_gp/shapes", *args]) == 0
    return out / "e2e"


def test_train_writes_the_run_folder(trained_run):
    assert (trained_run / "config.yaml").is_file()
    assert sorted(p.name for p in (trained_run / "checkpoints").glob("*.pt")) == ["step-00000002.pt", "step-00000004.pt"]
    assert (trained_run / "checkpoints" / "latest").read_text() == "step-00000004.pt"
    lines = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in lines] == [1, 2, 3, 4]
    assert {"D/loss", "D/gp", "D/wasserstein", "G/loss", "time/s_per_step"} <= set(lines[0])
    assert list((trained_run / "tensorboard").glob("events.out.tfevents.*"))
    grid = trained_run / "samples" / "step-00000004.png"
    assert grid_size(grid) == (2 * 34 + 2, 2 * 34 + 2)  # 4 samples of 32px in a 2x2 grid with 2px padding


def test_resume_continues_the_run(trained_run):
    assert main(["resume", str(trained_run), "train.steps=6"]) == 0
    assert (trained_run / "checkpoints" / "latest").read_text() == "step-00000006.pt"
    steps = [json.loads(line)["step"] for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-2:] == [5, 6]


def test_sample_modes(trained_run, tmp_path):
    assert main(["sample", str(trained_run), "--n", "9", "--out", str(tmp_path / "g.png")]) == 0
    assert grid_size(tmp_path / "g.png") == (3 * 34 + 2, 3 * 34 + 2)
    assert main(["sample", str(trained_run), "--mode", "images", "--n", "3", "--weights", "raw",
                 "--out", str(tmp_path / "imgs")]) == 0
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == [f"sample-0000{i}.png" for i in range(3)]
    assert main(["sample", str(trained_run), "--mode", "interpolate", "--steps", "5", "--rows", "2",
                 "--out", str(tmp_path / "i.png")]) == 0
    assert grid_size(tmp_path / "i.png") == (5 * 34 + 2, 2 * 34 + 2)


def test_seed_fixes_the_samples_and_ema_differs_from_raw(trained_run):
    ema = ganforge.load(trained_run)
    raw = ganforge.load(trained_run, weights="raw")
    assert torch.equal(ema.sample(4, seed=1), ema.sample(4, seed=1))
    assert not torch.equal(ema.sample(4, seed=1), ema.sample(4, seed=2))
    assert not torch.equal(ema.sample(4, seed=1), raw.sample(4, seed=1))
    assert ema.sample(4, seed=1).shape == (4, 3, 32, 32)


def test_export_every_format_gives_the_same_images(trained_run, tmp_path):
    gen = ganforge.load(trained_run)
    (z,) = gen.make_inputs(3, seed=7)
    expected = gen(z)

    assert main(["export", str(trained_run), "--format", "safetensors", "--out", str(tmp_path / "st")]) == 0
    assert torch.equal(ganforge.load(tmp_path / "st")(z), expected)
    assert json.loads((tmp_path / "st" / "config.json").read_text())["family"] == "wgan_gp"

    assert main(["export", str(trained_run), "--format", "pt2", "--out", str(tmp_path / "pt2")]) == 0
    program = torch.export.load(str(tmp_path / "pt2" / "generator.pt2")).module()
    assert torch.allclose(program(z), expected, atol=1e-6)
    assert program(torch.cat([z, z])).shape == (6, *expected.shape[1:])  # any batch size

    assert main(["export", str(trained_run), "--format", "torchscript", "--out", str(tmp_path / "ts")]) == 0
    scripted = torch.jit.load(str(tmp_path / "ts" / "generator.pt"))
    assert torch.allclose(scripted(z), expected, atol=1e-6)

    ort = pytest.importorskip("onnxruntime")
    assert main(["export", str(trained_run), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "onnx" / "generator.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input_0": z.numpy()})
    assert np.allclose(out, expected.numpy(), atol=1e-5)


def test_sample_from_an_export_folder(trained_run, tmp_path):
    main(["export", str(trained_run), "--out", str(tmp_path / "st")])
    assert main(["sample", str(tmp_path / "st"), "--n", "4", "--out", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x.png").is_file()


def test_dry_run_prints_counts_and_writes_nothing(tmp_path, capsys):
    assert main(["train", "wgan_gp/shapes", "--dry-run", *tiny_overrides(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "G: " in out and "parameters" in out and "training step:" in out and "main.10" in out
    assert not any(tmp_path.iterdir())


def test_config_errors_exit_2_with_the_key(tmp_path, capsys):
    assert main(["train", "wgan_gp/shapes", "train.stepz=3", *tiny_overrides(tmp_path)]) == 2
    assert "did you mean 'train.steps'" in capsys.readouterr().err
    runs = tmp_path / "runs"
    assert main(["train", "wgan_gp/image_folder", f"data.path={tmp_path / 'nothing here'}",
                 f"out_dir={runs}", "name=missing-data"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (runs / "missing-data").exists()  # nothing but a config was written: no folder left
    (runs / "kept").mkdir(parents=True)
    (runs / "kept" / "notes.txt").write_text("mine")
    assert main(["train", "wgan_gp/image_folder", f"data.path={tmp_path / 'nothing here'}",
                 f"out_dir={runs}", "name=kept"]) == 2
    assert (runs / "kept" / "notes.txt").read_text() == "mine"  # a folder that existed is never removed
    assert main(["resume", str(tmp_path)]) == 2
    assert "no config.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("verb", verb_names())
def test_every_verb_help_has_examples(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"ganforge {verb}" in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["precisions"]["cpu"]["fp32"] == "ok"
    assert {"dcgan", "wgan_gp"} <= set(info["families"]) and "shapes" in info["datasets"]


def test_data_write_inspect_and_pack(tmp_path, capsys):
    folder = tmp_path / "shapes png"
    assert main(["data", "write", "shapes", "--format", "image_folder", "--out", str(folder), "--count", "6",
                 "--image-size", "32"]) == 0
    assert len(list(folder.glob("*.png"))) == 6
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["data", "inspect", "wgan_gp/image_folder", f"data.path={folder}", "data.image_size=32",
                 "model.image_size=32", "--preview", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "6 images" in out and "skipped 1 unreadable" in out and "broken.png" in out
    assert (tmp_path / "p.png").is_file()
    assert main(["data", "pack", "wgan_gp/image_folder", f"data.path={folder}", "data.image_size=32",
                 "model.image_size=32", "--out", str(tmp_path / "p.h5")]) == 0
    from ganforge.data.hdf5 import HDF5Dataset

    assert len(HDF5Dataset(tmp_path / "p.h5")) == 6


def test_every_option_of_every_verb_explains_itself():
    import argparse

    from ganforge.cli import build_parser

    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for verb, sub in verbs.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        parsers = [(verb, sub)] + [(f"{verb} {name}", p) for a in nested for name, p in a.choices.items()]
        for name, p in parsers:
            missing += [f"{name} {a.option_strings or a.dest}" for a in p._actions
                        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert missing == []


def test_hub_export_writes_a_card_whose_numbers_are_the_runs_own(trained_run, tmp_path):
    import yaml

    import shutil

    run = tmp_path / "run"  # a copy: other tests of this module move the shared run's checkpoints
    shutil.copytree(trained_run, run)
    shutil.rmtree(run / "eval", ignore_errors=True)
    assert main(["evaluate", str(run), "--metrics", "oracle", "--n", "20", "--batch-size", "10"]) == 0
    (evaluation,) = (json.loads(p.read_text()) for p in (run / "eval").glob("step-*.json"))
    steps = int((run / "checkpoints" / "latest").read_text().split("-")[1].split(".")[0])
    out = tmp_path / "shared model"
    assert main(["export", str(run), "--format", "hub", "--out", str(out), "--license", "mit"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "samples.png"]
    text = (out / "README.md").read_text(encoding="utf-8")
    _, header, body = text.split("---\n", 2)
    header = yaml.safe_load(header)
    assert header["library_name"] == "ganforge" and header["license"] == "mit"
    assert header["pipeline_tag"] == "unconditional-image-generation" and header["datasets"] == ["shapes"]
    assert header["metrics"] == sorted(evaluation["metrics"])
    for name, value in evaluation["metrics"].items():  # every row is the evaluation file's value
        assert f"| {name} | {value:.4g} | {evaluation['real_vs_real'][name]:.4g} |" in body
    assert evaluation["step"] == steps and f"Trained for {steps} steps of batch" in body
    assert "![samples](samples.png)" in body
    from ganforge.model_card import PIPELINE_TAGS
    from ganforge.registry import KINDS

    assert set(PIPELINE_TAGS) == set(KINDS)  # every kind of generator has its Hub tag
    gen, shared = ganforge.load(run), ganforge.load(out)  # the folder loads offline, same outputs
    (z,) = gen.make_inputs(2, seed=3)
    assert torch.equal(gen(z), shared(z))
