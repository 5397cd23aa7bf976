"""The family door: a family defined only here (its networks, losses, recipe, preset and importer),
registered from this file, trains, resumes, samples, evaluates, exports and imports through the
command line, with no change to any file of ganforge."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import ganforge
from gfhelpers import assert_latest_checkpoints_equal
from ganforge.cli import main
from ganforge.config import RunConfig, positive
from ganforge.losses import discriminator_loss, generator_loss
from ganforge.registry import Drawing, FamilySpec, Importer, register_family, unregister_family
from ganforge.run.checkpoint import read_weights_only
from ganforge.run.store import new_run_folder, write_new_run
from ganforge.train.phases import Phase, Recipe, RecipeContext

NAME = "tinymlp"


@dataclass
class TinyModelConfig:
    """A fully connected generator and discriminator on 32 px RGB images."""

    image_size: int = positive(32)
    z_dim: int = positive(8)
    hidden: int = positive(16)


@dataclass
class TinyRecipeConfig:
    lr: float = positive(2e-4)


class TinyGenerator(nn.Module):
    def __init__(self, cfg: TinyModelConfig):
        super().__init__()
        self.cfg = cfg
        self.net = nn.Sequential(nn.Linear(cfg.z_dim, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, 3 * cfg.image_size ** 2), nn.Tanh())

    def make_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor]:
        return (torch.randn(n, self.cfg.z_dim, generator=generator),)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 3, self.cfg.image_size, self.cfg.image_size)


class TinyDiscriminator(nn.Module):
    def __init__(self, cfg: TinyModelConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * cfg.image_size ** 2, cfg.hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(cfg.hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def d_loss(D: nn.Module, G: nn.Module, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The family's losses are plain functions of networks and tensors."""
    with torch.no_grad():
        fake = G(z)
    return discriminator_loss(D(real), D(fake), "bce")


