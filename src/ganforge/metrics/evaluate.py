"""Evaluate a generator against real data: FID, IS, KID, precision/recall, density/coverage, oracle.

An :class:`Evaluator` is built once (feature extractors, real-image features, real-vs-real
reference values) and then called on generators, so training can evaluate every few thousand steps
without recomputing the real side. Every number comes with its real-vs-real counterpart: the same
metric between two disjoint real sets of the same size, which is the floor a perfect generator
would reach at this sample size.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

from ganforge.metrics import distances
from ganforge.metric_names import GENERIC, INCEPTION_GROUPS, PRODUCES, EvalError, MetricVocabulary, parse_metrics
from ganforge.metrics.oracle import rgb_uint8
from ganforge.runtime.progress import progress


@dataclass
class EvalResult:
    metrics: dict[str, float]
    real_vs_real: dict[str, float]
    n: int
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # lines printed under the table (what a reference means)

    def to_json(self) -> dict[str, Any]:
        def clean(d: dict[str, float]) -> dict[str, float | None]:
            return {k: (None if not math.isfinite(v) else v) for k, v in d.items()}
        return {"n": self.n, "metrics": clean(self.metrics), "real_vs_real": clean(self.real_vs_real), **self.info}

    def table(self, vocabulary: MetricVocabulary = GENERIC, reference: str = "real vs real") -> str:
        """The metrics as a text table: each value, the reference value where measured (``reference``
        names it), and which way is better (from ``vocabulary``)."""
        rows = [("metric", "model", reference, "better")]
        for k, v in self.metrics.items():
            ref = self.real_vs_real.get(k)
            rows.append((k, _fmt(v), _fmt(ref) if ref is not None else "-", vocabulary.better(k) or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "nan"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


class _Features:
    """Runs the feature extractors a request needs on batches of images."""

    def __init__(self, groups: list[str], device: torch.device, inception: nn.Module | None, oracle: Any,
                 progress: bool = False, judge: Any = None):
        self.groups, self.device, self.inception, self.oracle = groups, device, inception, oracle
        self.progress, self.judge = progress, judge

    @torch.no_grad()
    def __call__(self, batches: Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]], desc: str = "",
                 total: int | None = None) -> dict[str, torch.Tensor]:
        out: dict[str, list[torch.Tensor]] = {}
        for item in progress(batches, desc=desc, total=total, unit="batch", enabled=self.progress):
            images, labels = item if isinstance(item, tuple) else (item, None)
            u8 = rgb_uint8(images)
            if self.inception is not None:
                pool, logits = self.inception(u8.to(self.device))
                out.setdefault("inception", []).append(pool.double().cpu())
                out.setdefault("logits", []).append(logits.double().cpu())
            if self.oracle is not None:
                r = self.oracle.read(u8)
                out.setdefault("oracle", []).append(r.features.double())
                out.setdefault("oracle_count", []).append(r.count)
                out.setdefault("oracle_object", []).append(r.object)
                out.setdefault("oracle_confident", []).append(r.confident)
                if labels is not None:
                    out.setdefault("class_hit", []).append(r.single("object") == labels.cpu())
            if self.judge is not None:
                features, classes = self.judge.read(u8)
                out.setdefault("judge", []).append(features.double())
                if labels is not None:
                    out.setdefault("judge_class_hit", []).append(classes == labels.cpu())
        return {k: torch.cat(v) for k, v in out.items()}


def _histogram_tv(a: torch.Tensor, b: torch.Tensor) -> float:
    """Total-variation distance between two histograms (counts or frequency vectors)."""
    pa, pb = a.double() / a.double().sum().clamp_min(1e-12), b.double() / b.double().sum().clamp_min(1e-12)
    return 0.5 * (pa - pb).abs().sum().item()


def compare(fake: dict[str, torch.Tensor], real: dict[str, torch.Tensor], groups: list[str],
            kid_subsets: int = 100) -> dict[str, float]:
    """All requested metrics of ``fake`` features against ``real`` features."""
    out: dict[str, float] = {}
    inception_groups = {g for g in groups if g in INCEPTION_GROUPS and g != "is"}
    if inception_groups:
        out.update(distances.feature_metrics(fake["inception"], real["inception"], inception_groups,
                                             kid_subsets=kid_subsets))
    if "is" in groups:
        out["is"], out["is_std"] = distances.inception_score(fake["logits"])
    if "judge" in groups:
        out.update(distances.feature_metrics(fake["judge"], real["judge"], {"fid", "kid", "pr", "dc"},
                                             prefix="judge_", kid_subsets=kid_subsets))
        if "judge_class_hit" in fake:
            out["judge_class_acc"] = fake["judge_class_hit"].float().mean().item()
    if "oracle" in groups:
        out.update(distances.feature_metrics(fake["oracle"], real["oracle"], {"fid", "kid", "pr", "dc"},
                                             prefix="oracle_", kid_subsets=kid_subsets))
        out["oracle_confident"] = fake["oracle_confident"].float().mean().item()
        bins = int(max(fake["oracle_count"].max(), real["oracle_count"].max())) + 1
        out["oracle_count_tv"] = _histogram_tv(fake["oracle_count"].bincount(minlength=bins),
                                               real["oracle_count"].bincount(minlength=bins))
        out["oracle_object_tv"] = _histogram_tv(fake["oracle_object"].sum(0), real["oracle_object"].sum(0))
    if "class" in groups:
        out["class_acc"] = fake["class_hit"].float().mean().item()
    ordered = [k for g in groups for k in PRODUCES[g] if k in out]
    return {k: out[k] for k in ordered}


def sample_batches(net: nn.Module, n: int, seed: int, batch_size: int, device: torch.device,
                   with_labels: bool = False) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """``n`` images from a generator with ``make_inputs(n, generator)``, batch ``i`` seeded by (seed, i).

    ``with_labels``: yield (images, requested classes), the integer second input of a
    class-conditional generator."""
    was_training = net.training
    net.eval()
    try:
        for i, start in enumerate(range(0, n, batch_size)):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
            inputs = net.make_inputs(min(batch_size, n - start), gen)
            with torch.no_grad():
                images = net(*(t.to(device) for t in inputs)).float().cpu()
            yield (images, inputs[1]) if with_labels else images
    finally:
        net.train(was_training)


def real_batches(dataset: Any, indices: np.ndarray, batch_size: int, with_labels: bool = False
                 ) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """Real images (no augmentation: ``get`` without an rng) in batches, with their labels if asked."""
    for start in range(0, len(indices), batch_size):
        items = [dataset.get(int(i)) for i in indices[start:start + batch_size]]
        images = torch.stack([item["image"] for item in items])
        yield (images, torch.stack([item["label"] for item in items])) if with_labels else images


class Evaluator:
    """Extractors and real-side features, built once; call it with a generator network.

    ``inception_path``: an explicit weights file (else the registry lookup); ``allow_nonstandard``
    accepts weights whose hash is not the standard file's.
    """

    def __init__(self, dataset: Any, metrics: str | list[str], n: int, seed: int = 0, batch_size: int = 100,
                 device: str | torch.device = "cpu", inception_path: str | Path | None = None,
                 allow_nonstandard: bool = False, inception: nn.Module | None = None, oracle: Any = None,
                 progress: bool = False, family_eval: Any = None, data_config: Any = None, judge: Any = None):
        from ganforge.data.shapes import ShapesDataset

        self.groups = parse_metrics(metrics)
        self.n, self.seed, self.batch_size = n, seed, batch_size
        self.device = torch.device(device)
        stories = hasattr(dataset, "video_len")
        check_sizes(self.groups, dataset, family_eval, n, stories)
        self.info: dict[str, Any] = {"metrics_requested": self.groups, "seed": seed}
        # Built before any image is touched: a missing weights file must fail in the first second.
        with torch.random.fork_rng(devices=[]):  # building modules must not move the caller's RNG streams
            if inception is None and INCEPTION_GROUPS & set(self.groups):
                from ganforge.metrics.inception import build_inception
                from ganforge.metrics.weights import load_weights

                state, provenance = load_weights("inception-fid", inception_path, allow_nonstandard)
                inception = build_inception(state)
                self.info["inception"] = provenance
            if "translation" in self.groups and getattr(family_eval, "task_group", None) != "translation":
                raise EvalError("translation metrics need an image-to-image family (kind translation); this generator "
                                "samples from noise. Use oracle or fid,is,kid,pr,dc instead.")
            if "class" in self.groups and (family_eval is not None or not getattr(dataset, "num_classes", 0)):
                raise EvalError("class accuracy needs a class-conditional generator and labelled shapes data "
                                "(data.view=class); use oracle or fid,is,kid,pr,dc instead.")
            if stories:
                from ganforge.data.story import ShapesStoryDataset

                if isinstance(dataset, ShapesStoryDataset) and oracle is None:
                    from ganforge.metrics.oracle import load_oracle

                    oracle = load_oracle(progress=progress)
                if oracle is not None:
                    self.info["oracle"] = {"recipe": oracle.recipe.digest(), "held_out_accuracy": oracle.accuracy}
            elif {"oracle", "translation", "class"} & set(self.groups):
                if not isinstance(dataset, ShapesDataset):
                    raise EvalError("oracle metrics read the built-in shapes data only; this run's data is "
                                    f"'{type(dataset).__name__}'. Use fid,is,kid,pr,dc instead.")
                if oracle is None:
                    from ganforge.metrics.oracle import load_oracle

                    oracle = load_oracle(progress=progress)
                self.info["oracle"] = {"recipe": oracle.recipe.digest(), "held_out_accuracy": oracle.accuracy}
        self.family_eval, self.oracle = family_eval, oracle
        judge = self._judge(data_config, progress, judge) if "judge" in self.groups else None
        self.features = _Features(self.groups, self.device,
                                  inception.to(self.device) if inception is not None else None,
                                  oracle if {"oracle", "class"} & set(self.groups) else None, progress, judge)
        order = np.random.default_rng(seed).permutation(len(dataset))
        self.dataset, self.real_a_idx, self.real_b_idx = dataset, order[:n], order[n:2 * n]
        self.story_idx = np.sort(order[:n]) if stories else None
        self._real: dict[str, torch.Tensor] | None = None
        self.real_vs_real: dict[str, float] = {}

    def _judge(self, data_config: Any, progress: bool, judge: Any = None) -> Any:
        """``judge``, else the judge of the run's data (the package's, or trained once and cached);
        EvalError where none exists."""
        from ganforge.metrics.judge import load_judge

        if data_config is None:
            raise EvalError("judge metrics need the run's data config (ganforge evaluate passes it)")
        judge = judge or load_judge(data_config, show=progress)
        self.info["judge"] = {"data": data_config.name, "classes": judge.class_names,
                              "held_out_accuracy": judge.accuracy}
        return judge

    def _labelled(self, net: nn.Module | None = None) -> bool:
        """Whether samples carry labels: the class group always; the judge for labelled data and, on the
        generated side, a class-conditional generator (an integer second input)."""
        if "class" in self.groups:
            return True
        if "judge" not in self.groups or not getattr(self.dataset, "num_classes", 0):
            return False
        if net is None:
            return True
        inputs = net.make_inputs(1, torch.Generator().manual_seed(0))
        return len(inputs) > 1 and not inputs[1].is_floating_point()

    @property
    def _distribution_groups(self) -> list[str]:
        return [g for g in self.groups if g not in ("translation", "story")]

    def _real_side(self) -> dict[str, torch.Tensor]:
        if self._real is None and not self._distribution_groups:
            self._real = {}
        if self._real is None:
            labels = self._labelled()
            batches = -(-self.n // self.batch_size)
            self._real = self.features(real_batches(self.dataset, self.real_a_idx, self.batch_size, labels),
                                       f"features of {self.n} real images", batches)
            other = self.features(real_batches(self.dataset, self.real_b_idx, self.batch_size, labels),
                                  f"{self.n} more, for real vs real", batches)
            self.real_vs_real = compare(other, self._real, self.groups)
        return self._real

    def evaluate(self, images: Callable[[], Iterator[torch.Tensor]]) -> EvalResult:
        """Metrics of the images that ``images()`` yields (n of them) against the real set."""
        t0 = time.perf_counter()
        real = self._real_side()
        metrics: dict[str, float] = {}
        if self._distribution_groups:
            fake = self.features(images(), f"features of {self.n} generated images", -(-self.n // self.batch_size))
            got = len(next(iter(fake.values())))
            if got != self.n:
                raise EvalError(f"the generator gave {got} images; expected n={self.n}")
            metrics = compare(fake, real, self._distribution_groups)
        result = EvalResult(metrics, dict(self.real_vs_real), self.n, dict(self.info))
        result.info["seconds"] = round(time.perf_counter() - t0, 2)
        return result

    def evaluate_generator(self, net: nn.Module) -> EvalResult:
        """Sample ``n`` images from ``net`` (fixed seeds, so the same weights give the same numbers).

        Image-to-image families translate the held-out real images (the second real set) instead."""
        was_training = net.training
        net.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                if self.story_idx is not None:
                    return self._evaluate_stories(net)
                if self.family_eval is not None:
                    result = self.evaluate(lambda: self.family_eval.images(net, self.real_b_idx, self.batch_size,
                                                                           self.device))
                else:
                    labelled = self._labelled(net)
                    result = self.evaluate(lambda: sample_batches(net, self.n, self.seed, self.batch_size, self.device,
                                                                  with_labels=labelled))
                if "translation" in self.groups:
                    t0 = time.perf_counter()
                    result.metrics.update(self.family_eval.task_metrics(net, self.oracle, self.real_b_idx,
                                                                        self.batch_size, self.device))
                    result.info["seconds"] = round(result.info["seconds"] + time.perf_counter() - t0, 2)
        finally:
            net.train(was_training)
        return result


    def _evaluate_stories(self, net: nn.Module) -> EvalResult:
        """Story metrics of ``n`` stories drawn from the real stories' descriptions."""
        t0 = time.perf_counter()
        if not self.real_vs_real:
            self.real_vs_real = self.family_eval.reference(self.oracle, self.story_idx)
        metrics = self.family_eval.task_metrics(net, self.oracle, self.story_idx, self.batch_size, self.device)
        result = EvalResult(metrics, dict(self.real_vs_real), self.n, dict(self.info),
                            notes=list(getattr(self.family_eval, "reference_notes", [])))
        result.info["seconds"] = round(time.perf_counter() - t0, 2)
        return result


