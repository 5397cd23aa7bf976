"""The generic phase loop. It knows nothing about any family.

A family's recipe hands over networks, optimizers and phases; the trainer owns device placement,
ranks, autocast, loss scaling, gradient accumulation and averaging, ``requires_grad`` toggling, EMA,
learning-rate schedules, checkpoints, logs, sample grids, the progress bar, Ctrl-C/SIGTERM, and
NaN detection.

A *step* is one pass over every phase that is due (for a Wasserstein critic: n_critic critic
updates, then one generator update); ``train.steps`` counts steps, and checkpoints are always taken
between steps, so a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ganforge.config import ConfigError, RunConfig, to_dict
from ganforge.run.store import CheckpointRecord, save_config
from ganforge.data import build_dataset, build_loader
from ganforge.layers.conv import reuse_weight_matrices
from ganforge.layers.norm import to_channels_last
from ganforge.paths import safe_name
from ganforge.registry import get_family
from ganforge.runtime.allocator import retain_freed_memory
from ganforge.runtime.compile import compile_networks
from ganforge.runtime.cpu import SlowdownWatch, apply_threads
from ganforge.runtime.device import peak_memory_bytes, resolve_device, synchronize
from ganforge.runtime.distributed import (arrive, average_gradients, barrier, broadcast_module, env_info,
                                          explain_timeout, heartbeat, init_distributed)
from ganforge.runtime.precision import Precision
from ganforge.runtime.progress import progress
from ganforge.runtime.seed import capture_rng_state, restore_rng_state, seed_everything, set_deterministic
from ganforge.sample.grid import GridLabels, generate, labelled_grid, save_grid, save_picture, side_by_side
from ganforge.run.checkpoint import (CheckpointError, UnreadableFile, checkpoint_step, damaged_checkpoint_error,
                                     latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint,
                                     set_aside_after)
from ganforge.train.ema import make_ema, update_ema
from ganforge.train.logger import RunLogger
from ganforge.train.memory import (explain, free_device_memory, is_out_of_memory, model_too_large,
                                   probe_largest_batch)
from ganforge.train.optimizers import use_implementation
from ganforge.train.phases import Phase, Recipe, RecipeContext, count_parameters
from ganforge.train.schedules import linear_decay

log = logging.getLogger(__name__)

# Steps past train.ema.start after which an EMA of the usual decays (0.999-0.9999) has left its
# starting copy behind; until then training samples show the raw weights beside it.
EMA_SETTLE_STEPS = 1000


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the phase and the step."""


@dataclass
class TrainResult:
    run_dir: Path | None
    step: int
    status: str  # finished | interrupted | preempted
    checkpoint: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)


def default_run_name(cfg: RunConfig) -> str:
    """``family-data-`` and the start time; under torchrun its run id instead, which every rank shares
    and a restart keeps (so a restarted command continues the same folder)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "") if env_info().enabled else ""
    tag = safe_run_id(run_id) if run_id else datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    return f"{cfg.family}-{cfg.data.name}-{tag}"


def safe_run_id(run_id: str) -> str:
    """A torchrun run id as a folder-name tag (letters, digits, '-', '_'; at most 32 characters)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)[:32]


class _StopFlag:
    """SIGINT/SIGTERM set a flag that the loop reads between steps; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig, reason in ((signal.SIGINT, "interrupted"), (signal.SIGTERM, "preempted")):
                self._previous[sig] = signal.signal(sig, self._handler(reason))
        return self

    def _handler(self, reason: str) -> Callable[[int, Any], None]:
        owner = os.getpid()

        def handle(signum: int, frame: Any) -> None:
            if os.getpid() != owner:  # a forked child (a data worker) inherited this handler: not its call
                return
            if self.reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: the user really wants out
            self.reason = reason
            if signum == signal.SIGINT:
                print("\nCtrl-C: finishing this step and writing a checkpoint (Ctrl-C again to abort)...",
                      file=sys.stderr)
        return handle

    def __exit__(self, *exc: Any) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)


def _warn_if_batches_repeat(examples: int, batch_size: int) -> None:
    """Say so when the data is smaller than a batch: each batch then repeats every example."""
    if 0 < examples < batch_size:
        log.warning("the data has %d examples and train.batch_size=%d: every batch repeats each one about %d "
                    "times (a lower train.batch_size, or more data, gives the discriminator more variety)",
                    examples, batch_size, round(batch_size / examples))


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint to continue from; a damaged one is refused with the intact one before it named."""
    try:
        return load_checkpoint(path)
    except UnreadableFile as err:
        raise damaged_checkpoint_error(path, err) from None


def _rank_device(cfg: RunConfig) -> torch.device:
    """The device this process trains on (under torchrun, its local rank's)."""
    info = env_info()
    return resolve_device(cfg.runtime.device, info.local_rank if info.enabled else None)


