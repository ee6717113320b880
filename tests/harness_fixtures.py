"""Fixtures of the harness tests: results and checkpoints in tmp dirs, never ~/.cache.

Import into a test module: ``from harness_fixtures import harness_env, run_cfg  # noqa: F401``.
"""

from __future__ import annotations

import pytest

from adaframe_env.protocol import RunConfig


@pytest.fixture
def harness_env(tiny_cache, tmp_path, monkeypatch):
    """(cache path, results folder): the tiny cache with every cache folder in tmp_path."""
    monkeypatch.setenv("ADAFRAME_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("ADAFRAME_FCVID", "ADAFRAME_ACTIVITYNET", "ADAFRAME_DATA"):
        monkeypatch.setenv(var, str(tiny_cache))
    return tiny_cache, tmp_path / "results"


def run_cfg(**kw) -> RunConfig:
    """A fast run config: no progress bars, tiny training."""
    kw.setdefault("budget", 5)
    kw.setdefault("epochs", 1)
    kw.setdefault("progress", False)
    return RunConfig(**kw)
