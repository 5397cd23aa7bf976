"""The family door: families and datasets register here, and nothing else dispatches on a name.

A family declares, in its own package, everything the rest of ganforge needs (:class:`FamilySpec`):
its kind, typed ``model``/``recipe`` configs, how to build the recipe and the generator, how a
trained model draws (the verb and its options), its evaluation, its official-checkpoint importer,
its speed accounting and its presets. The command line, the trainer, the metrics, ``load`` and
export ask this module; none of them names a family.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:
    from ganforge.config import RunConfig

# What a family's generator does, which decides the verb that draws with it:
# noise (sample from noise), class (class-conditional sampling), translation (image-to-image with
# target labels), reference (image-to-image guided by a reference image or a style code), story.
FamilyKind = Literal["noise", "class", "translation", "reference", "story"]
KINDS: tuple[str, ...] = ("noise", "class", "translation", "reference", "story")

# Packages whose import registers the built-in families and datasets. Imported by name when a
# lookup first needs them (plugin discovery), so this bottom-floor module imports no family.
BUILTIN_PACKAGES = ("ganforge.data", "ganforge.models")


# What `ganforge sample` draws for every model that samples from noise; a family adds its own modes
# (``Drawing.modes``).
SAMPLE_MODES: tuple[str, ...] = ("grid", "images", "interpolate")


class RegistryError(KeyError):
    """A name that nothing registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class Drawing:
    """How a trained model of the family draws: the verb, the family's own options, and the work.

    ``run(opened, args)`` receives the opened model source (``ganforge.run.store.OpenedRun``) and the
    parsed arguments; it writes its files and returns the exit code."""

    verb: str  # sample | translate | story (a new verb appears in the command line when declared)
    usage: str  # what follows `ganforge VERB SOURCE`, for hints: "--input IMAGES"
    run: Callable[[Any, argparse.Namespace], int]
    add_arguments: Callable[[Any], None] | None = None  # (argument group) -> None
    modes: tuple[str, ...] = ()  # `sample --mode` values this family offers
    help: str = ""  # the verb's one-line description, for a verb only this family declares
    takes_overrides: bool = False  # whether key=value overrides (of the run's config) mean anything to it


@dataclass(frozen=True)
class EvaluateCommand:
    """A family's own `ganforge evaluate` (its options and the work), replacing the generic one.

    ``run(source, args)`` receives an ``EvalSource`` and the parsed arguments and returns an
    ``EvalResult``-like object (``table()``, ``to_json()``)."""

    run: Callable[[Any, argparse.Namespace], Any]
    add_arguments: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Importer:
    """How `ganforge import FAMILY` reads an official checkpoint into a run folder."""

    run: Callable[[argparse.Namespace], Path]  # -> the written checkpoint
    add_arguments: Callable[[argparse.ArgumentParser], None]
    help: str  # what the official files are
    next_step: str = "ganforge sample {out}"  # printed after the import


@dataclass(frozen=True)
class FamilySpec:
    """Everything the rest of ganforge needs to know about one GAN family."""

    name: str
    model_config: type
    recipe_config: type
    build_recipe: Callable[..., Any]  # (RunConfig, RecipeContext) -> Recipe
    build_generator: Callable[[Any], Any]  # (model config) -> nn.Module
    check: Callable[["RunConfig"], None] = lambda cfg: None  # cross-section validation
    kind: FamilyKind = "noise"
    # (dataset) -> an object with ``images(net, indices, batch_size, device)`` (what to measure for
    # conditional-on-image families) and ``task_metrics(net, oracle, indices, batch_size, device)``
    # for its ``task_group``. None: images come from ``generator.make_inputs``.
    evaluation: Callable[[Any], Any] | None = None
    # A replacement for the generic `ganforge evaluate`, and for evaluation during training:
    # (RunConfig, dataset, device) -> an object with ``evaluate_generator(net) -> EvalResult``.
    evaluate_command: EvaluateCommand | None = None
    training_evaluator: Callable[..., Any] | None = None
    # The metric names its training evaluator produces (a ganforge.metric_names.MetricVocabulary), which
    # eval.metrics and eval.metric are checked against; None: the generic evaluator's.
    metrics: Any = None
    drawing: Drawing | None = None  # None: the generic `ganforge sample` of noise models
    importer: Importer | None = None
    # How many iterations of the official training loop one trainer step makes, so speeds compare
    # with the official code's s/iteration (StarGAN's loop updates D every iteration and G every
    # n_critic-th; our step holds all n_critic D updates).
    official_iterations: Callable[["RunConfig"], int] = lambda cfg: 1
    presets: Path | None = None  # folder of this family's shipped presets (NAME.yaml -> FAMILY/NAME)
    examples: dict[str, str] = field(default_factory=dict)  # verb -> example lines for its --help
    # Python helpers on ``ganforge.load(...)`` models of this family: name -> function(loaded model,
    # ...), e.g. ``translate`` or ``story``; ``gen.translate(...)`` calls it with the model first.
    helpers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    # The networks whose first input is an image they judge (train.diffaugment augments it).
    judges_images: tuple[str, ...] = ()

    def evaluation_for(self, dataset: Any) -> Any:
        """The family's evaluation hooks for ``dataset`` (None for families that sample from noise)."""
        return self.evaluation(dataset) if self.evaluation is not None else None