class Trainer:
    """Builds a run from a config and trains it; see the module docstring."""

    def __init__(self, cfg: RunConfig, run_dir: Path | None = None, resume_from: Path | None = None,
                 step_hook: Callable[["Trainer", int], None] | None = None):
        self.cfg = cfg
        self.step_hook = step_hook
        rt = cfg.runtime
        # Read first: its thread count is the one to continue with (sums' order depends on it).
        resumed = _read_checkpoint(resume_from) if resume_from is not None else None
        self.threads = apply_threads(rt.threads, resumed.get("threads") if resumed else None)
        if rt.retain_freed_memory:
            retain_freed_memory()
        self.device = _rank_device(cfg)
        self.dist = init_distributed(self.device, rt.dist_timeout_s)
        self.is_main = self.dist.is_main
        set_deterministic(rt.deterministic)
        tr = cfg.train
        per_rank = tr.batch_size // self.dist.world_size
        if tr.batch_size % (self.dist.world_size * tr.grad_accum):
            raise ValueError(f"train.batch_size={tr.batch_size} must be divisible by processes x train.grad_accum "
                             f"= {self.dist.world_size} x {tr.grad_accum}")
        self.local_batch = per_rank // tr.grad_accum
        self.precision = Precision(rt.precision, self.device, rt.penalty_precision)

        # Data first: a wrong path should fail before a network is built.
        self.dataset = build_dataset(cfg.data, rt.seed)
        if self.is_main:
            _warn_if_batches_repeat(len(self.dataset), tr.batch_size)
        # Same initial weights on every rank (and broadcast below to be certain).
        seed_everything(rt.seed)
        self.ctx = RecipeContext(device=self.device, precision=self.precision, dist=self.dist,
                                 local_batch=self.local_batch, channels_last=rt.channels_last is True,
                                 conv_matmul_positions=rt.conv_matmul_positions,
                                 noise=torch.Generator().manual_seed(rt.seed), dataset=self.dataset)
        self.spec = get_family(cfg.family)
        self.recipe: Recipe = self.spec.build_recipe(cfg, self.ctx)
        self._adapt_networks()
        use_implementation(self.recipe.optimizers.values(), rt.optimizer_impl, self.device)
        self.generator = self.recipe.networks[self.recipe.generator]
        self.ema = make_ema(self.generator) if tr.ema.enabled else None  # an eager copy: made before compiling
        self.compiled = compile_networks(self.recipe.networks, rt.compile, self.recipe.twice_differentiated)
        self.scalers = {name: self.precision.make_scaler() for name in self.recipe.optimizers}
        self.base_lrs = {name: [g["lr"] for g in opt.param_groups] for name, opt in self.recipe.optimizers.items()}
        self.step = 0
        self.lr_scale = 1.0  # lowered by each NaN rollback (train.on_nan=rollback), checkpointed
        self.rollbacks = 0
        self._last_save = time.monotonic()  # train.ckpt_every_minutes counts from the start and each checkpoint
        data_position = 0
        self.run_dir = run_dir
        if resume_from is not None:
            data_position = self._load(resume_from, resumed)
        # Per-rank streams for anything a recipe draws from torch's global RNG (dropout, ...). A
        # checkpoint restores rank 0's state; every other case derives it from rank and step.
        if resume_from is None or self.dist.rank > 0:
            torch.manual_seed(rt.seed + 1_000_003 * self.dist.rank + self.step)
        for net in self.recipe.networks.values():
            broadcast_module(net, self.dist.world_size)
        self.stream = self._open_stream(data_position)
        heartbeat(self.dist, self.step)  # a rank that hangs in its first step is named with this step
        # Fixed inputs for the periodic sample grid: the same images every time, on every device.
        self.sample_inputs = None if self.recipe.sample is not None else \
            self.generator.make_inputs(tr.sample_count, torch.Generator().manual_seed(rt.seed + 1))
        self.logger = RunLogger(run_dir if self.is_main else None, tr.tensorboard) if run_dir else None
        self.evaluator = None
        if cfg.eval.every and self.is_main:
            # Built now so that missing weights or a wrong metric stop the run before step 1.
            self.evaluator = self._build_evaluator()

    def _build_evaluator(self) -> Any:
        """The family's own evaluator (the code of its `ganforge evaluate`), or the generic one."""
        if self.spec.training_evaluator is not None:
            return self.spec.training_evaluator(self.cfg, self.dataset, self.device)
        from ganforge.metrics.evaluate import Evaluator

        ev = self.cfg.eval
        return Evaluator(self.dataset, ev.metrics, ev.n, seed=ev.seed, batch_size=ev.batch_size, device=self.device,
                         inception_path=ev.inception_weights, allow_nonstandard=ev.allow_nonstandard_weights,
                         progress=self.cfg.train.progress, family_eval=self.spec.evaluation_for(self.dataset),
                         data_config=self.cfg.data)

    # ------------------------------------------------------------------------------------------
    # state

    def _channels_last_networks(self, names: list[str]) -> None:
        """``runtime.channels_last: [names]``: those networks channels_last, the batches as they are."""
        unknown = [n for n in names if n not in self.recipe.networks]
        if unknown:
            raise ConfigError(f"runtime.channels_last: no network named {', '.join(unknown)} in {self.cfg.family}; "
                              f"its networks are {', '.join(self.recipe.networks)} (or use true / false)")
        for name in names:
            to_channels_last(self.recipe.networks[name])

    def _adapt_networks(self) -> None:
        """What the config asks of the recipe's networks before training: channels_last for the named
        ones, and DiffAugment (its draws: a CPU stream of their own, see ``_seed_augment``)."""
        rt = self.cfg.runtime
        if isinstance(rt.channels_last, list):
            self._channels_last_networks(rt.channels_last)
        self.augment = torch.Generator()
        if self.cfg.train.diffaugment:
            self._attach_diffaugment(self.cfg.train.diffaugment)

    def _seed_augment(self) -> None:
        """Seed DiffAugment's stream from the run's seed, this rank and the step: each rank draws its
        own augmentations, and a resume continues them exactly on any rank without checkpointing a
        stream per rank (a checkpoint holds rank 0's random state only)."""
        self.augment.manual_seed(self.cfg.runtime.seed + 7919 * (1 + self.dist.rank) + 104_729 * self.step)

    def _attach_diffaugment(self, policy: str) -> None:
        """``train.diffaugment``: augment what each image discriminator of the family sees."""
        from ganforge.layers.diffaugment import attach

        if not self.spec.judges_images:
            raise ConfigError(f"train.diffaugment: {self.cfg.family} declares no discriminator of images to augment")
        try:
            for name in self.spec.judges_images:
                attach(self.recipe.networks[name], policy, self.augment)
        except ValueError as err:
            raise ConfigError(f"train.diffaugment={policy!r}: {err}") from None

    def state_dict(self) -> CheckpointRecord:
        """Everything a resume needs to continue bit for bit: networks, EMA, optimizers, scalers, RNG
        streams, the data position and the lr scale."""
        return {
            "family": self.cfg.family,
            "generator": self.recipe.generator,
            "config": to_dict(self.cfg),
            "networks": {k: v.state_dict() for k, v in self.recipe.networks.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizers": {k: v.state_dict() for k, v in self.recipe.optimizers.items()},
            "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
            "rng": capture_rng_state({"noise": self.ctx.noise}),
            "data_position": self.stream.position,
            "lr_scale": self.lr_scale,
            "world_size": self.dist.world_size,
            "threads": torch.get_num_threads(),
            "recipe_state": self.recipe.state.state_dict() if self.recipe.state is not None else None,
        }

    def _load(self, path: Path, state: dict[str, Any]) -> int:
        if state.get("family") != self.cfg.family:
            raise CheckpointError(f"'{path}' is a '{state.get('family')}' checkpoint; this run is '{self.cfg.family}'")
        try:
            for name, net in self.recipe.networks.items():
                if name not in state["networks"] and "optimizers" not in state:
                    # an import without this network's file (e.g. no discriminator): it starts fresh
                    log.warning("'%s' holds no '%s' weights (an import); it starts from its initialization", path, name)
                    continue
                net.load_state_dict(state["networks"][name])
            if self.ema is not None:
                if state.get("ema") is None:
                    update_ema(self.ema, self.generator, 0, 0.0, 1)  # EMA switched on now: start from the weights
                else:
                    self.ema.load_state_dict(state["ema"])
            if "optimizers" in state:
                for name, opt in self.recipe.optimizers.items():
                    opt.load_state_dict(state["optimizers"][name])
            else:  # an imported official checkpoint: weights only
                log.warning("'%s' holds weights only (an import); training continues with fresh optimizers", path)
            for name, scaler in self.scalers.items():
                if name in state.get("scalers", {}):
                    scaler.load_state_dict(state["scalers"][name])
        except (KeyError, RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0][:300]
            raise CheckpointError(f"'{path}' does not fit this run's networks (another size or config?): {first}") from None
        if self.recipe.state is not None and state.get("recipe_state") is not None:
            self.recipe.state.load_state_dict(state["recipe_state"])
        if "rng" in state:
            restore_rng_state(state["rng"], {"noise": self.ctx.noise})
        self.step = int(state["step"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        return int(state.get("data_position", 0))

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0 only); every rank waits for it."""
        self._last_save = time.monotonic()
        path = None
        if self.is_main and self.run_dir is not None:
            path = save_checkpoint(self.run_dir / "checkpoints", self.step, self.state_dict(), self.cfg.train.keep_last)
        barrier(self.dist.world_size)
        return path

    # ------------------------------------------------------------------------------------------
    # one step

    def _set_trainable(self, network: str, submodules: tuple[str, ...] = ()) -> None:
        for name, net in self.recipe.networks.items():
            net.requires_grad_(name == network and not submodules)
        for sub in submodules:
            self.recipe.networks[network].get_submodule(sub).requires_grad_(True)

    def _open_stream(self, position: int) -> Any:
        """This rank's batch stream, starting at global sample ``position`` (0, or a checkpoint's)."""
        data = self.recipe.train_data if self.recipe.train_data is not None else self.dataset
        return build_loader(data, self.cfg.data, self.local_batch, self.dist.world_size, self.dist.rank,
                            self.cfg.runtime.seed, start=position, device=self.device)

    def _lr_factor(self, step: int) -> float:
        if self.recipe.lr_schedule is not None:
            return self.recipe.lr_schedule(step) * self.lr_scale
        tr = self.cfg.train
        return (linear_decay(step, tr.steps, tr.lr_decay_start) if tr.lr_schedule == "linear" else 1.0) * self.lr_scale

    def _rollback(self, err: TrainingDiverged) -> bool:
        """``train.on_nan=rollback``: reload the last checkpoint with lower learning rates; False when
        rolling back is off, exhausted or impossible (the caller re-raises)."""
        tr = self.cfg.train
        ckpt = latest_checkpoint(self.run_dir / "checkpoints") if self.run_dir is not None else None
        if tr.on_nan != "rollback" or ckpt is None or self.rollbacks >= tr.nan_max_rollbacks:
            if tr.on_nan == "rollback":
                reason = "no checkpoint to roll back to" if ckpt is None else f"{self.rollbacks} rollbacks already"
                err.args = (f"{err.args[0]} (rollback not possible: {reason})",)
            return False
        failed_at = self.step
        self.stream.close()
        position = self._load(ckpt, load_checkpoint(ckpt))
        self.lr_scale *= tr.nan_lr_factor
        self.rollbacks += 1
        self.stream = self._open_stream(position)
        message = (f"NaN/Inf loss at step {failed_at}: rolled back to {ckpt.name} (step {self.step}), learning "
                   f"rates x{self.lr_scale:g} (rollback {self.rollbacks} of {tr.nan_max_rollbacks})")
        log.warning(message)
        return True

    def train_step(self, sums: dict[str, torch.Tensor] | None = None, phase_repeats: int | None = None) -> list[tuple[str, torch.Tensor]]:
        """Run every phase due at ``self.step``; returns (phase, total loss) pairs, not yet synced."""
        self.ctx.step = self.step
        if self.cfg.train.diffaugment:
            self._seed_augment()
        factor = self._lr_factor(self.step)
        for name, opt in self.recipe.optimizers.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name]):
                group["lr"] = base * factor
        accum = self.cfg.train.grad_accum
        totals = []
        # Each phase's inputs of its last update this step, kept only where a later phase takes them.
        used: dict[str, list[Any]] = {}
        taken = {p.takes for p in self.recipe.phases}
        for phase in self.recipe.phases:
            if self.step % phase.every:
                continue
            self._set_trainable(phase.network, phase.submodules)
            net, opt, scaler = self.recipe.networks[phase.network], self.recipe.optimizers[phase.network], self.scalers[phase.network]
            micro = accum * phase.accumulations
            for _ in range(phase.repeats if phase_repeats is None else phase_repeats):
                opt.zero_grad(set_to_none=True)
                used[phase.name] = []
                for k in range(micro):
                    with reuse_weight_matrices():  # no parameter changes until scaler.step below
                        inputs = self._phase_inputs(phase, k, used)
                        loss, parts = phase.loss(inputs)
                        scaler.scale(loss / micro).backward()
                    if phase.name in taken:
                        used[phase.name].append(inputs)
                    totals.append((phase.name, loss.detach()))
                    if sums is not None:
                        for key, value in parts.items():
                            k = f"{phase.name}/{key}"
                            sums[k] = sums.get(k, 0.0) + value.detach().float()
                        k = f"{phase.name}/loss"
                        sums[k] = sums.get(k, 0.0) + loss.detach().float()
                        sums[f"_count/{phase.name}"] = sums.get(f"_count/{phase.name}", 0) + 1
                average_gradients((p for p in net.parameters() if p.requires_grad), self.dist.world_size)
                if phase.before_step is not None:
                    scaler.unscale_(opt)  # the hook works on true gradients; a no-op without fp16 scaling
                    phase.before_step()
                scaler.step(opt)
                scaler.update()
        self._set_trainable("")  # nothing trainable between steps: sampling and EMA need no graph
        if self.ema is not None:
            ema = self.cfg.train.ema
            # Counted from 1 like the official codes' itr: with start=1000 updates 1..999 copy, 1000 on average.
            decay = ema.decay if self.recipe.ema_decay is None else self.recipe.ema_decay(self.step)
            update_ema(self.ema, self.generator, self.step + 1, decay, ema.start,
                       average_buffers=self.recipe.ema_averages_buffers)
        return totals

    def _phase_inputs(self, phase: Phase, k: int, used: dict[str, list[Any]]) -> Any:
        """What ``phase``'s loss takes for its ``k``-th micro-batch (see ``ganforge.train.phases``)."""
        if phase.takes == "batch":
            batch = next(self.stream)
            return phase.prepare(batch) if phase.prepare is not None else batch
        if phase.takes == "nothing":
            return None
        if phase.takes not in used:
            raise RuntimeError(f"phase '{phase.name}' takes the inputs of '{phase.takes}', which has not run at step "
                               f"{self.step} (a phase can take only an earlier phase's inputs)")
        items = used[phase.takes]
        return items[k % len(items)]

    def _check_finite(self, totals: list[tuple[str, torch.Tensor]], stop_requested: bool,
                      checkpoint_due: bool = False) -> tuple[bool, bool]:
        """Raise TrainingDiverged on a non-finite loss on any rank; returns whether any rank must stop and
        whether any rank (rank 0's clock) wants a time-based checkpoint, so that every rank agrees."""
        asks = [float(stop_requested), float(checkpoint_due)]
        flags = torch.stack([torch.stack([t.float() for _, t in totals]).isfinite().all().float(),
                             torch.tensor(asks[0], device=totals[0][1].device),
                             torch.tensor(asks[1], device=totals[0][1].device)]) \
            if totals else torch.tensor([1.0, *asks])
        if self.dist.world_size > 1:
            flags = flags.to(self.device)
            # MIN of "finite", MAX of "stop" and "due": negate the last two to use one collective.
            flags[1:] = -flags[1:]
            arrive()
            dist.all_reduce(flags, op=dist.ReduceOp.MIN)
            flags[1:] = -flags[1:]
        if flags[0].item() < 1.0:
            bad = next((name for name, t in totals if not torch.isfinite(t).all()), "another rank's phase")
            raise TrainingDiverged(
                f"loss of phase '{bad}' became NaN/Inf at step {self.step}; training stopped without writing a "
                f"checkpoint, so the last good one is intact. Try a lower learning rate, runtime.precision=fp32, "
                f"or check the data for broken images.")
        return flags[1].item() > 0, flags[2].item() > 0

    # ------------------------------------------------------------------------------------------
    # loop

    def _sampler(self, raw: bool = False) -> torch.nn.Module:
        """The EMA generator (else, or with ``raw``, the trained one), prepared by the recipe for sampling
        if it asks to."""
        net = self.ema if self.ema is not None and not raw else self.generator
        return self.recipe.prepare_sampler(net) if self.recipe.prepare_sampler is not None else net

    def _draw_samples(self, net: torch.nn.Module, sheets: bool = True
                      ) -> tuple[torch.Tensor, int | None, dict[str, Any]]:
        """The family's sample grid drawn by ``net`` (in eval mode), its images per row, and (with
        ``sheets``) its extra sheets."""
        was_training = net.training
        net.eval()
        nrow = None
        if self.recipe.sample is not None:
            images, nrow = self.recipe.sample(net)
        else:
            images = generate(net, self.sample_inputs, self.device)
        extra = self.recipe.extra_samples(net) if sheets and self.recipe.extra_samples is not None else {}
        net.train(was_training)
        return images, nrow, extra

    def write_samples(self) -> Path | None:
        """Write the family's sample grid for the current step (main process only); its path, or None.

        The picture says which weights drew it. An EMA starts as a copy of the weights and needs about
        ``EMA_SETTLE_STEPS`` steps past ``train.ema.start`` before it shows more than noise, so until
        then the raw generator's grid stands beside it."""
        if not self.is_main or self.run_dir is None:
            return None
        images, nrow, extra = self._draw_samples(self._sampler())
        kind = "EMA" if self.ema is not None else "trained"
        settled = self.cfg.train.ema.start + EMA_SETTLE_STEPS
        beside_raw = self.ema is not None and self.step < settled
        title = f"EMA weights (settle after step ~{settled})" if beside_raw else f"{kind} weights"
        panels = [labelled_grid(images, nrow, GridLabels(title=title))]
        if beside_raw:  # the raw grid only: its sheets would be thrown away
            raw_images, raw_nrow, _ = self._draw_samples(self._sampler(raw=True), sheets=False)
            panels.insert(0, labelled_grid(raw_images, raw_nrow, GridLabels(title="raw weights")))
        picture = side_by_side(panels, title=f"{self.cfg.name or self.cfg.family}: step {self.step}")
        for name, (sheet, per_row) in extra.items():
            save_grid(sheet, self.run_dir / "samples" / f"{name}-step-{self.step:08d}.png", per_row,
                      GridLabels(title=f"{name}, {kind} weights, step {self.step}"))
        path = save_picture(picture, self.run_dir / "samples" / f"step-{self.step:08d}.png")
        if self.logger is not None:
            self.logger.image(self.step, "samples", torch.from_numpy(np.ascontiguousarray(picture.pixels)).permute(2, 0, 1))
        return path

    def evaluate(self, checkpoint: Path | None) -> dict[str, float] | None:
        """Evaluate the generator now (rank 0), log it, write ``eval/step-N.json``, rank ``checkpoint``."""
        result = None
        if self.evaluator is not None:
            from ganforge.metric_names import GENERIC
            from ganforge.metrics.evaluate import write_result
            from ganforge.train.best import update_best

            ev = self.cfg.eval
            result = self.evaluator.evaluate_generator(self._sampler())
            if self.logger is not None:
                self.logger.scalars(self.step, {f"eval/{k}": v for k, v in result.metrics.items()})
            if self.run_dir is not None:
                write_result(result, self.run_dir / "eval" / f"step-{self.step:08d}.json",
                             {"step": self.step, "weights": "ema" if self.ema is not None else "raw",
                              "checkpoint": checkpoint.name if checkpoint else None})
                if ev.keep_best and checkpoint is not None:
                    update_best(self.run_dir / "checkpoints" / "best", checkpoint, self.step,
                                result.metrics[ev.metric], ev.metric, (self.spec.metrics or GENERIC).direction(ev.metric),
                                ev.keep_best)
            ref = getattr(result, "real_vs_real", {}).get(ev.metric, float("nan"))
            tqdm.write(f"step {self.step}: {ev.metric} = {result.metrics.get(ev.metric, float('nan')):.4g} "
                       f"(real vs real {ref:.4g})", file=sys.stderr)
        barrier(self.dist.world_size)
        return result.metrics if result is not None else None

    def fit(self) -> TrainResult:
        """Train until ``train.steps``, a signal, or divergence; returns how it ended."""
        tr = self.cfg.train
        if self.step >= tr.steps:
            return TrainResult(self.run_dir, self.step, "finished", latest_checkpoint(self.run_dir / "checkpoints")
                               if self.run_dir else None)
        bar = progress(total=tr.steps, initial=self.step, desc=self.cfg.name or self.cfg.family, unit="step",
                       enabled=self.is_main and tr.progress, delay=0)
        sums: dict[str, Any] = {}
        status, last_ckpt = "finished", None
        window = [time.perf_counter(), 0]  # start of the current log window, steps in it
        if self.is_main and self.device.type == "cpu":
            tqdm.write(f"{self.cfg.family} on the CPU with {self.threads.describe()}", file=sys.stderr)
        watch = SlowdownWatch()
        try:
            with _StopFlag() as stop:
                while self.step < tr.steps:
                    t_step = time.perf_counter()
                    try:
                        totals, must_stop, due = self._train_and_agree(sums, stop.reason is not None)
                    except TrainingDiverged as err:
                        if not self._rollback(err):
                            raise
                        sums, bar.n = {}, self.step
                        continue
                    self.step += 1
                    heartbeat(self.dist, self.step)
                    window[1] += 1
                    bar.update(1)
                    slow = watch.add(time.perf_counter() - t_step)
                    if slow is not None and self.is_main:
                        tqdm.write(self._slowdown_advice(slow, watch.pace or slow), file=sys.stderr)
                    if self.step % tr.log_every == 0 or self.step == tr.steps:
                        self._log_window(sums, window, bar)
                        sums = {}
                    last_ckpt = self._save_sample_evaluate(last_ckpt, due)
                    if self.step_hook is not None:
                        self.step_hook(self, self.step)
                    if must_stop or stop.reason is not None:
                        status = stop.reason or "interrupted"
                        if self.step % tr.ckpt_every and self.step != tr.steps:
                            last_ckpt = self.save()
                        break
        finally:
            bar.close()
            self.stream.close()
            if self.logger is not None:
                self.logger.close()
        return TrainResult(self.run_dir, self.step, status, last_ckpt)

    def _log_window(self, sums: dict[str, Any], window: list, bar: tqdm) -> None:
        """Log the mean losses and s/step of the steps since the last log line; start a new window."""
        now = time.perf_counter()
        values = self._reduce_logs(sums)
        values["time/s_per_step"] = (now - window[0]) / max(window[1], 1)
        values["lr/factor"] = self._lr_factor(self.step - 1)
        window[:] = [now, 0]
        if self.logger is not None:
            self.logger.scalars(self.step, values)
        bar.set_postfix({k.split("/")[0] + "_" + k.split("/")[-1]: f"{v:.3g}" for k, v in values.items()
                         if k.endswith("/loss")}, refresh=False)

    def _train_and_agree(self, sums: dict[str, Any], stop_requested: bool) -> tuple[list, bool, bool]:
        """One step and the ranks' agreement on it (finite losses, stop, a time-based checkpoint); a
        collective that times out on a silent peer becomes a PeerTimeout naming that rank."""
        try:
            totals = self.train_step(sums)
            return (totals, *self._check_finite(totals, stop_requested, self._checkpoint_due()))
        except TrainingDiverged:
            raise
        except RuntimeError as err:
            timeout = explain_timeout(err, self.dist, self.step + 1, self.cfg.runtime.dist_timeout_s) \
                if self.dist.enabled else None
            if timeout is None:
                raise
            raise timeout from None

    def _checkpoint_due(self) -> bool:
        """Whether ``train.ckpt_every_minutes`` have passed since the last checkpoint (rank 0's clock)."""
        minutes = self.cfg.train.ckpt_every_minutes
        return bool(minutes) and self.is_main and time.monotonic() - self._last_save >= minutes * 60

    def _save_sample_evaluate(self, last_ckpt: Path | None, time_due: bool = False) -> Path | None:
        """The sample grid, checkpoint and evaluation due at this step; the latest checkpoint written."""
        tr, ev = self.cfg.train, self.cfg.eval
        if self.step % tr.sample_every == 0 or self.step == tr.steps:
            self.write_samples()
        saved_now = self.step % tr.ckpt_every == 0 or self.step == tr.steps or time_due
        if saved_now:
            last_ckpt = self.save()
        if ev.every and (self.step % ev.every == 0 or self.step == tr.steps):
            if ev.keep_best and not saved_now:
                last_ckpt = self.save()  # keep-best needs this step's weights on disk
            self.evaluate(last_ckpt)
        return last_ckpt

    def _slowdown_advice(self, now_s: float, pace_s: float) -> str:
        """What to do when steps became far slower than at the start (another program on the machine)."""
        where = "the CPU" if self.device.type == "cpu" else f"the CPU or {self.device}"
        text = (f"step {self.step}: steps now take {now_s:.2f} s against {pace_s:.2f} s when this run started; "
                f"another program is probably using {where}. Training goes on.")
        if self.device.type == "cpu" and self.run_dir is not None:
            fewer = max(1, torch.get_num_threads() - 1)
            text += (f" To train on the cores that are free instead: Ctrl-C (a checkpoint is written), then "
                     f"`ganforge resume {self.run_dir} runtime.threads={fewer}`")
        return text

    def _reduce_logs(self, sums: dict[str, Any]) -> dict[str, float]:
        keys = [k for k in sums if not k.startswith("_count/")]
        if not keys:
            return {}
        means = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32).to(self.device)
                             / sums[f"_count/{k.split('/')[0]}"] for k in keys])
        if self.dist.world_size > 1:
            dist.all_reduce(means, op=dist.ReduceOp.SUM)
            means /= self.dist.world_size
        return dict(zip(keys, means.cpu().tolist()))

    # ------------------------------------------------------------------------------------------
    # dry run

    def dry_run(self) -> dict[str, Any]:
        """One step of every phase (twice: warm-up, then timed) with shapes at module borders."""
        shapes: dict[str, list[tuple[str, str, str]]] = {}
        hooks = []
        for net_name, net in self.recipe.networks.items():
            rows = shapes.setdefault(net_name, [])
            for mod_name, mod in block_modules(net):
                def hook(m: torch.nn.Module, args: Any, out: Any, rows=rows, mod_name=mod_name) -> None:
                    if any(r[0] == mod_name for r in rows):
                        return
                    rows.append((mod_name, type(m).__name__, _shape_of(out)))
                hooks.append(mod.register_forward_hook(hook))
        t0 = time.perf_counter()
        totals = self.train_step(phase_repeats=1)
        synchronize(self.device)
        first = time.perf_counter() - t0
        for h in hooks:
            h.remove()
        self._check_finite(totals, False)
        self.step += 1
        t0 = time.perf_counter()
        totals = self.train_step()
        synchronize(self.device)
        timed = time.perf_counter() - t0
        self._check_finite(totals, False)
        self.stream.close()
        return {
            "device": str(self.device), "precision": self.precision.name, "world_size": self.dist.world_size,
            "local_batch": self.local_batch, "grad_accum": self.cfg.train.grad_accum,
            "parameters": {k: count_parameters(v) for k, v in self.recipe.networks.items()},
            "compiled": self.compiled,
            "phases": [(p.name, p.network, p.repeats, p.every) for p in self.recipe.phases],
            "losses": {name: float(t) for name, t in totals},
            "shapes": shapes, "first_step_s": first, "step_s": timed,
            "peak_memory_bytes": peak_memory_bytes(self.device),
        }


_CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
# A Sequential of at most this many plain layers is one block (conv, norm, activation, upsampling); a
# longer one is a whole network body (DCGAN's), shown layer by layer.
BLOCK_MAX_LAYERS = 6


def _depth(module: torch.nn.Module) -> int:
    """Levels of layers below ``module``, not counting containers: a layer 0, a block of layers 1, a
    residual block whose norms hold layers (BigGAN's GBlock, StarGAN v2's AdainResBlk) 2."""
    children = list(module.children())
    if not children:
        return 0
    inner = max(_depth(c) for c in children)
    return inner if isinstance(module, _CONTAINERS) else 1 + inner


def block_modules(net: torch.nn.Module, prefix: str = "") -> list[tuple[str, torch.nn.Module]]:
    """The network as its paper draws it, one row per block: a residual block, an attention layer, a
    Sequential of plain layers (a path). Lists and dicts of modules, Sequentials of blocks and networks
    of blocks (StarGAN v2's generator inside its translator) are opened; the layers inside a block are
    not."""
    out = []
    for name, child in net.named_children():
        full = f"{prefix}{name}"
        depth = _depth(child)
        if isinstance(child, _CONTAINERS):
            row = isinstance(child, torch.nn.Sequential) and depth == 0 and len(child) <= BLOCK_MAX_LAYERS
        else:
            row = depth <= 2
        out.extend([(full, child)] if row else block_modules(child, full + "."))
    return out


