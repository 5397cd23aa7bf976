"""StarGAN v2's evaluation, as clovaai/stargan-v2's ``metrics/eval.py`` measures it, plus the shapes oracle.

For each guidance mode (``latent``, ``reference``) and each task ``src2trg`` (every ordered pair of
different domains), every validation image of ``src`` is translated ``num_outs`` (10) times to ``trg``:
with a fresh latent code each time, or with the next reference image of ``trg``'s validation set
(cycled through a fixed shuffle, as the official loop cycles its shuffled loader). Then:

- ``FID_<mode>/<task>``: FID between all outputs of the task and the *training* images of ``trg``
  (the official comparison), and the mean over tasks;
- ``LPIPS_<mode>/<task>``: diversity, the LPIPS between every pair of a source's outputs, averaged
  per batch and then over the task's batches, as the official code does; and the mean over tasks;
- on the shapes domains view (domains circle/square/triangle), the oracle reads every output:
  ``domain_acc`` (the object has the target shape), ``pose_kept`` (the source's position, within 5% of
  the side, and its size), and for reference guidance ``color_taken`` / ``texture_taken`` (the
  reference's color / texture); for latent guidance ``colors_per_source`` (distinct colors among a
  source's outputs: the diversity the mapping network gives);
- on a judged dataset's domains view (emoji), the judge reads every output: ``judge_<mode>/domain_acc``
  (the target domain read back) and ``judge_<mode>/diversity``, the distance between every pair of a
  source's outputs in the judge's unit-length features (LPIPS diversity's question, answered without
  downloaded ImageNet weights).

FID uses, by default, the standard FID Inception (torch-fidelity's weights, as every other family), so
the numbers compare with other FID numbers; ``fid_net="imagenet"`` uses what the official script uses
instead, torchvision's ImageNet Inception-v3 at 299 px (:class:`ImageNetInceptionPool`), for numbers
comparable with the paper's. LPIPS is the ``lpips`` package's AlexNet v0.1, which the official LPIPS
(ImageNet normalization, unit-normalized features, learned 1x1 weights, spatial mean) equals.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn

from ganforge.metric_names import EvalError
from ganforge.metrics.distances import mean_pairwise_distance
from ganforge.metrics.perceptual import mean_pairwise_lpips

METRICS = ("fid", "lpips", "oracle", "judge")
FID_NETS = ("standard", "imagenet")
MODES = ("latent", "reference")


def parse_starganv2_metrics(text: str) -> list[str]:
    """``"fid,lpips"`` -> validated StarGAN v2 metric names, in a stable order."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in items if t not in METRICS]
    if unknown or not items:
        raise EvalError(f"StarGAN v2 is measured with {', '.join(METRICS)} (comma-separated; oracle on the shapes "
                        f"domains view, judge on the emoji domains view); got {', '.join(unknown) or '(none)'}")
    return [m for m in METRICS if m in items]


@dataclass
class Starganv2EvalConfig:
    """What to measure and how much: ``sources`` validation images per domain at most (None: all of
    them, as the official evaluation), ``num_outs`` outputs per source (official 10)."""

    metrics: tuple[str, ...] = ("fid", "lpips")
    modes: tuple[str, ...] = MODES
    num_outs: int = 10
    sources: int | None = None
    batch_size: int = 32
    seed: int = 0
    fid_net: str = "standard"  # standard: the FID Inception; imagenet: the official script's torchvision one


def shapes_domains(domains: list[str]) -> bool:
    """Whether these domains are the shapes domains view's (so the oracle can read the outputs)."""
    from ganforge.data.shapes import SHAPES

    return list(domains) == list(SHAPES)