def check_sizes(groups: list[str], dataset: Any, family_eval: Any, n: int, stories: bool) -> None:
    """Enough images (or stories) for ``n``, and ``n`` large enough to compare distributions."""
    if stories or "story" in groups:
        _check_story_request(groups, dataset, family_eval, n)
    elif n < 10:
        raise EvalError(f"n={n} is too few images to compare distributions; use at least 10 (1,000+ for numbers "
                        f"worth reporting; FID papers use 10,000 or 50,000)")
    if not stories and len(dataset) < 2 * n:
        raise EvalError(f"the real data has {len(dataset)} images; n={n} needs {2 * n} (n to compare against, n "
                        f"more for the real-vs-real reference). Lower n to at most {len(dataset) // 2}.")


def _check_story_request(groups: list[str], dataset: Any, family_eval: Any, n: int) -> None:
    """Stories are measured by the ``story`` group alone, on a story family, with ``n`` <= the stories."""
    if getattr(family_eval, "task_group", None) != "story":
        raise EvalError("story metrics need a story family (kind story) and story data; this generator draws single "
                        "images. Use oracle or fid,is,kid,pr,dc instead.")
    if not hasattr(dataset, "video_len"):
        raise EvalError("story metrics compare generated stories with real ones; this data holds single images")
    if groups != ["story"]:
        others = ", ".join(g for g in groups if g != "story")
        raise EvalError(f"stories are measured with --metrics story (SSIM; oracle object accuracy on shapes); "
                        f"{others} compare image distributions and are not offered for stories")
    if not 1 <= n <= len(dataset):
        raise EvalError(f"n={n} stories requested; the data has {len(dataset)} (use n between 1 and {len(dataset)})")


def write_result(result: EvalResult, path: Path, extra: dict[str, Any]) -> Path:
    """Write the result as JSON (atomically) and return the path."""
    from ganforge.run.files import atomic_write_bytes

    payload = {**extra, **result.to_json()}
    atomic_write_bytes(path, json.dumps(payload, indent=2).encode("utf-8"))
    return path