def _shape_of(out: Any) -> str:
    """A module output's shape: a tensor's, or each tensor's of a tuple (an RNN's output and state)."""
    if isinstance(out, torch.Tensor):
        return str(tuple(out.shape))
    if isinstance(out, (tuple, list)):
        return "(" + ", ".join(_shape_of(o) for o in out) + ")"
    return type(out).__name__


# ----------------------------------------------------------------------------------------------
# entry points


def prepare_run_dir(cfg: RunConfig) -> Path:
    """Create ``out_dir/name`` for a new run (rank 0) and save the resolved config in it."""
    if cfg.name is None:
        cfg.name = default_run_name(cfg)
    safe_name(cfg.name)
    run_dir = Path(cfg.out_dir) / cfg.name
    if env_info().is_main:
        if (run_dir / "checkpoints").is_dir() and latest_checkpoint(run_dir / "checkpoints") is not None:
            raise FileExistsError(f"run '{run_dir}' already has checkpoints; continue it with "
                                  f"`ganforge resume {run_dir}` or pick another name=...")
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    return run_dir


def _fit(cfg: RunConfig, make: Callable[[], Trainer]) -> TrainResult:
    """Build a trainer and fit it; a device out-of-memory becomes a BatchTooLarge error naming the
    largest batch that fits (probed after the failing trainer is released); one while the trainer is
    built becomes a ModelTooLarge error (no batch exists yet, so no batch size can help)."""
    try:
        trainer = make()
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        error = model_too_large(cfg, _rank_device(cfg), err)
    else:
        error = None
    if error is not None:  # raised outside the handler, so the failed build's tensors can be freed
        free_device_memory()
        raise error
    try:
        return trainer.fit()
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        device, world_size = trainer.device, trainer.dist.world_size
    del trainer  # the exception and its frames are gone too: the memory can be returned
    free_device_memory()
    largest = probe_largest_batch(cfg, _one_step_fits) if world_size == 1 else None
    raise explain(cfg, device, world_size, largest)


