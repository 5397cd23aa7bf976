"""Shared fixtures: an isolated cache per test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Index caches go to a fresh folder per test, never the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(cache))
    return cache
