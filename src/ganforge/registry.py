"""Registries for families and datasets, with one factory each.

A family registers its typed ``model`` and ``recipe`` config classes, a builder for its recipe
(networks, optimizers, phases) and a builder for its generator alone (used by ``ganforge.load`` and
export, which need no trainer). Datasets register a builder that takes a DataConfig.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ganforge.config import RunConfig


class RegistryError(KeyError):
    """A name that nothing registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class FamilySpec:
    """Everything the runtime needs to know about one GAN family."""

    name: str
    model_config: type
    recipe_config: type
    build_recipe: Callable[..., Any]  # (RunConfig, RecipeContext) -> Recipe
    build_generator: Callable[[Any], Any]  # (model config) -> nn.Module
    check: Callable[["RunConfig"], None] = lambda cfg: None  # cross-section validation
    # (dataset) -> an object with ``images(net, indices, batch_size, device)`` (what to measure for
    # conditional-on-image families) and ``task_metrics(net, oracle, indices, batch_size, device)``
    # for its ``task_group``. None: images come from ``generator.make_inputs``.
    evaluation: Callable[[Any], Any] | None = None
    # How many iterations of the official training loop one trainer step makes, so speeds compare
    # with the official code's s/iteration (StarGAN's loop updates D every iteration and G every
    # n_critic-th; our step holds all n_critic D updates).
    official_iterations: Callable[["RunConfig"], int] = lambda cfg: 1

    def evaluation_for(self, dataset: Any) -> Any:
        """The family's evaluation hooks for ``dataset`` (None for families that sample from noise)."""
        return self.evaluation(dataset) if self.evaluation is not None else None


_FAMILIES: dict[str, FamilySpec] = {}
_DATASETS: dict[str, Callable[..., Any]] = {}


def register_family(spec: FamilySpec) -> FamilySpec:
    """Add a family; names are unique."""
    if spec.name in _FAMILIES:
        raise ValueError(f"family '{spec.name}' is registered twice")
    _FAMILIES[spec.name] = spec
    return spec


def register_dataset(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``@register_dataset("image_folder")`` on a builder ``(DataConfig, seed) -> Dataset``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _DATASETS:
            raise ValueError(f"dataset '{name}' is registered twice")
        _DATASETS[name] = fn
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


def get_dataset_builder(name: str) -> Callable[..., Any]:
    """The registered dataset builder called ``name``."""
    return _lookup(_DATASETS, name, "dataset")


def family_names() -> list[str]:
    _ensure_builtins()
    return sorted(_FAMILIES)


def dataset_names() -> list[str]:
    _ensure_builtins()
    return sorted(_DATASETS)


def _ensure_builtins() -> None:
    # Importing the packages runs their register_* calls exactly once.
    import ganforge.data  # noqa: F401
    import ganforge.models  # noqa: F401