class Starganv2Evaluation:
    """Extractors, built once (Inception for FID, LPIPS, the oracle), and the real side; call
    :meth:`run` with a :class:`~ganforge.models.starganv2.translator.Starganv2Translator`.

    ``train``: the training images (FID's real side, per target domain); ``val``: sources and
    references. Both are domain views read without augmentation."""

    def __init__(self, train: Any, val: Any, cfg: Starganv2EvalConfig, device: str | torch.device = "cpu",
                 inception: nn.Module | None = None, lpips: nn.Module | None = None, oracle: Any = None,
                 inception_path: str | None = None, lpips_path: str | None = None,
                 allow_nonstandard: bool = False, progress: bool = False, judge: Any = None):
        if list(train.domains) != list(val.domains):
            raise EvalError(f"the training domains ({', '.join(train.domains)}) and the validation domains "
                            f"({', '.join(val.domains)}) differ; they must be the same folders")
        if len(train.domains) < 2:
            raise EvalError(f"translation needs at least two domains; the data has {len(train.domains)}")
        if cfg.fid_net not in FID_NETS:
            raise EvalError(f"fid_net '{cfg.fid_net}' is not one of {', '.join(FID_NETS)}")
        if cfg.num_outs < 2 and "lpips" in cfg.metrics:
            raise EvalError(f"LPIPS diversity compares a source's outputs with each other: num_outs={cfg.num_outs}, "
                            f"need at least 2 (the official evaluation uses 10)")
        bad_modes = [m for m in cfg.modes if m not in MODES]
        if bad_modes or not cfg.modes:
            raise EvalError(f"guidance modes are {', '.join(MODES)}; got {', '.join(bad_modes) or '(none)'}")
        empty = [d for d, members in zip(val.domains, val.by_domain) if len(members) == 0]
        if empty:
            raise EvalError(f"the validation data has no images of domain(s) {', '.join(empty)}")
        self.train, self.val, self.cfg, self.device = train, val, cfg, torch.device(device)
        self.progress = progress
        self.info: dict[str, Any] = {"metrics_requested": list(cfg.metrics), "modes": list(cfg.modes),
                                     "num_outs": cfg.num_outs, "seed": cfg.seed, "fid_net": cfg.fid_net}
        # Every extractor is built before any image is generated: a missing weights file fails at once.
        with torch.random.fork_rng(devices=[]):
            if "fid" in cfg.metrics and inception is None:
                from ganforge.metrics.inception import ImageNetInceptionPool, build_inception
                from ganforge.metrics.weights import load_weights

                name = "inception-fid" if cfg.fid_net == "standard" else "inception_v3"
                state, self.info["inception"] = load_weights(name, inception_path, allow_nonstandard)
                inception = build_inception(state) if cfg.fid_net == "standard" else ImageNetInceptionPool(state)
            if "lpips" in cfg.metrics and lpips is None:
                from ganforge.metrics.perceptual import build_lpips

                lpips = build_lpips("alex", lpips_path, allow_nonstandard)
            if "oracle" in cfg.metrics:
                if not shapes_domains(train.domains):
                    raise EvalError(f"oracle metrics read the shapes domains view (domains circle, square, triangle); "
                                    f"this data's domains are {', '.join(train.domains)}. Use fid,lpips instead.")
                if oracle is None:
                    from ganforge.metrics.oracle import load_oracle

                    oracle = load_oracle(progress=progress)
                self.info["oracle"] = {"recipe": oracle.recipe.digest(), "held_out_accuracy": oracle.accuracy}
        self.inception = inception.to(self.device).eval() if inception is not None else None
        self.lpips = lpips.to(self.device).eval() if lpips is not None else None
        self.oracle = oracle
        if "judge" in cfg.metrics:
            if judge is None or list(judge.class_names) != list(train.domains):
                raise EvalError(f"judge metrics need the judge of these domains ({', '.join(train.domains)}): a "
                                f"judged dataset's domains view (data.name=emoji, data.view=domains)")
            self.info["judge"] = {"classes": judge.class_names, "held_out_accuracy": judge.accuracy}
        self.judge = judge
        self._real_features: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------------------------------
    # images

    def _images(self, data: Any, indices: np.ndarray) -> torch.Tensor:
        return torch.stack([data.load(int(i), None) for i in indices])

    def _sources(self, domain: int) -> np.ndarray:
        members = self.val.by_domain[domain]
        return members if self.cfg.sources is None else members[:self.cfg.sources]

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        from ganforge.metrics.oracle import rgb_uint8

        out = self.inception(rgb_uint8(images).to(self.device))
        pool = out[0] if isinstance(out, (tuple, list)) else out  # the FID Inception also gives logits
        return pool.double().cpu()

    def _real(self, domain: int) -> torch.Tensor:
        """Inception features of every training image of ``domain`` (computed once)."""
        if domain not in self._real_features:
            members = self.train.by_domain[domain]
            parts = [self._features(self._images(self.train, members[i:i + self.cfg.batch_size]))
                     for i in range(0, len(members), self.cfg.batch_size)]
            self._real_features[domain] = torch.cat(parts)
        return self._real_features[domain]

    # ------------------------------------------------------------------------------------------
    # the evaluation

    @torch.no_grad()
    def run(self, translator: nn.Module) -> "Starganv2Result":
        """Every metric of ``translator`` (put in eval mode for the duration), per task and averaged."""
        t0 = time.perf_counter()
        was_training = translator.training
        translator.eval()
        values: dict[str, float] = OrderedDict()
        try:
            with torch.random.fork_rng(devices=[]):
                for mode in self.cfg.modes:
                    values.update(self._mode(translator, mode))
        finally:
            translator.train(was_training)
        info = dict(self.info, seconds=round(time.perf_counter() - t0, 2))
        return Starganv2Result(values, info)

    def _mode(self, translator: nn.Module, mode: str) -> dict[str, float]:
        """Every metric of one guidance mode: per task (src2trg), then the mean over tasks."""
        from tqdm import tqdm

        domains = self.val.domains
        fid, lpips, oracle_hits, judge_hits, judge_spread = OrderedDict(), OrderedDict(), {}, [], []
        tasks = [(s, t) for t in range(len(domains)) for s in range(len(domains)) if s != t]
        for task_index, (src, trg) in enumerate(tqdm(tasks, desc=f"{mode}-guided tasks", disable=not self.progress)):
            task = f"{domains[src]}2{domains[trg]}"
            features, lpips_per_batch = [], []
            for x, outs, ref_images in self._translate(translator, mode, task_index, src, trg):
                if self.inception is not None:
                    features += [self._features(o) for o in outs]
                if self.lpips is not None:
                    lpips_per_batch.append(mean_pairwise_lpips(self.lpips, outs))
                if self.oracle is not None:
                    _oracle_hits(self.oracle, mode, x.cpu(), [o.cpu() for o in outs], ref_images, trg, oracle_hits)
                if self.judge is not None:  # the target domain read back, and the outputs' spread
                    readings = [self.judge.read(o.cpu()) for o in outs]
                    judge_hits += [classes == trg for _, classes in readings]
                    judge_spread.append(mean_pairwise_distance([features for features, _ in readings]))
            if self.inception is not None:
                from ganforge.metrics.distances import frechet_distance

                fid[f"FID_{mode}/{task}"] = frechet_distance(torch.cat(features), self._real(trg))
            if self.lpips is not None:
                lpips[f"LPIPS_{mode}/{task}"] = float(np.mean(lpips_per_batch))
        out: dict[str, float] = OrderedDict()
        for table, name in ((fid, "FID"), (lpips, "LPIPS")):
            if table:
                out.update(table)
                out[f"{name}_{mode}/mean"] = float(np.mean(list(table.values())))
        for key, hits in oracle_hits.items():
            out[f"oracle_{mode}/{key}"] = torch.cat(hits).float().mean().item()
        if judge_hits:
            out[f"judge_{mode}/domain_acc"] = torch.cat(judge_hits).float().mean().item()
            out[f"judge_{mode}/diversity"] = float(np.mean(judge_spread))
        return out

    def _translate(self, translator: nn.Module, mode: str, task_index: int, src: int, trg: int
                   ) -> Iterator[tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]]:
        """Per batch of ``src``'s validation images: the sources, their ``num_outs`` translations to
        ``trg`` (float) and, for reference guidance, the references used (on the CPU)."""
        cfg = self.cfg
        # Latent codes and the reference order depend on the seed, mode and task only.
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + task_index * 2 + (mode == "reference"))
        refs = self.val.by_domain[trg][torch.randperm(len(self.val.by_domain[trg]), generator=gen).numpy()]
        ref_pos = 0
        sources = self._sources(src)
        for start in range(0, len(sources), cfg.batch_size):
            x = self._images(self.val, sources[start:start + cfg.batch_size]).to(self.device)
            n = len(x)
            y = torch.full((n,), trg, dtype=torch.long, device=self.device)
            masks = translator.masks(x)
            outs, ref_images = [], []
            for _ in range(cfg.num_outs):
                if mode == "latent":
                    z = torch.randn(n, translator.model_config.latent_dim, generator=gen)
                    style = translator.mapping_network(z.to(self.device), y)
                else:
                    picks = refs[(ref_pos + np.arange(n)) % len(refs)]
                    ref_pos += n
                    ref = self._images(self.val, picks).to(self.device)
                    ref_images.append(ref.cpu())
                    style = translator.style_encoder(ref, y)
                outs.append(translator.generator(x, style, masks).float())
            yield x, outs, ref_images


