"""Shared fixtures: an isolated cache per test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Index caches go to a fresh folder per test, never the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def _oracle_cache(tmp_path_factory):
    """The default shapes oracle, trained once per test session (about 2.5 min on 2 cores)."""
    import os

    from ganforge.metrics.oracle import load_oracle

    folder = tmp_path_factory.mktemp("oracle-cache")
    previous = os.environ.get("GANFORGE_CACHE_DIR")
    os.environ["GANFORGE_CACHE_DIR"] = str(folder)
    try:
        oracle = load_oracle(progress=False)
    finally:
        if previous is None:
            del os.environ["GANFORGE_CACHE_DIR"]
        else:
            os.environ["GANFORGE_CACHE_DIR"] = previous
    return folder, oracle


@pytest.fixture
def shapes_oracle(_oracle_cache, monkeypatch):
    """The session's oracle; its cache folder is this test's cache, so code that loads it finds it."""
    folder, oracle = _oracle_cache
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(folder))
    return oracle


@pytest.fixture
def empty_weight_dirs(tmp_path, monkeypatch):
    """No pretrained weights anywhere: an empty $GANFORGE_WEIGHTS_DIR and torch hub cache."""
    monkeypatch.setenv("GANFORGE_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "weights"
