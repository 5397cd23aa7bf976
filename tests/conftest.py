"""Shared fixtures: an isolated cache per test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Index caches go to a fresh folder per test, never the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def _packaged_oracle():
    """The default shapes oracle: the weights the package ships (tests never train it)."""
    from ganforge.metrics import oracle as oracle_mod

    recipe = oracle_mod.OracleRecipe()
    assert oracle_mod.packaged_oracle_path(recipe).is_file(), "the default oracle recipe has no packaged weights"
    return oracle_mod.load_oracle(recipe, train_if_missing=False)


@pytest.fixture
def shapes_oracle(_packaged_oracle):
    """The packaged oracle, loaded once per test session."""
    return _packaged_oracle


@pytest.fixture
def empty_weight_dirs(tmp_path, monkeypatch):
    """No pretrained weights anywhere: an empty $GANFORGE_WEIGHTS_DIR and torch hub cache."""
    monkeypatch.setenv("GANFORGE_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "weights"


@pytest.fixture
def float64_default():
    """float64 as the default dtype for one test (step references made in float64)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