def _one_step_fits(cfg: RunConfig) -> bool:
    """Whether one training step of ``cfg`` runs (no run folder, nothing written)."""
    trainer = None
    try:
        trainer = Trainer(cfg, None)
        trainer.train_step(phase_repeats=1)
        return True
    except Exception as err:
        if is_out_of_memory(err) or isinstance(err, ConfigError):  # e.g. a batch too small for the recipe
            return False
        raise
    finally:
        if trainer is not None:
            trainer.stream.close()
        trainer = None  # released before the next, smaller try
        free_device_memory()


def train(cfg: RunConfig, step_hook: Callable[[Trainer, int], None] | None = None) -> TrainResult:
    """Start a new run from a resolved config, or continue the run of that name when it already has
    checkpoints of the same config (the same command twice, or a torchrun restart, goes on where the
    last checkpoint left off; only ``train.steps`` may differ, to train further).

    A run that fails before it wrote anything but its config (a missing data folder, a bad key the
    dataset checks) leaves no folder behind, so the next try can use the same name; a folder that
    existed before, or has anything else in it, is never touched."""
    if cfg.name is None:
        cfg.name = default_run_name(cfg)
    safe_name(cfg.name)
    if latest_checkpoint(Path(cfg.out_dir) / cfg.name / "checkpoints") is not None:
        return _continue_same_run(cfg, step_hook)
    existed = (Path(cfg.out_dir) / cfg.name).exists()
    run_dir = prepare_run_dir(cfg)
    try:
        return _fit(cfg, lambda: Trainer(cfg, run_dir, step_hook=step_hook))
    except BaseException:
        if not existed and env_info().is_main:
            _remove_if_only_config(run_dir)
        raise


