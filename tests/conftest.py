"""The fixtures of every test layer (pytest finds them here; tests do not import this file):
small synthetic feature caches made once per test session, and the environment that points
the code at them.

- ``tiny_cache``: path of a valid, *fitted* cache of the ``tiny`` preset (seed 0), with its
  logits stored (as in every v2 cache). Read-only: tests that mutate it take a copy with
  ``make_cache_copy`` first.
- ``tiny_cache_computed``: the same file without stored logits (what ``adaframe synth``
  writes, schema v3): the store computes them from the heads.
- ``tiny_cache_unfitted``: the same data without recognizer logits (what ``fit-recognizer``
  consumes).
- ``make_cache_copy(name="copy.h5", source=None)``: a writable copy in the test's ``tmp_path``.
- ``assert_same_cache(a, b)``: every dataset (dtype, shape, bytes) and every root attribute equal.
- ``single_torch_thread``: run a test with one torch thread (two threads on a shared two-core
  machine make the tiny recognizer fit ~10x slower, and results must not depend on it).
- ``env_vars``: every registered env id (and the generic ``ADAFRAME_DATA``) points at
  ``tiny_cache``; returns its path.
- ``harness_env``: ``env_vars`` plus a results folder: ``(cache path, tmp_path / "results")``.
- ``private_cache_dir`` (autouse, session): the per-user cache is a session folder, never
  ``~/.cache``.

Plain helpers (``run_cfg``, ``unexpected``, ``REPO``) are in helpers.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from adaframe_env.build.synth import preset, synthesize


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory):
    """Everything a test would write to the per-user cache (validation stamps, proxies,
    checkpoints) goes to a session folder instead: the suite never touches ~/.cache."""
    before = os.environ.get("ADAFRAME_CACHE_DIR")
    os.environ["ADAFRAME_CACHE_DIR"] = str(tmp_path_factory.mktemp("user_cache"))
    yield
    if before is None:
        del os.environ["ADAFRAME_CACHE_DIR"]
    else:
        os.environ["ADAFRAME_CACHE_DIR"] = before


@pytest.fixture
def single_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """Path of a valid, fitted cache of the ``tiny`` preset (seed 0). Read-only: copy to mutate."""
    path = tmp_path_factory.mktemp("tiny_cache") / "tiny.h5"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        synthesize(path, preset("tiny", seed=0), progress=False, store_logits=True)
    finally:
        torch.set_num_threads(before)
    path.chmod(0o444)
    return path


@pytest.fixture(scope="session")
def tiny_cache_computed(tmp_path_factory, tiny_cache) -> Path:
    """``tiny_cache`` as ``adaframe synth`` writes it (schema v3): the same file without the
    stored logits, which the store then computes from the heads. Read-only."""
    path = tmp_path_factory.mktemp("tiny_cache_computed") / "tiny-computed.h5"
    shutil.copyfile(tiny_cache, path)
    path.chmod(0o644)
    with h5py.File(path, "r+") as f:
        del f["frames/logits"], f["frames/light_logits"]
    path.chmod(0o444)
    return path


@pytest.fixture(scope="session")
def tiny_cache_unfitted(tmp_path_factory) -> Path:
    """The ``tiny`` preset (seed 0) without recognizer logits. Read-only: copy to mutate."""
    path = tmp_path_factory.mktemp("tiny_cache_unfitted") / "tiny-unfitted.h5"
    synthesize(path, preset("tiny", seed=0), progress=False, fit_recognizer=False)
    path.chmod(0o444)
    return path


@pytest.fixture
def make_cache_copy(tiny_cache, tmp_path):
    """``make_cache_copy(name="copy.h5", source=None) -> Path``: a writable copy of a cache
    (``tiny_cache`` unless ``source`` is given) inside the test's ``tmp_path``."""

    def make(name: str = "copy.h5", source: Path | None = None) -> Path:
        dest = tmp_path / name
        shutil.copyfile(source or tiny_cache, dest)
        dest.chmod(0o644)
        return dest

    return make


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def _same_value(x, y) -> bool:
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if x.dtype.kind == "O":
        return x.tolist() == y.tolist()
    return x.tobytes() == y.tobytes()


@pytest.fixture(scope="session")
def assert_same_cache():
    """``assert_same_cache(a, b)``: the two caches hold the same datasets (dtype, shape and
    bytes) and the same root attributes."""

    def check(a: Path, b: Path) -> None:
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
            assert _datasets(fa) == _datasets(fb)
            for name in _datasets(fa):
                x, y = fa[name][()], fb[name][()]
                assert _same_value(x, y), f"dataset {name} differs between {a} and {b}"
            assert sorted(fa.attrs) == sorted(fb.attrs)
            for key in fa.attrs:
                assert _same_value(fa.attrs[key], fb.attrs[key]), f"attribute {key} differs"

    return check


@pytest.fixture
def env_vars(tiny_cache, tmp_path, monkeypatch) -> Path:
    """Point every registered id at the tiny cache; never touch the real ~/.cache."""
    for var in ("ADAFRAME_FCVID", "ADAFRAME_ACTIVITYNET", "ADAFRAME_DATA"):
        monkeypatch.setenv(var, str(tiny_cache))
    monkeypatch.setenv("ADAFRAME_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tiny_cache


@pytest.fixture
def harness_env(env_vars, tmp_path) -> tuple[Path, Path]:
    """(cache path, results folder): the tiny cache with every cache folder in tmp_path."""
    return env_vars, tmp_path / "results"
