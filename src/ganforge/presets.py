"""Presets and the resolved run config: defaults <- YAML preset <- ``key=value`` overrides.

A preset is a YAML file, or a shipped name ``FAMILY/NAME`` that the family's registration points
at (its ``presets`` folder). :func:`resolve` types the ``model`` and ``recipe`` sections with the
family's own config classes and runs every cross-section check before any work starts.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Sequence

import yaml

from ganforge.config import (ConfigError, DataConfig, RunConfig, RuntimeConfig, apply_overrides, convert, from_dict,
                             load_yaml, parse_override)
from ganforge.data import data_config
from ganforge.metric_names import GENERIC, EvalError, MetricVocabulary
from ganforge.registry import families, get_dataset, get_family


def shipped_presets() -> dict[str, Path]:
    """``FAMILY/NAME`` -> file, for every preset a registered family ships."""
    found = {}
    for spec in families():
        if spec.presets is not None:
            found.update({f"{spec.name}/{p.stem}": p for p in sorted(Path(spec.presets).glob("*.yaml"))})
    return found


def list_presets() -> list[str]:
    """Names like ``wgan_gp/shapes`` for every preset shipped with a registered family."""
    return sorted(shipped_presets())


def read_preset(spec: str | Path) -> dict[str, Any]:
    """Read a preset by file path or by shipped name (``family/dataset``)."""
    path = Path(spec)
    if not path.is_file():
        # `configs/<family>/<name>.yaml` (how the docs write a preset's file) names the shipped one.
        parts = Path(spec).parts
        name = f"{parts[-2]}/{Path(parts[-1]).stem}" if len(parts) >= 3 and parts[-3] == "configs" else str(spec)
        shipped = shipped_presets()
        if name in shipped:
            path = shipped[name]
        else:
            close = difflib.get_close_matches(str(spec), list(shipped), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"preset '{spec}' is neither a file nor a shipped preset.{hint} "
                              f"Shipped presets: {', '.join(sorted(shipped))}")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def resolve(raw: dict[str, Any]) -> RunConfig:
    """Validate a raw mapping into a RunConfig with the family's and the dataset's typed sections."""
    raw = dict(raw)
    if "family" not in raw:
        raise ConfigError("config: missing required key 'family' (e.g. family: wgan_gp)")
    spec = get_family(raw["family"])
    model = raw.pop("model", None) or {}
    recipe = raw.pop("recipe", None) or {}
    data = raw.pop("data", None) or {}
    cfg = from_dict(RunConfig, raw)
    cfg.model = convert(model, spec.model_config, "model")
    cfg.recipe = convert(recipe, spec.recipe_config, "recipe")
    cfg.data = resolve_data(data)
    spec.check(cfg)
    _check_runtime(cfg.runtime)
    _check_eval(cfg, spec.metrics or GENERIC)
    return cfg


def resolve_data(data: dict[str, Any]) -> DataConfig:
    """The ``data`` section typed by the chosen dataset's registered config; a key that dataset does
    not read is an error naming the dataset and its keys. ``root`` is another name for ``path``."""
    if not isinstance(data, dict):
        raise ConfigError(f"data: expected a mapping of data keys, got {data!r}")
    data = dict(data)
    if "root" in data:  # `data.root` (StoryGAN-style docs) is `data.path`
        root = data.pop("root")
        if data.get("path") not in (None, root):
            raise ConfigError(f"data.root={root!r} and data.path={data['path']!r} differ; they name the same "
                              f"folder, set one")
        data["path"] = root
    return data_config(str(data.pop("name", DataConfig.name)), **data)


def with_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``raw`` with ``key=value`` overrides applied. When an override switches the dataset
    (``data.name``), the keys that came with the old dataset and that the new one does not read are
    dropped; keys set by the overrides themselves are kept (and checked)."""
    before = _dataset_name(raw)
    raw = apply_overrides(raw, overrides)
    data = raw.get("data")
    if not isinstance(data, dict) or _dataset_name(raw) == before:
        return raw
    keeps = set(get_dataset(_dataset_name(raw)).keys)
    explicit = set()
    for text in overrides:
        keys, _ = parse_override(text)
        if len(keys) > 1 and keys[0] == "data":
            explicit.add(keys[1])
    raw["data"] = {k: v for k, v in data.items() if k in keeps or k in explicit or k == "root"}
    return raw


def _dataset_name(raw: dict[str, Any]) -> str:
    data = raw.get("data")
    return str(data.get("name", DataConfig.name)) if isinstance(data, dict) else DataConfig.name


def resolve_with_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> RunConfig:
    """A saved or preset config with ``key=value`` overrides, validated (see :func:`with_overrides`)."""
    return resolve(with_overrides(raw, overrides))


def _check_runtime(rt: RuntimeConfig) -> None:
    """Settings that are valid alone but not together."""
    if rt.penalty_precision == "autocast" and rt.precision == "fp16":
        raise ConfigError("runtime.penalty_precision=autocast works with runtime.precision=bf16 only: an fp16 "
                          "penalty's inner gradient would need its own loss scaling; use penalty_precision=fp32")


def _check_eval(cfg: RunConfig, vocabulary: MetricVocabulary) -> None:
    """``eval.metrics`` and ``eval.metric`` must be names the family's evaluation produces, and the
    ranking metric must come from a requested group; checked before any work starts. An unset
    ``eval.metric`` becomes the first rankable value of the first requested group."""
    try:
        groups = vocabulary.parse(cfg.eval.metrics)
        if cfg.eval.metric is None:
            cfg.eval.metric = vocabulary.default_metric(groups)
        vocabulary.direction(cfg.eval.metric)
    except EvalError as err:
        raise ConfigError(f"eval: {err}") from None
    group = vocabulary.group_of(cfg.eval.metric)
    if cfg.eval.keep_best and group not in groups:
        raise ConfigError(f"eval.metric: '{cfg.eval.metric}' comes from the '{group}' metrics, which eval.metrics="
                          f"{groups} does not compute; add it to eval.metrics")


def load_config(preset: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """defaults <- preset <- overrides, validated."""
    raw = read_preset(preset) if preset is not None else {}
    return resolve_with_overrides(raw, overrides)