def _oracle_hits(oracle: Any, mode: str, x: torch.Tensor, outs: list[torch.Tensor], refs: list[torch.Tensor],
                 trg: int, hits: dict[str, list[torch.Tensor]]) -> None:
    """Add the oracle's per-output verdicts of one batch to ``hits``."""
    from ganforge.metrics.oracle import kept, read_striped

    src = oracle.read(x)
    colors = []
    for j, out in enumerate(outs):
        reading = oracle.read(out)
        hits.setdefault("domain_acc", []).append(reading.single("shape") == trg)
        hits.setdefault("pose_kept", []).append(kept(src, reading, "position") & kept(src, reading, "size"))
        colors.append(reading.single("color"))
        if mode == "reference":
            ref = oracle.read(refs[j])
            hits.setdefault("color_taken", []).append(reading.single("color") == ref.single("color"))
            hits.setdefault("texture_taken", []).append(read_striped(out) == read_striped(refs[j]))
    if mode == "latent":
        distinct = torch.stack(colors, 1).sort(1).values.diff(dim=1).ne(0).sum(1) + 1
        hits.setdefault("colors_per_source", []).append(distinct.float())


@dataclass
class Starganv2Result:
    """Per-task and mean values (official key names: ``FID_latent/cat2dog``), and how they were made."""

    values: dict[str, float]
    info: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        return self.values

    def to_json(self) -> dict[str, Any]:
        return {"metrics": {k: (v if math.isfinite(v) else None) for k, v in self.values.items()}, **self.info}

    def table(self, vocabulary: Any = None) -> str:
        """One row per task (and the mean), one column per metric and mode; with ``vocabulary`` (a
        MetricVocabulary) a row below the header says which way each is better."""
        columns = list(OrderedDict.fromkeys(k.split("/")[0] for k in self.values))
        rows = list(OrderedDict.fromkeys(k.split("/")[1] for k in self.values))
        lines = [("task", *columns)]
        if vocabulary is not None:
            lines.append(("better", *(vocabulary.better(c) or "-" for c in columns)))
        for row in rows:
            lines.append((row, *(_fmt(self.values.get(f"{c}/{row}")) for c in columns)))
        widths = [max(len(line[i]) for line in lines) for i in range(len(columns) + 1)]
        text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(text)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def evaluation_data(data_cfg: Any, seed: int = 0) -> tuple[Any, Any]:
    """The training and validation domain views of a run's data config, both without augmentation.

    A ``domains`` folder with ``train/`` and ``val/`` gives both; a single folder of domains serves as
    both (then FID compares with the very images translated: say so when reporting)."""
    import dataclasses

    from ganforge.data import build_dataset

    train = build_dataset(dataclasses.replace(data_cfg, split="train"), seed)
    val = build_dataset(dataclasses.replace(data_cfg, split="test"), seed)
    train.augment = False
    return train, val