def _continue_same_run(cfg: RunConfig, step_hook: Callable[[Trainer, int], None] | None) -> TrainResult:
    """``train`` on a run folder with checkpoints: resume it if its config.yaml is ``cfg`` (train.steps aside),
    else a ConfigError naming every differing key."""
    from ganforge.config import differing_keys, load_yaml

    run_dir = Path(cfg.out_dir) / cfg.name
    saved = load_yaml((run_dir / "config.yaml").read_text(encoding="utf-8"))
    differ = differing_keys(saved, cfg, ignore=("train.steps",))
    if differ:
        raise ConfigError(f"run '{run_dir}' has checkpoints of another config ({'; '.join(differ)}); the same "
                          f"`ganforge train` continues a run only with its own config. Change it deliberately "
                          f"with `ganforge resume {run_dir} key=value`, or pick another name=...")
    if env_info().is_main:
        log.warning("'%s' has checkpoints of this config: continuing it from the latest", run_dir)
    steps = int(saved.get("train", {}).get("steps", cfg.train.steps))
    return resume(run_dir, [f"train.steps={cfg.train.steps}"] if steps != cfg.train.steps else None, step_hook)


def _remove_if_only_config(run_dir: Path) -> None:
    """Delete ``run_dir`` when ``config.yaml`` is all it holds (best effort: never masks the error)."""
    try:
        if [p.name for p in run_dir.iterdir()] == ["config.yaml"]:
            (run_dir / "config.yaml").unlink()
            run_dir.rmdir()
    except OSError:
        pass


