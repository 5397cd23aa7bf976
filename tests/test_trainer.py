"""The phase loop: exact resume, Ctrl-C, NaN detection, accumulation, EMA, schedules."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

from gfhelpers import assert_latest_checkpoints_equal, assert_states_equal, tiny_overrides
from ganforge.config import ConfigError
from ganforge.presets import load_config, resolve
from ganforge.losses import discriminator_loss, generator_loss, gradient_penalty
from ganforge.registry import FamilySpec, register_family
from ganforge.run.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from ganforge.train.ema import make_ema, update_ema
from ganforge.train.phases import Phase, Recipe
from ganforge.train.trainer import Trainer, TrainingDiverged, linear_decay, resume, train


def final_state(run_dir):
    return load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
def test_ctrl_c_then_resume_equals_an_uninterrupted_run_bit_for_bit(tmp_path, workers):
    extra = {"train.steps": 8, "train.ckpt_every": 100, "data.num_workers": workers, "train.ema.enabled": True,
             "train.ema.start": 2, "train.ema.decay": 0.9, "train.lr_schedule": "linear", "train.lr_decay_start": 3}
    straight = train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "a", name="run", **extra)))
    assert straight.status == "finished" and straight.step == 8

    def press_ctrl_c(trainer, step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal path, handled between steps

    stopped = train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "b", name="run", **extra)),
                    step_hook=press_ctrl_c)
    assert stopped.status == "interrupted" and stopped.step == 4
    assert stopped.checkpoint.name == "step-00000004.pt"
    resumed = resume(tmp_path / "b" / "run")
    assert resumed.status == "finished" and resumed.step == 8
    assert_states_equal(final_state(tmp_path / "a" / "run"), final_state(tmp_path / "b" / "run"))


def test_nan_stops_with_phase_and_step_and_keeps_the_last_checkpoint(tmp_path):
    def poison(trainer, step):
        if step == 3:  # after the step-3 checkpoint was written
            with torch.no_grad():
                trainer.recipe.networks["D"].main[0].weight.fill_(float("nan"))

    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="nan", **{"train.steps": 10}))
    with pytest.raises(TrainingDiverged, match=r"phase 'D' became NaN/Inf at step 3"):
        train(cfg, step_hook=poison)
    ckpts = list_checkpoints(tmp_path / "nan" / "checkpoints")
    assert [p.name for p in ckpts] == ["step-00000003.pt"]
    state = load_checkpoint(ckpts[-1])
    assert all(torch.isfinite(v).all() for v in state["networks"]["D"].values())


def test_nan_rollback_reloads_the_last_checkpoint_with_lower_learning_rates(tmp_path):
    fired = []

    def poison_once(trainer, step):
        if step == 5 and not fired:  # NaN weights after the step-5 checkpoint: step 6 diverges
            fired.append(step)
            with torch.no_grad():
                trainer.recipe.networks["D"].main[0].weight.fill_(float("nan"))

    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="rb", **{
        "train.steps": 8, "train.ckpt_every": 1, "train.on_nan": "rollback", "train.nan_lr_factor": 0.25}))
    result = train(cfg, step_hook=poison_once)
    assert result.status == "finished" and result.step == 8
    final = load_checkpoint(latest_checkpoint(tmp_path / "rb" / "checkpoints"))
    assert final["lr_scale"] == 0.25
    assert final["optimizers"]["D"]["param_groups"][0]["lr"] == pytest.approx(1e-4 * 0.25)
    assert all(torch.isfinite(v).all() for v in final["networks"]["D"].values())

    def poison_always(trainer, step):
        if step >= 2:
            with torch.no_grad():
                trainer.recipe.networks["D"].main[0].weight.fill_(float("nan"))

    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="rb2", **{
        "train.steps": 12, "train.ckpt_every": 1, "train.on_nan": "rollback", "train.nan_max_rollbacks": 2}))
    with pytest.raises(TrainingDiverged, match="rollback not possible: 2 rollbacks already"):
        train(cfg, step_hook=poison_always)


def test_checkpoint_of_another_family_is_refused(tmp_path):
    from ganforge.run.checkpoint import CheckpointError

    train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="w", **{"train.steps": 1})))
    cfg = load_config("dcgan/shapes", tiny_overrides(tmp_path, name="d"))
    with pytest.raises(CheckpointError, match="is a 'wgan_gp' checkpoint; this run is 'dcgan'"):
        Trainer(cfg, resume_from=latest_checkpoint(tmp_path / "w" / "checkpoints"))


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "C:evil"])
def test_run_names_cannot_write_outside_the_runs_folder(tmp_path, name):
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "runs", name=name))
    with pytest.raises(ValueError, match="must be a single folder name"):
        train(cfg)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "runs").exists()


def test_the_same_train_command_continues_its_run_and_a_different_config_is_refused(tmp_path):
    train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="same", **{"train.steps": 3})))
    before = load_checkpoint(latest_checkpoint(tmp_path / "same" / "checkpoints"))
    with pytest.raises(ConfigError, match=r"another config \(recipe.lr_d: 0.0001 -> 0.0003; recipe.lr_g: 0.0001 -> "
                                          r"0.0003\).*ganforge resume"):
        train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="same", **{"train.steps": 3,
                                                                                     "recipe.lr_g": 3e-4,
                                                                                     "recipe.lr_d": 3e-4})))
    again = train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="same", **{"train.steps": 3})))
    assert again.step == 3  # nothing more to train; the checkpoint is untouched
    assert_states_equal(before, load_checkpoint(latest_checkpoint(tmp_path / "same" / "checkpoints")))
    further = train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="same", **{"train.steps": 6})))
    assert further.step == 6
    train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="fresh", **{"train.steps": 6})))
    assert_latest_checkpoints_equal(tmp_path / "fresh", tmp_path / "same")  # continued exactly


def test_resume_can_extend_a_finished_run(tmp_path, caplog):
    train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="r", **{"train.steps": 3})))
    result = resume(tmp_path / "r", ["train.steps=5"])
    assert result.step == 5 and final_state(tmp_path / "r")["step"] == 5
    # Fewer steps than the run has trained: refused before config.yaml changes. The same steps: nothing to do.
    config = (tmp_path / "r" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="at step 5 .*train.steps=4 is behind it"):
        resume(tmp_path / "r", ["train.steps=4"])
    assert (tmp_path / "r" / "config.yaml").read_text() == config
    with caplog.at_level(logging.WARNING):
        assert resume(tmp_path / "r").step == 5
    assert "nothing to train" in caplog.text


def test_checkpoint_of_another_size_is_refused(tmp_path):
    from ganforge.run.checkpoint import CheckpointError

    train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="r", **{"train.steps": 3})))
    with pytest.raises(CheckpointError, match="does not fit this run's networks"):
        resume(tmp_path / "r", ["model.g_channels=16"])


# ------------------------------------------------------------------------------ a toy family

@dataclass
class ToyModel:
    """A linear generator and critic: no batch statistics, so accumulation must be exact."""

    image_size: int = 8
    channels: int = 3
    z_dim: int = 4


@dataclass
class ToyRecipe:
    lr: float = 0.01


class ToyGenerator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.fc = nn.Linear(cfg.z_dim, cfg.channels * cfg.image_size ** 2)

    def make_inputs(self, n, generator=None):
        return (torch.randn(n, self.cfg.z_dim, generator=generator),)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, self.cfg.channels, self.cfg.image_size, self.cfg.image_size)


def _toy_recipe(cfg, ctx):
    G = ctx.place(ToyGenerator(cfg.model))
    D = ctx.place(nn.Sequential(nn.Flatten(), nn.Linear(cfg.model.channels * cfg.model.image_size ** 2, 1)))
    # The "noise" is read off the data, so both runs of the accumulation test see identical inputs
    # and the test isolates the trainer's accumulation arithmetic.
    def z_of(batch):
        return ctx.images(batch).flatten(1)[:, : cfg.model.z_dim] * 3

    def d_step(batch):
        real = ctx.images(batch)
        with torch.no_grad():
            fake = G(z_of(batch))
        loss = discriminator_loss(D(real).squeeze(1), D(fake).squeeze(1), "wgan")
        return loss + 10 * gradient_penalty(D, real, fake, torch.full((real.shape[0], 1, 1, 1), 0.3)), {}

    def g_step(batch):
        return generator_loss(D(G(z_of(batch))).squeeze(1), "wgan"), {}

    return Recipe({"G": G, "D": D}, {"G": torch.optim.SGD(G.parameters(), lr=cfg.recipe.lr),
                                     "D": torch.optim.SGD(D.parameters(), lr=cfg.recipe.lr)},
                  [Phase("D", "D", d_step, repeats=2), Phase("G", "G", g_step)])


register_family(FamilySpec("toy_test", ToyModel, ToyRecipe, _toy_recipe, ToyGenerator))


def toy_config(tmp_path, **extra):
    raw = {"family": "toy_test", "out_dir": str(tmp_path), "data": {"name": "shapes", "image_size": 8, "length": 40,
                                                                   "num_workers": 0},
           "train": {"steps": 3, "batch_size": 8, "progress": False, "tensorboard": False, "log_every": 1},
           "runtime": {"device": "cpu", "deterministic": True}}
    for key, value in extra.items():
        section, name = key.split(".")
        raw[section][name] = value
    return resolve(raw)


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    a = Trainer(toy_config(tmp_path))
    b = Trainer(toy_config(tmp_path, **{"train.grad_accum": 2}))
    initial = [p.detach().clone() for p in a.recipe.networks["G"].parameters()]
    assert b.local_batch == 4
    for _ in range(3):
        a.train_step(); a.step += 1
        b.train_step(); b.step += 1
    assert a.stream.position == b.stream.position == 3 * 3 * 8  # (2 D + 1 G) batches per step
    for name in ("G", "D"):
        for pa, pb in zip(a.recipe.networks[name].parameters(), b.recipe.networks[name].parameters()):
            assert torch.allclose(pa, pb, rtol=1e-5, atol=1e-7), name
    assert not torch.allclose(initial[0], a.recipe.networks["G"].fc.weight)  # training moved the weights


def test_batch_that_does_not_split_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="train.batch_size=8 must be divisible by processes x train.grad_accum = 1 x 3"):
        Trainer(toy_config(tmp_path, **{"train.grad_accum": 3}))


def test_dry_run_reports_shapes_counts_and_time(tmp_path):
    report = Trainer(load_config("wgan_gp/shapes", tiny_overrides(tmp_path))).dry_run()
    assert report["parameters"]["G"] > 0 and set(report["losses"]) == {"D", "G"}
    rows = dict((r[0], r[2]) for r in report["shapes"]["G"])
    assert rows["main.0"] == "(8, 32, 4, 4)" and rows["main.10"] == "(8, 3, 32, 32)"
    assert report["step_s"] > 0
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("preset, network, expected", [
    ("biggan/shapes", "G", {"blocks.0.0": ("GBlock", "(50, 32, 8, 8)"), "blocks.2.0": ("GBlock", "(50, 32, 32, 32)"),
                            "output_layer": ("Sequential", "(50, 3, 32, 32)")}),
    ("biggan/shapes", "D", {"blocks.0.0": ("DBlock", "(100, 32, 16, 16)"), "linear": ("SNLinear", "(100, 1)")}),
    ("starganv2/shapes", "G", {"generator.encode.0": ("ResBlk", "(8, 64, 16, 16)"),
                               "generator.decode.2": ("AdainResBlk", "(8, 32, 32, 32)"),
                               "mapping_network": ("MappingNetwork", "(8, 64)")}),
    ("storygan/shapes", "G", {"recurrent": ("GRUCell", "(24, 75)"), "upsample4": ("Sequential", "(24, 12, 64, 64)")}),
])
def test_dry_run_shows_the_blocks_the_paper_draws(preset, network, expected):
    report = Trainer(load_config(preset, ["data.num_workers=0"])).dry_run()
    rows = {name: (kind, shape) for name, kind, shape in report["shapes"][network]}
    assert {k: rows.get(k) for k in expected} == expected
    assert not any(".conv" in name or name.endswith(".bn1") for name in rows), "layers inside a block stay inside"


# ------------------------------------------------------------------------------ pure functions

def test_ema_copies_before_start_then_averages():
    net = nn.Linear(2, 2)
    ema = make_ema(net)
    with torch.no_grad():
        net.weight.fill_(1.0)
    update_ema(ema, net, step=0, decay=0.5, start=1)
    assert torch.equal(ema.weight, net.weight)
    with torch.no_grad():
        net.weight.fill_(3.0)
    update_ema(ema, net, step=1, decay=0.5, start=1)
    assert torch.allclose(ema.weight, torch.full((2, 2), 2.0))
    assert not any(p.requires_grad for p in ema.parameters())


@pytest.mark.slow
def test_out_of_memory_while_building_says_the_model_does_not_fit(tmp_path, monkeypatch, capsys):
    """An OOM before any batch exists (networks placed on the device) is not blamed on the batch size:
    no probe runs, and the CLI prints the family, the device and what to change, exiting 2."""
    import ganforge.train.trainer as trainer_module
    from ganforge.cli import main
    from ganforge.train.memory import BatchTooLarge, ModelTooLarge

    def no_room(net, world_size):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    probes: list[int] = []
    monkeypatch.setattr(trainer_module, "broadcast_module", no_room)  # called once the networks are built
    monkeypatch.setattr(trainer_module, "probe_largest_batch", lambda *a: probes.append(1))
    with pytest.raises(ModelTooLarge, match=r"building the wgan_gp networks on cpu ran out of memory.*no "
                                            r"train.batch_size would help.*Tried to allocate 9.00 GiB") as caught:
        train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path)))
    assert not isinstance(caught.value, BatchTooLarge) and probes == []
    assert main(["train", "wgan_gp/shapes", *tiny_overrides(tmp_path / "cli")]) == 2
    assert "ganforge train: error: building the wgan_gp networks" in capsys.readouterr().err


def test_linear_decay_schedule():
    assert [linear_decay(s, 10, 6) for s in (0, 5, 6, 8, 10)] == [1.0, 1.0, 1.0, 0.5, 0.0]


@pytest.mark.slow
def test_out_of_memory_names_the_largest_batch_that_fits(tmp_path, monkeypatch):
    """A device OOM (simulated: more than 2 samples per micro-batch) becomes an error naming the probed
    batch and the accumulation that keeps the effective batch; nothing is written by the probe."""
    from ganforge.train.memory import BatchTooLarge, candidate_batches
    from ganforge.train.trainer import Trainer

    real_step = Trainer.train_step
    tried: list[int] = []

    def limited(self, *args, **kwargs):
        tried.append(self.local_batch)
        if self.local_batch > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", limited)
    cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, **{"train.batch_size": 8}))
    with pytest.raises(BatchTooLarge, match=r"batch_size=8 does not fit.*largest batch that fits is 2 .*"
                                            r"train.grad_accum=4 \(micro-batches of 2\)"):
        train(cfg)
    assert tried == [8, 4, 2]
    assert not list(tmp_path.rglob("*.pt"))  # the probe writes nothing
    assert candidate_batches(24, 2) == [12, 6, 2] and candidate_batches(8, 1) == [4, 2, 1]
    # An error that is not about memory passes through unchanged.
    monkeypatch.setattr(Trainer, "train_step", lambda self, *a, **k: (_ for _ in ()).throw(KeyError("x")))
    with pytest.raises(KeyError):
        train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path / "b")))


def test_optimizer_implementation_is_fused_where_available_and_computes_the_same_update(tmp_path):
    """auto makes Adam fused on the CPU (PyTorch's default there is the slow per-parameter loop); the
    fused and foreach updates equal the loop's up to float rounding; fused on an optimizer without
    kernels is refused by name."""
    from ganforge.train.optimizers import use_implementation

    def steps(impl: str) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-4)
        use_implementation([opt], impl, torch.device("cpu"))
        assert opt.param_groups[0]["fused"] is (impl in ("auto", "fused"))
        assert opt.param_groups[0]["foreach"] is (impl == "foreach")
        for _ in range(5):
            opt.zero_grad()
            net(torch.randn(4, 6)).square().mean().backward()
            opt.step()
        return [p.detach().clone() for p in net.parameters()]

    loop = steps("for_loop")
    for impl in ("auto", "fused", "foreach"):
        for a, b in zip(steps(impl), loop):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="RMSprop on cpu has no fused kernels"):
        use_implementation([torch.optim.RMSprop(nn.Linear(2, 2).parameters())], "fused", torch.device("cpu"))
    trainer = Trainer(load_config("wgan_gp/shapes", tiny_overrides(tmp_path)), None)
    assert all(g["fused"] for opt in trainer.recipe.optimizers.values() for g in opt.param_groups)
    trainer.stream.close()
    trainer = Trainer(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, **{"runtime.optimizer_impl": "for_loop"})),
                      None)
    assert not any(g["fused"] or g["foreach"] for opt in trainer.recipe.optimizers.values() for g in opt.param_groups)
    trainer.stream.close()


@pytest.mark.slow
def test_compile_trains_as_eager_and_keeps_penalized_networks_eager(tmp_path):
    """runtime.compile: the WGAN-GP critic, which the gradient penalty differentiates twice, stays
    eager and G is compiled in place (same parameter names, so checkpoints are the plain network's);
    one step gives eager's losses and weights up to rounding. A family without a penalty compiles
    every network."""
    def one_step(mode: str) -> tuple[Trainer, dict[str, float]]:
        cfg = load_config("wgan_gp/shapes", tiny_overrides(tmp_path, **{"runtime.compile": mode}))
        trainer = Trainer(cfg, run_dir=None)
        losses = {k: float(v) for k, v in trainer.train_step()}
        trainer.stream.close()
        return trainer, losses

    eager, eager_losses = one_step("false")
    compiled, compiled_losses = one_step("true")
    assert eager.compiled == [] and compiled.compiled == ["G"]
    G = compiled.recipe.networks["G"]
    assert G._compiled_call_impl is not None and compiled.recipe.networks["D"]._compiled_call_impl is None
    assert list(G.state_dict()) == list(eager.recipe.networks["G"].state_dict())
    assert compiled_losses.keys() == eager_losses.keys()
    for k in eager_losses:
        assert compiled_losses[k] == pytest.approx(eager_losses[k], rel=1e-4, abs=1e-5), k
    for (name, a), b in zip(eager.recipe.networks["G"].named_parameters(), G.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=name)

    no_penalty = load_config("dcgan/shapes", tiny_overrides(tmp_path, **{"runtime.compile": "reduce-overhead"}))
    assert Trainer(no_penalty, run_dir=None).compiled == ["G", "D"]


def test_time_based_checkpoints_come_between_step_based_ones(tmp_path, monkeypatch):
    """train.ckpt_every_minutes: a checkpoint at the first step after that much time since the last one
    (here a clock that advances 40 s per step against 1 minute), besides ckpt_every."""
    import ganforge.train.trainer as trainer_module

    import time
    import types

    ticks = iter(range(0, 10_000, 40))  # the trainer's clock alone: 40 s per reading
    clock = types.SimpleNamespace(monotonic=lambda: float(next(ticks)), perf_counter=time.perf_counter,
                                  time=time.time, sleep=time.sleep)
    monkeypatch.setattr(trainer_module, "time", clock)
    train(load_config("wgan_gp/shapes", tiny_overrides(tmp_path, name="t", **{
        "train.steps": 7, "train.ckpt_every": 100, "train.ckpt_every_minutes": 1, "train.keep_last": 10})))
    steps = [int(p.stem.split("-")[1]) for p in list_checkpoints(tmp_path / "t" / "checkpoints")]
    # read at the start (0 s), then once per step (40, 80 s: due at step 2), once per save, ...
    assert steps == [2, 4, 6, 7]


def test_default_run_name_under_torchrun_is_its_run_id(monkeypatch):
    from ganforge.train.trainer import default_run_name

    cfg = load_config("wgan_gp/shapes", [])
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job/42:a")
    assert default_run_name(cfg) == "wgan_gp-shapes-job_42_a"  # the same on every rank and after a restart
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert default_run_name(cfg).startswith("wgan_gp-shapes-20")  # one process: the start time
