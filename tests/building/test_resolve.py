"""resolve_data: paths, preset names, environment variables, and the one-time proxy fallback.

Every test points ADAFRAME_CACHE_DIR at its own tmp_path, so nothing is written to ~/.cache.
"""

from __future__ import annotations

import shutil
import warnings

import pytest

from adaframe_env.build import proxy as resolve
from adaframe_env.build import synth
from adaframe_env.build.proxy import SyntheticDataWarning, ensure_proxy, resolve_data
from adaframe_env.build.synth import preset
from adaframe_env.data.paths import cache_dir, proxy_path
from adaframe_env.data.schema import SCHEMA_VERSION, validate

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Own cache folder, no data variables, and a fresh one-time-warning registry."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADAFRAME_CACHE_DIR", str(cache))
    for var in ("ADAFRAME_FCVID", "ADAFRAME_ACTIVITYNET", "ADAFRAME_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(resolve, "_warned", set())
    return cache


@pytest.fixture
def fake_synthesize(monkeypatch, tiny_cache):
    """Replace generation by a copy of the tiny cache; record what would have been made."""
    calls = []

    def fake(dest, config, progress=True, fit_recognizer=True):
        calls.append((dest, config))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny_cache, dest)
        return dest

    monkeypatch.setattr(synth, "synthesize", fake)
    return calls


def test_cache_dir_order(monkeypatch, tmp_path, isolated):
    assert cache_dir() == isolated
    monkeypatch.delenv("ADAFRAME_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "adaframe-gym"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "adaframe-gym"
    assert proxy_path("fcvid", seed=3).parent == cache_dir()


def test_existing_path_passes_through(tiny_cache, isolated):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_data(tiny_cache) == tiny_cache
        assert resolve_data(str(tiny_cache), dataset="fcvid") == tiny_cache
    assert not isolated.exists()


def test_missing_path_passes_through_for_the_validator(tmp_path, isolated):
    missing = tmp_path / "nope.h5"
    assert resolve_data(missing) == missing
    assert resolve_data("relative/nope.h5") == resolve.Path("relative/nope.h5")
    assert not isolated.exists()


def test_path_beats_preset_name(tmp_path, monkeypatch, tiny_cache, fake_synthesize):
    """A file called like a preset in the working directory is that file."""
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(tiny_cache, tmp_path / "tiny")
    assert resolve_data("tiny") == resolve.Path("tiny")
    assert fake_synthesize == []


@pytest.mark.slow
def test_preset_name_is_generated_into_the_cache_dir(isolated):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking for a proxy by name is not a fallback
        path = resolve_data("tiny")
    assert path == isolated / f"tiny-proxy-v{SCHEMA_VERSION}-seed0.h5" == proxy_path("tiny")
    summary = validate(path)
    assert summary.attrs["synthetic"] and summary.attrs["dataset"] == "tiny-proxy"
    assert sorted(p.name for p in isolated.iterdir()) == [path.name]
    mtime = path.stat().st_mtime_ns
    assert resolve_data("tiny") == path  # generated once, then reused
    assert path.stat().st_mtime_ns == mtime


def test_env_var_used_when_data_is_none(monkeypatch, tiny_cache, isolated, fake_synthesize):
    monkeypatch.setenv("ADAFRAME_FCVID", str(tiny_cache))
    monkeypatch.setenv("ADAFRAME_ACTIVITYNET", "/elsewhere/anet.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_data(None, dataset="fcvid") == tiny_cache
        assert resolve_data(None, dataset="activitynet") == resolve.Path("/elsewhere/anet.h5")
    assert fake_synthesize == [] and not isolated.exists()


def test_explicit_data_beats_env_var(monkeypatch, tiny_cache, tmp_path):
    monkeypatch.setenv("ADAFRAME_FCVID", str(tmp_path / "other.h5"))
    assert resolve_data(tiny_cache, dataset="fcvid") == tiny_cache


def test_generic_env_var(monkeypatch, tiny_cache):
    monkeypatch.setenv("ADAFRAME_DATA", str(tiny_cache))
    assert resolve_data(None) == tiny_cache


def test_no_data_for_the_generic_id_is_an_error():
    with pytest.raises(ValueError, match="ADAFRAME_DATA"):
        resolve_data(None)


def test_fallback_generates_the_proxy_with_one_warning(isolated, fake_synthesize):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = resolve_data(None, dataset="fcvid")
        second = resolve_data(None, dataset="fcvid")
    assert first == second == isolated / f"fcvid-proxy-v{SCHEMA_VERSION}-seed0.h5"
    synthetic = [w for w in caught if issubclass(w.category, SyntheticDataWarning)]
    assert len(synthetic) == 1, [str(w.message) for w in caught]
    assert len(caught) == 1
    message = str(synthetic[0].message)
    assert "fcvid" in message and "ADAFRAME_FCVID" in message and str(first) in message
    assert "generating it now" in message
    # Generated once, with the fcvid preset's configuration, into the cache folder.
    assert len(fake_synthesize) == 1
    dest, config = fake_synthesize[0]
    assert dest == first and config == preset("fcvid", seed=0)
    validate(first)


def test_fallback_warning_when_proxy_already_cached(isolated, fake_synthesize):
    ensure_proxy("activitynet", progress=False)
    assert len(fake_synthesize) == 1
    with pytest.warns(SyntheticDataWarning) as record:
        path = resolve_data(None, dataset="activitynet")
    assert len(record) == 1
    assert "generating it now" not in str(record[0].message)
    assert path == proxy_path("activitynet") and len(fake_synthesize) == 1


@pytest.mark.slow
def test_fallback_really_generates_in_the_schema(monkeypatch, isolated):
    """The fcvid fallback without the 1 GB: map the preset lookup to the tiny preset."""
    monkeypatch.setattr(synth, "preset", lambda name, seed=0: preset("tiny", seed=seed))
    with pytest.warns(SyntheticDataWarning):
        path = resolve_data(None, dataset="fcvid")
    assert path == isolated / f"fcvid-proxy-v{SCHEMA_VERSION}-seed0.h5"
    summary = validate(path)
    assert summary.has_recognizer and summary.attrs["synthetic"]
    assert [p.name for p in isolated.iterdir()] == [path.name]  # no temp files left