def resume(run_dir: str | Path, overrides: list[str] | None = None,
           step_hook: Callable[[Trainer, int], None] | None = None, start_from: str | Path | None = None) -> TrainResult:
    """Continue ``run_dir`` from its latest checkpoint, or from ``start_from`` (a file name in its
    ``checkpoints`` folder or a path; later checkpoints are set aside). Overrides may extend
    ``train.steps``. A run that has its config but no checkpoint yet (stopped before the first one)
    starts from step 0."""
    from ganforge.config import load_yaml
    from ganforge.presets import resolve_with_overrides

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"'{run_dir}' is not a ganforge run: no config.yaml in it")
    raw = load_yaml(cfg_path.read_text(encoding="utf-8"))
    cfg = resolve_with_overrides(raw, overrides or [])
    ckpt = _checkpoint_to_resume(run_dir, start_from)
    if ckpt is None:
        if env_info().is_main:
            log.warning("'%s' has no checkpoint yet: training starts at step 0 with its config.yaml", run_dir)
            if overrides:
                save_config(cfg, cfg_path)
        return _fit(cfg, lambda: Trainer(cfg, run_dir, step_hook=step_hook))
    at = checkpoint_step(ckpt)
    # Refused before config.yaml is rewritten: a run whose config says fewer steps than it has trained
    # would mislead every later resume and report.
    if cfg.train.steps < at:
        raise ConfigError(f"'{run_dir}' is at step {at} ({ckpt.name}); train.steps={cfg.train.steps} is behind it. "
                          f"Give train.steps above {at} to train further")
    if cfg.train.steps == at and env_info().is_main:
        log.warning("'%s' is already at train.steps=%d: nothing to train (give train.steps=N, N > %d, to go on)",
                    run_dir, at, at)
    if overrides and env_info().is_main:
        save_config(cfg, cfg_path)

    def make() -> Trainer:
        trainer = Trainer(cfg, run_dir, resume_from=ckpt, step_hook=step_hook)  # reads and checks ``ckpt`` first
        if start_from is not None and env_info().is_main:
            for moved in set_aside_after(run_dir / "checkpoints", at):
                log.warning("set aside '%s' (after the checkpoint this run continues from)", moved)
        return trainer

    return _fit(cfg, make)


def _checkpoint_to_resume(run_dir: Path, start_from: str | Path | None) -> Path | None:
    """The checkpoint a resume continues from: ``start_from`` (a checkpoint of this run), else the
    latest. The trainer reads it first and names the intact one before a damaged one; the later
    checkpoints are set aside only once it has read ``start_from``."""
    folder = run_dir / "checkpoints"
    if start_from is not None:
        ckpt = Path(start_from)
        if not ckpt.is_file() and (folder / ckpt.name).is_file() and ckpt.parent == Path("."):
            ckpt = folder / ckpt.name
        if not ckpt.is_file():
            have = ", ".join(p.name for p in list_checkpoints(folder)) or "none"
            raise CheckpointError(f"--from: '{start_from}' is not a checkpoint of '{run_dir}' (its checkpoints: {have})")
        if ckpt.resolve().parent != folder.resolve():
            raise CheckpointError(f"--from: '{ckpt}' is not in '{folder}'; a run continues from its own checkpoints")
        return ckpt
    return latest_checkpoint(folder)