def g_loss(D: nn.Module, G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return generator_loss(D(G(z)), "bce")


def build_recipe(cfg: RunConfig, ctx: RecipeContext) -> Recipe:
    m, n = cfg.model, ctx.local_batch
    G, D = ctx.place(TinyGenerator(m)), ctx.place(TinyDiscriminator(m))
    return Recipe(
        networks={"G": G, "D": D},
        optimizers={"G": torch.optim.Adam(G.parameters(), cfg.recipe.lr), "D": torch.optim.Adam(D.parameters(),
                                                                                            cfg.recipe.lr)},
        phases=[Phase("D", "D", lambda batch: (d_loss(D, G, ctx.images(batch), ctx.randn(n, m.z_dim)), {})),
                Phase("G", "G", lambda batch: (g_loss(D, G, ctx.randn(n, m.z_dim)), {}), takes="nothing")])


def import_plain(args: argparse.Namespace) -> Path:
    """The family's "official" format: a plain state dict {"G": ..., "z_dim": ...} in one .pt file."""
    from ganforge.presets import load_config

    out = new_run_folder(args.out)
    state = read_weights_only(Path(args.checkpoint), f"{NAME} checkpoint")
    cfg = load_config(args.preset or f"{NAME}/shapes", [f"model.z_dim={int(state['z_dim'])}", *args.overrides])
    return write_new_run(out, cfg, {"family": NAME, "generator": "G", "config": cfg, "networks": {"G": state["G"]},
                                    "ema": None, "imported_from": {"G": str(args.checkpoint)}}, step=0)


PRESET = """
family: tinymlp
model: {image_size: 32, z_dim: 8, hidden: 16}
data: {name: shapes, image_size: 32, length: 64, num_workers: 0}
train: {batch_size: 8, steps: 4, log_every: 1, sample_every: 2, ckpt_every: 2, sample_count: 4,
        progress: false, tensorboard: false}
runtime: {device: cpu, deterministic: true}
"""


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    presets = tmp_path_factory.mktemp("presets")
    (presets / "shapes.yaml").write_text(PRESET)
    # The config dataclasses must be visible to typing.get_type_hints through this module's globals.
    spec = register_family(FamilySpec(
        NAME, TinyModelConfig, TinyRecipeConfig, build_recipe, TinyGenerator, kind="noise", presets=presets,
        importer=Importer(import_plain, lambda parser: None, help="a .pt file holding {'G': state dict, 'z_dim': int}"),
        examples={"train": f"ganforge train {NAME}/shapes"}))
    yield spec
    unregister_family(NAME)


@pytest.fixture(scope="module")
def trained(family, tmp_path_factory):
    out = tmp_path_factory.mktemp("door")
    assert main(["train", f"{NAME}/shapes", f"out_dir={out}", "name=run"]) == 0
    return out / "run"


def test_shows_up_in_help_and_import_choices(family, capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    assert NAME in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert f"ganforge train {NAME}/shapes" in capsys.readouterr().out
    assert main(["info", "--json"]) == 0
    assert NAME in capsys.readouterr().out


def test_trains_and_resumes_bit_for_bit(family, trained, tmp_path):
    assert (trained / "checkpoints" / "step-00000004.pt").is_file()
    assert main(["train", f"{NAME}/shapes", f"out_dir={tmp_path}", "name=cut", "train.steps=2"]) == 0
    assert main(["resume", str(tmp_path / "cut"), "train.steps=4"]) == 0
    assert_latest_checkpoints_equal(trained, tmp_path / "cut")


def test_samples_evaluates_and_exports(family, trained, tmp_path, capsys):
    assert main(["sample", str(trained), "--n", "4", "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").is_file()
    assert main(["evaluate", str(trained), "--n", "10", "--batch-size", "10", "--out", str(tmp_path / "e.json")]) == 0
    assert "oracle_fid" in capsys.readouterr().out
    assert main(["export", str(trained), "--format", "safetensors", "--out", str(tmp_path / "st")]) == 0
    gen, exported = ganforge.load(trained), ganforge.load(tmp_path / "st")
    z = gen.make_inputs(2, seed=1)
    assert torch.equal(gen(*z), exported(*z))
    ort = pytest.importorskip("onnxruntime")
    assert main(["export", str(trained), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "onnx" / "generator.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input_0": z[0].numpy()})
    assert np.allclose(out, gen(*z).numpy(), atol=1e-5)


def test_imports_its_own_format(family, tmp_path, capsys):
    G = TinyGenerator(TinyModelConfig(z_dim=8))
    torch.save({"G": G.state_dict(), "z_dim": 8}, tmp_path / "plain.pt")
    assert main(["import", NAME, str(tmp_path / "plain.pt"), "--out", str(tmp_path / "imported")]) == 0
    z = G.make_inputs(2, torch.Generator().manual_seed(0))
    assert torch.equal(ganforge.load(tmp_path / "imported")(*z), G(*z))
    assert main(["import", NAME, str(tmp_path / "plain.pt"), "--out", str(tmp_path / "imported")]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err


def test_a_verb_of_another_family_is_refused_with_the_right_one(family, trained, capsys):
    assert main(["translate", str(trained), "--input", "x.png"]) == 2
    assert f"ganforge sample {trained}" in capsys.readouterr().err


def _doodle(opened, args: argparse.Namespace) -> int:
    """A drawing verb of the test's own: one grid of scaled samples."""
    from ganforge.load import generator_from_opened
    from ganforge.sample.grid import save_grid

    gen = generator_from_opened(opened, args.weights, args.device)
    save_grid((gen.sample(4, args.seed) * args.scale).clamp(-1, 1), Path(args.out))
    return 0


def test_a_family_can_bring_its_own_verb(family, tmp_path, capsys):
    # A second family with a drawing verb that ganforge does not have: it appears in the command line
    # from its registration alone, with its options, and `sample` points to it.
    register_family(replace(family, name="tinydoodle", importer=None, examples={}, drawing=Drawing(
        "doodle", "--scale S", _doodle, lambda group: group.add_argument("--scale", type=float, default=1.0),
        help="Draw a doodle.")))
    try:
        with pytest.raises(SystemExit):
            main(["--help"])
        out = capsys.readouterr().out
        assert "doodle" in out and "Draw a doodle." in out
        from ganforge.presets import load_config

        cfg = load_config(f"{NAME}/shapes", ["family=tinydoodle"])
        G = TinyGenerator(cfg.model)
        write_new_run(tmp_path / "run", cfg, {"family": "tinydoodle", "generator": "G", "networks": {"G": G.state_dict()},
                                             "ema": None}, step=0)
        assert main(["doodle", str(tmp_path / "run"), "--scale", "0.5", "--out", str(tmp_path / "d.png")]) == 0
        assert (tmp_path / "d.png").is_file()
        assert main(["sample", str(tmp_path / "run")]) == 2
        assert f"Use `ganforge doodle {tmp_path / 'run'} --scale S`" in capsys.readouterr().err
    finally:
        unregister_family("tinydoodle")
