"""The validation stamp: once per file version, and a changed file is always noticed.

The stamp (``validate_once``) spares a re-read of an unchanged, already validated cache. These
tests edit a validated cache *in place* with h5py and put its mtime back (what ``touch -d``
does): the next open must refuse it with the validator's one-line :class:`CacheError` naming
the file, never serve NaN observations or fail with an ``IndexError`` from inside the env.
A failed validation must remove the stamp, so nothing opens the file on its word afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os

import gymnasium as gym
import h5py
import numpy as np
import pytest

import adaframe_env  # noqa: F401  (registers the env ids)
import adaframe_env.data.store as store_module
from adaframe_env.cli import main
from adaframe_env.data.paths import cache_dir
from adaframe_env.data.schema import CacheError
from adaframe_env.data.store import FeatureStore

# edit name -> (dataset path the validator names, what the edit does to the open file)
EDITS = {
    "nan-logits": ("/frames/logits", lambda f: f["frames/logits"].__setitem__(3, np.nan)),
    "inf-feature-row": ("/frames/features", lambda f: f["frames/features"].__setitem__(5, np.inf)),
    "label-out-of-range": ("/videos/label", lambda f: f["videos/label"].__setitem__(0, 99)),
}


def stamp_file(path) -> os.PathLike:
    """Where the stamp of ``path`` lives (the per-user cache, keyed by the resolved path)."""
    name = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return cache_dir() / "validated" / f"{name}.json"


def edit_in_place(path, edit: str) -> None:
    """Apply an edit with h5py in r+ mode, then restore atime and mtime (``touch -d``)."""
    st = os.stat(path)
    with h5py.File(path, "r+") as f:
        EDITS[edit][1](f)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    ), "the edit must leave inode, size and mtime as they were"


def validate_cli(capsys, path) -> tuple[int, str, str]:
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str, command: str, path) -> str:
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith(f"adaframe {command}: {path}: "), err
    return err.rstrip("\n")


def open_with(opener: str, path):
    if opener == "FeatureStore":
        return FeatureStore(path)
    env = gym.make("AdaFrame-v0", data=str(path), split="test")
    env.reset(seed=0)
    return env


# ----------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("opener", ["FeatureStore", "gym.make"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_in_place_edit_with_mtime_restored_is_refused(capsys, make_cache_copy, edit, opener):
    path = make_cache_copy(f"{edit}.h5")
    rc, out, err = validate_cli(capsys, path)
    assert rc == 0 and "valid schema" in out and err == ""
    assert stamp_file(path).is_file()
    edit_in_place(path, edit)
    with pytest.raises(CacheError) as e:
        open_with(opener, path)
    assert e.value.file == str(path)
    assert e.value.where == EDITS[edit][0]


def test_structure_is_checked_even_when_the_stamp_matches(make_cache_copy):
    """On a file system whose ctime is no change time (the stamp cannot tell the edited file
    from the validated one), the per-video tables are still checked on every open."""
    path = make_cache_copy()
    FeatureStore(path)
    edit_in_place(path, "label-out-of-range")
    stamp = stamp_file(path)
    saved = json.loads(stamp.read_text())
    saved["version"] = store_module.file_version(path)  # the stamp now matches the edited file
    stamp.write_text(json.dumps(saved))
    with pytest.raises(CacheError) as e:
        FeatureStore(path)
    assert e.value.file == str(path) and e.value.where == "/videos/label"
    assert "has label 99" in str(e.value)


def test_an_unchanged_file_is_read_once(make_cache_copy, monkeypatch):
    """The stamp still does its job: a second open of the unchanged file scans nothing."""
    path = make_cache_copy()
    FeatureStore(path)
    scans = []
    real = store_module.validate
    monkeypatch.setattr(store_module, "validate", lambda *a: scans.append(a) or real(*a))
    FeatureStore(path)
    assert scans == []
    os.chmod(path, 0o444)  # chmod changes ctime: validated again (cheap insurance)
    FeatureStore(path)
    assert len(scans) == 1


# ----------------------------------------------------------------------------- item 2


def test_failed_validate_removes_the_stamp(capsys, make_cache_copy):
    path = make_cache_copy()
    assert validate_cli(capsys, path)[0] == 0
    stamp = stamp_file(path)
    assert stamp.is_file()
    edit_in_place(path, "nan-logits")
    rc, out, err = validate_cli(capsys, path)
    assert rc == 2 and out == ""
    assert "/frames/logits: row 3 holds NaN or inf" in one_line(err, "validate", path)
    assert not stamp.exists()


def test_after_a_failed_validate_nothing_opens_the_file(capsys, make_cache_copy, monkeypatch):
    """Even where the stamp cannot see the edit (a file system without a real ctime: here the
    version is inode, size and mtime only), the failed ``adaframe validate`` takes the stamp
    with it, and the next ``gym.make`` validates and refuses the file."""
    real = store_module.file_version
    monkeypatch.setattr(
        store_module, "file_version", lambda p: {**real(p), "ctime_ns": 0}
    )  # what a file system without a change time shows
    path = make_cache_copy()
    assert validate_cli(capsys, path)[0] == 0
    edit_in_place(path, "nan-logits")
    assert validate_cli(capsys, path)[0] == 2
    with pytest.raises(CacheError) as e:
        open_with("gym.make", path)
    assert e.value.file == str(path) and e.value.where == "/frames/logits"


@pytest.mark.parametrize("command", ["FeatureStore", "info"])
def test_other_failed_validations_remove_the_stamp(capsys, make_cache_copy, command):
    path = make_cache_copy()
    FeatureStore(path)
    stamp = stamp_file(path)
    assert stamp.is_file()
    with h5py.File(path, "r+") as f:
        f["frames/light"][7] = np.nan
    if command == "FeatureStore":
        with pytest.raises(CacheError, match="frames/light"):
            FeatureStore(path)
    else:
        rc = main(["info", str(path)])
        out, err = capsys.readouterr()
        assert rc == 2 and out == ""
        assert "/frames/light: row 7 holds NaN or inf" in one_line(err, "info", path)
    assert not stamp.exists()


def test_a_stamp_of_other_rules_is_not_trusted(make_cache_copy, monkeypatch):
    """A stamp written by another version of the validator (other rules) is not trusted."""
    path = make_cache_copy()
    FeatureStore(path)
    stamp = stamp_file(path)
    saved = json.loads(stamp.read_text())
    saved["rules"] = "an older validator"
    stamp.write_text(json.dumps(saved))
    scans = []
    real = store_module.validate
    monkeypatch.setattr(store_module, "validate", lambda *a: scans.append(a) or real(*a))
    FeatureStore(path)
    assert len(scans) == 1
    assert json.loads(stamp.read_text())["rules"] == store_module.RULES


@pytest.mark.parametrize("seconds_later", [0, 2])
def test_one_second_timestamps_are_stamped_only_after_their_second(
    make_cache_copy, monkeypatch, seconds_later
):
    """On a file system with one-second times, an edit later in the second of the last change
    would leave every time as it was: a file changed in the second its validation began is
    not stamped; one changed in an earlier second is."""
    path = make_cache_copy()
    second = 1_900_000_000 * 10**9  # a whole second: what a coarse file system stores
    real = store_module.file_version
    monkeypatch.setattr(store_module, "file_version",
                        lambda p: {**real(p), "ctime_ns": second})  # fmt: skip
    monkeypatch.setattr(store_module, "_clock", lambda: second + seconds_later * 10**9 + 10**8)
    FeatureStore(path)
    assert stamp_file(path).is_file() == (seconds_later > 0)