_FAMILIES: dict[str, FamilySpec] = {}
_DATASETS: dict[str, "DatasetSpec"] = {}


def register_family(spec: FamilySpec) -> FamilySpec:
    """Add a family; names are unique and the kind is one of :data:`KINDS`."""
    if spec.name in _FAMILIES:
        raise ValueError(f"family '{spec.name}' is registered twice")
    if spec.kind not in KINDS:
        raise ValueError(f"family '{spec.name}': kind '{spec.kind}' is not one of {', '.join(KINDS)}")
    _FAMILIES[spec.name] = spec
    return spec


def unregister_family(name: str) -> None:
    """Remove a family (for test suites that register their own)."""
    _FAMILIES.pop(name, None)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its typed config (a ``DataConfig`` subclass listing every key it reads)
    and its builder ``(config, seed) -> dataset``."""

    name: str
    config: type
    build: Callable[..., Any]

    @property
    def keys(self) -> list[str]:
        """Every ``data.`` key this dataset reads, sorted."""
        return sorted(f.name for f in dataclasses.fields(self.config))


def register_dataset(name: str, config: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``@register_dataset("image_folder", ImageFolderConfig)`` on a builder
    ``(ImageFolderConfig, seed) -> Dataset``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _DATASETS:
            raise ValueError(f"dataset '{name}' is registered twice")
        _DATASETS[name] = DatasetSpec(name, config, fn)
        return fn

    return wrap


def _lookup(table: dict[str, Any], name: str, what: str) -> Any:
    _ensure_builtins()
    if name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise RegistryError(f"unknown {what} '{name}'.{hint} Known: {', '.join(sorted(table))}")
    return table[name]


def get_family(name: str) -> FamilySpec:
    """The registered family called ``name`` (error lists the known ones)."""
    return _lookup(_FAMILIES, name, "family")


def get_dataset(name: str) -> DatasetSpec:
    """The registered dataset called ``name`` (error lists the known ones)."""
    return _lookup(_DATASETS, name, "dataset")


def families() -> list[FamilySpec]:
    """Every registered family, in registration order."""
    _ensure_builtins()
    return list(_FAMILIES.values())


def family_names() -> list[str]:
    _ensure_builtins()
    return sorted(_FAMILIES)


def dataset_names() -> list[str]:
    _ensure_builtins()
    return sorted(_DATASETS)


def drawing_command(family: str | None, source: str | Path) -> str:
    """The command that draws with a model of ``family`` from ``source``: the hint a verb gives when it
    refuses a model of another kind."""
    _ensure_builtins()
    spec = _FAMILIES.get(str(family))
    if spec is None or spec.drawing is None:
        return f"ganforge sample {source}"
    return f"ganforge {spec.drawing.verb} {source} {spec.drawing.usage}".rstrip()


def _ensure_builtins() -> None:
    # Importing the packages runs their register_* calls exactly once.
    for package in BUILTIN_PACKAGES:
        importlib.import_module(package)