def build_evaluation(data_cfg: Any, data_seed: int, cfg: Starganv2EvalConfig, device: str | torch.device,
                     inception_path: str | None = None, lpips_path: str | None = None,
                     allow_nonstandard: bool = False, progress: bool = False) -> Starganv2Evaluation:
    """The evaluation of a run's data: what `ganforge evaluate` and evaluation during training both run."""
    train, val = evaluation_data(data_cfg, data_seed)
    judge = None
    if "judge" in cfg.metrics:
        from ganforge.metrics.judge import load_judge

        judge = load_judge(data_cfg, show=progress)
    return Starganv2Evaluation(train, val, cfg, device, inception_path=inception_path, lpips_path=lpips_path,
                               allow_nonstandard=allow_nonstandard, progress=progress, judge=judge)


class TrainingEvaluation:
    """Evaluation during training (``eval.every``): ``eval.metrics`` of both guidances, ``eval.n``
    validation sources per domain, the official 10 outputs per source."""

    def __init__(self, run_cfg: Any, dataset: Any, device: str | torch.device):
        ev = run_cfg.eval
        cfg = Starganv2EvalConfig(metrics=tuple(parse_starganv2_metrics(",".join(ev.metrics))), sources=ev.n,
                                  batch_size=ev.batch_size, seed=ev.seed)
        self.evaluation = build_evaluation(run_cfg.data, run_cfg.runtime.seed, cfg, device, ev.inception_weights,
                                           allow_nonstandard=ev.allow_nonstandard_weights)

    def evaluate_generator(self, net: nn.Module) -> Starganv2Result:
        return self.evaluation.run(net)
