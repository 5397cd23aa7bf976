"""Typed run configuration: defaults <- YAML preset <- ``key=value`` overrides.

Every section is a dataclass. Raw dictionaries are validated against the dataclass field types
before any work starts: an unknown key names its full path and the closest valid key, a wrong type
or an out-of-range value names the key, the value and what would be valid.

Range limits live in field metadata (``ge``, ``gt``, ``le``) so the rule sits next to the default.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type, or out of range."""


# On the CPU, convolutions with at most this many output positions run as one matrix product
# (ganforge.layers.conv reads this default). Measured: at 8 x 8 outputs (64) oneDNN and the matmul
# are about even, and below 16 the matmul wins clearly.
CONV_MATMUL_MAX_POSITIONS = 16


def _range(ge: float | None = None, gt: float | None = None, le: float | None = None) -> dict:
    return {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}


def positive(default: Any, **kw: Any) -> Any:
    """A field whose value must be > 0."""
    return field(default=default, metadata=_range(gt=0), **kw)


def non_negative(default: Any, **kw: Any) -> Any:
    """A field whose value must be >= 0."""
    return field(default=default, metadata=_range(ge=0), **kw)


def bounded(default: Any, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    """A field with explicit bounds."""
    return field(default=default, metadata=_range(ge=ge, gt=gt, le=le))


@dataclass
class DataConfig:
    """Where images come from: the keys every dataset reads.

    ``name`` picks a registered dataset (``ganforge info`` lists them): ``shapes`` (built-in,
    procedural), ``image_folder``, ``cifar``, ``hdf5``, ``celeba``, ``rafd``, ``celeba_rafd``,
    ``domains``, ``clevr_sv``, ``pororo_sv``. Each adds its own keys (its registered config class,
    ``ganforge.data.configs``); a key the chosen dataset does not use is an error. ``root`` is
    accepted as another name for ``path``.
    """

    name: str = "shapes"
    image_size: int = positive(64)
    num_workers: int | Literal["auto"] = "auto"

    @property
    def image_channels(self) -> int:
        """Channels of the images the dataset gives: its ``channels`` key, RGB where it has none."""
        return int(getattr(self, "channels", 3))


@dataclass
class EmaConfig:
    """Exponential moving average of the generator's weights."""

    enabled: bool = False
    decay: float = bounded(0.999, ge=0.0, le=1.0)
    start: int = non_negative(0)  # steps counted from 1; before step `start` the EMA copies the weights (BigGAN's ema_start)


@dataclass
class TrainConfig:
    """The loop: how long, how big, how often things are logged and saved."""

    steps: int = positive(10000)  # generator updates
    batch_size: int = positive(64)  # global batch, split over ranks and accumulation steps
    grad_accum: int = positive(1)
    lr_schedule: Literal["constant", "linear"] = "constant"
    lr_decay_start: int = non_negative(0)  # linear: decay from here to zero at `steps`
    ema: EmaConfig = field(default_factory=EmaConfig)
    log_every: int = positive(50)
    sample_every: int = positive(500)
    ckpt_every: int = positive(1000)
    # Also a checkpoint once this many minutes passed since the last one (0: off): bounds the work a crash
    # loses whatever a step costs. Rank 0's clock decides; every rank saves at the same step.
    ckpt_every_minutes: float = non_negative(0.0)
    keep_last: int = positive(3)  # checkpoints kept on disk
    # A NaN/Inf loss: `stop` (the last checkpoint stays) or `rollback`: reload the last checkpoint,
    # multiply every learning rate by nan_lr_factor and go on, at most nan_max_rollbacks times.
    on_nan: Literal["stop", "rollback"] = "stop"
    nan_lr_factor: float = bounded(0.5, gt=0.0, le=1.0)
    nan_max_rollbacks: int = positive(3)
    sample_count: int = positive(64)  # images in the periodic grid
    # DiffAugment (ganforge.layers.diffaugment) on every image the family's image discriminators see,
    # real and fake, in D and G steps: any of color,translation,cutout; "" (default) off, as the papers.
    diffaugment: str = ""
    progress: bool = True
    tensorboard: bool = True


@dataclass
class EvalConfig:
    """Evaluation during training and keeping the best checkpoints (BigGAN's test()).

    Every ``every`` steps (0: never) rank 0 samples ``n`` images from the EMA generator (the raw one
    without EMA), computes ``metrics`` and logs them; with ``keep_best`` > 0 the best ``keep_best``
    checkpoints by ``metric`` are kept in ``checkpoints/best/``.
    """

    every: int = non_negative(0)
    metrics: list[str] = field(default_factory=lambda: ["oracle"])  # fid, is, kid, pr, dc, oracle
    # What ranks checkpoints (fid, is, kid, precision, ..., oracle_fid, ...); None: the first value of
    # the first group in ``metrics`` that can rank (oracle_fid for the default).
    metric: str | None = None
    n: int = positive(1000)
    keep_best: int = non_negative(0)
    batch_size: int = positive(100)
    seed: int = non_negative(0)
    inception_weights: str | None = None  # explicit file; else $GANFORGE_WEIGHTS_DIR, then the torch hub cache
    allow_nonstandard_weights: bool = False


@dataclass
class RuntimeConfig:
    """Where and how the math runs."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps | xpu | npu | ...
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = non_negative(0)
    deterministic: bool = False
    threads: int | None = None  # intra-op CPU threads; None: the cores free at the start (runtime.cpu)
    # Linux/glibc: every host allocation from the heap, freed memory kept for the next step instead of
    # unmapped and faulted in again (ganforge.runtime.allocator; StarGAN on 2 CPU cores: -6% per step).
    retain_freed_memory: bool = True
    # channels_last memory format: true = every network and the input batches; a list of network names
    # (e.g. [D]) = only those networks (a convolution with a channels_last weight computes channels_last).
    channels_last: bool | list[str] = False
    # On the CPU, convolutions whose output has at most this many positions (H x W) per image run as one
    # matrix product over im2col columns (ganforge.layers.conv): oneDNN runs these far below the peak
    # (StarGAN's last D layer, the 4 x 4 critics). 0 = always PyTorch's convolution. No effect elsewhere.
    conv_matmul_positions: int = non_negative(CONV_MATMUL_MAX_POSITIONS)
    # Gradient penalties and R1: fp32 (the official codes, default), or autocast = in the run's bf16
    # (faster on CPUs with bf16 units; the penalty's norm and loss stay fp32). Not with fp16, whose
    # inner gradient would need its own loss scaling.
    penalty_precision: Literal["fp32", "autocast"] = "fp32"
    # How optimizers compute their update: auto = fused kernels where the device has them (CPU, CUDA).
    optimizer_impl: Literal["auto", "fused", "foreach", "for_loop"] = "auto"
    # torch.compile each network's forward in place: false, true (the default mode) or a torch.compile
    # mode. Networks that a gradient penalty or R1 differentiates twice stay eager: AOTAutograd has no
    # double backward.
    compile: bool | Literal["default", "reduce-overhead", "max-autotune"] = False
    dist_timeout_s: int = positive(600)  # a lost rank stops the others after this


@dataclass
class RunConfig:
    """One training run. ``model`` and ``recipe`` are typed by the family's registration."""

    family: str
    name: str | None = None
    out_dir: str = "runs"
    model: Any = None
    recipe: Any = None
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# ----------------------------------------------------------------------------------------------
# validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def convert(value: Any, tp: Any, path: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError naming ``path``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of {tp.__name__} keys, got {value!r}")
        return from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return convert(value, arg, path)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{path}: {value!r} is not a valid {_type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(repr(c) for c in choices)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{path}: expected null, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}: {value!r}")
            return tuple(convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [convert(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    raise ConfigError(f"{path}: unsupported field type {tp!r}")


def _check_range(value: Any, meta: typing.Mapping[str, Any], path: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if "ge" in meta and value < meta["ge"]:
        raise ConfigError(f"{path}: {value!r} is out of range; it must be >= {meta['ge']}")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(f"{path}: {value!r} is out of range; it must be > {meta['gt']}")
    if "le" in meta and value > meta["le"]:
        raise ConfigError(f"{path}: {value!r} is out of range; it must be <= {meta['le']}")


def unknown_key_error(key: str, valid: typing.Iterable[str], path: str) -> ConfigError:
    """The error for a key that is not in ``valid``, with the closest valid spelling."""
    valid = sorted(valid)
    full = f"{path}.{key}" if path else key
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{(path + '.') if path else ''}{close[0]}'?" if close else ""
    return ConfigError(f"unknown key '{full}'{hint} Valid keys here: {', '.join(valid)}")


def from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from a raw mapping, validating every key, type and range."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise unknown_key_error(str(key), fields, path)
    kwargs = {}
    for name, value in data.items():
        sub = f"{path}.{name}" if path else name
        converted = convert(value, hints[name], sub)
        _check_range(converted, fields[name].metadata, sub)
        kwargs[name] = converted
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{path or 'config'}: missing required key(s): {', '.join(missing)}")
    obj = cls(**kwargs)
    # Defaults are checked too, so a preset cannot hide a bad default behind a valid type.
    for name, f in fields.items():
        _check_range(getattr(obj, name), f.metadata, f"{path}.{name}" if path else name)
    return obj


def to_dict(obj: Any) -> Any:
    """A plain-data (YAML/JSON friendly) copy of a config dataclass."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def flat_items(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested plain-data config as ``{"dotted.key": value}`` (lists stay values)."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out |= flat_items(value, f"{prefix}{key}.")
        return out
    return {prefix[:-1]: tree}


def differing_keys(saved: Any, given: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """``key: saved -> given`` for every dotted key whose value differs between two plain-data configs."""
    a, b = flat_items(to_dict(saved)), flat_items(to_dict(given))
    return [f"{k}: {a.get(k, '(absent)')} -> {b.get(k, '(absent)')}" for k in sorted(set(a) | set(b))
            if k not in ignore and a.get(k) != b.get(k)]


# ----------------------------------------------------------------------------------------------
# presets and overrides


class _Loader(yaml.SafeLoader):
    """YAML 1.1 with YAML 1.2's floats: ``1e-6`` is a number (PyYAML alone reads it as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                 |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                 |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                 |[-+]?\.(?:inf|Inf|INF)
                 |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """Parse YAML text as presets and overrides are parsed (safe; ``1e-6`` is a float)."""
    return yaml.load(text, Loader=_Loader)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (["a","b","c"], parsed value); values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. train.steps=100)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: cannot parse value {raw!r}: {err}") from None
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Set dotted keys in a raw config mapping (validation happens later, in one place)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for i, k in enumerate(keys[:-1]):
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: '{'.'.join(keys[: i + 1])}' is a value, not a section")
            node = child
        node[keys[-1]] = value
    return raw


def model_classes(configured: int, data_classes: int) -> int:
    """The model's number of classes: ``model.num_classes``, or the data's when 0 (the checkpoint's config
    keeps the number); unlabelled data: one class. A mismatch is an error naming both."""
    if configured == 0:
        return max(data_classes, 1)
    if not data_classes and configured > 1:
        raise ConfigError(f"model.num_classes={configured} but the data has no class labels: use data.classes=true "
                          f"(image_folder: a sub-folder per class; cifar, fashion_mnist), data.view=class (shapes), "
                          f"or model.num_classes=1 for an unconditional model")
    if data_classes and data_classes != configured:
        raise ConfigError(f"model.num_classes={configured} but the data has {data_classes} classes; set "
                          f"model.num_classes={data_classes} (or 0 to take it from the data)")
    return configured
