"""The names of metrics: the groups a request names, the values each group produces and which way
is better. Pure data on the bottom floor, shared by config validation and the metrics themselves; a
family with its own evaluation declares its own :class:`MetricVocabulary` in its registration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


class EvalError(ValueError):
    """An evaluation request that cannot be served (unknown metric, too few images, wrong data)."""


@dataclass(frozen=True)
class MetricVocabulary:
    """``produces``: group -> {value name: True when higher is better, False when lower is, None when
    the value cannot rank checkpoints (a standard deviation)}."""

    produces: dict[str, dict[str, bool | None]]

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.produces)

    def parse(self, text: str | Sequence[str]) -> list[str]:
        """``"fid,is,oracle"`` (or a list) -> validated groups, in the vocabulary's order."""
        items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
        unknown = [t for t in items if t not in self.produces]
        if unknown or not items:
            raise EvalError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from "
                            f"{', '.join(self.groups)} (comma-separated)")
        return [g for g in self.groups if g in items]

    def direction(self, name: str) -> bool:
        """True when a higher ``name`` is better; EvalError for a value no group ranks by."""
        for values in self.produces.values():
            if values.get(name) is not None:
                return bool(values[name])
        valid = sorted(k for v in self.produces.values() for k, d in v.items() if d is not None)
        raise EvalError(f"'{name}' is not a metric that can rank checkpoints; choose from {', '.join(valid)}")

    def group_of(self, name: str) -> str:
        return next(g for g, values in self.produces.items() if name in values)

    def better(self, name: str) -> str:
        """``higher`` or ``lower`` (which way ``name`` is better), or ``""`` when it does not rank. A
        per-part value such as ``target_acc/Red`` or ``object_acc/frame2`` goes the way of its stem."""
        stem = name.split("/", 1)[0]
        for values in self.produces.values():
            for key in (name, stem):
                if values.get(key) is not None:
                    return "higher" if values[key] else "lower"
        return ""

    def default_metric(self, groups: Sequence[str]) -> str:
        """The value that ranks checkpoints when none is named: the first rankable one of ``groups``."""
        return next(k for g in groups for k, d in self.produces[g].items() if d is not None)


# What the generic evaluator produces.
GENERIC = MetricVocabulary({
    "fid": {"fid": False},
    "is": {"is": True, "is_std": None},
    "kid": {"kid": False, "kid_std": None},
    "pr": {"precision": True, "recall": True},
    "dc": {"density": True, "coverage": True},
    "oracle": {"oracle_fid": False, "oracle_kid": False, "oracle_kid_std": None, "oracle_precision": True,
               "oracle_recall": True, "oracle_density": True, "oracle_coverage": True, "oracle_confident": True,
               "oracle_count_tv": False, "oracle_object_tv": False},
    # class-conditional generators on the shapes class view: the oracle reads the requested class
    "class": {"class_acc": True},
    # real image sets with a judge (fashion_mnist, emoji): its feature space, and the requested class
    # read back by it for class-conditional generators
    "judge": {"judge_fid": False, "judge_kid": False, "judge_kid_std": None, "judge_precision": True,
              "judge_recall": True, "judge_density": True, "judge_coverage": True, "judge_class_acc": True},
    # image-to-image families on the shapes attributes view (per-attribute target_acc/<name> come too)
    "translation": {"target_acc": True, "preserve_attrs": True, "preserve_shape": True, "preserve_position": True},
    # story families: SSIM against the ground truth; on the shapes story view the oracle's per-frame
    # object and count accuracy and whether earlier objects stay in place (object_acc/frame<t> too)
    "story": {"ssim": True, "object_acc": True, "count_acc": True, "in_place": True, "char_acc": True,
              "char_f1": True},
})
METRIC_GROUPS = GENERIC.groups
PRODUCES = GENERIC.produces
INCEPTION_GROUPS = {"fid", "is", "kid", "pr", "dc"}


def parse_metrics(text: str | Sequence[str]) -> list[str]:
    """``"fid,is,oracle"`` (or a list) -> validated generic metric groups, in a stable order."""
    return GENERIC.parse(text)


def metric_direction(name: str) -> bool:
    """True when a higher generic ``name`` is better; raises EvalError for a value no group produces."""
    return GENERIC.direction(name)


def group_of(name: str) -> str:
    return GENERIC.group_of(name)
