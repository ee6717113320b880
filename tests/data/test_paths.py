"""A path that is not a cache file says what it is: a symlink loop is not "no such file",
and a pipe is refused instead of blocking the open forever."""

from __future__ import annotations

import os

import pytest

from adaframe_env.cli import main
from adaframe_env.data.schema import CacheError, validate
from adaframe_env.data.store import FeatureStore


def one_line_error(capsys, command: str, path) -> str:
    rc = main([command, str(path)])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith(f"adaframe {command}: {path}: "), err
    return err.rstrip("\n")


@pytest.fixture
def loop(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


@pytest.mark.parametrize("command", ["validate", "info"])
def test_symlink_loop_is_named(capsys, loop, command):
    line = one_line_error(capsys, command, loop)
    assert "symlink loop (ELOOP)" in line and "no such file" not in line


def test_symlink_loop_from_the_library(loop):
    for call in (lambda: validate(loop), lambda: FeatureStore(loop)):
        with pytest.raises(CacheError) as e:
            call()
        assert e.value.file == str(loop) and "symlink loop (ELOOP)" in e.value.problem


def test_dangling_symlink_names_its_target(capsys, tmp_path):
    link = tmp_path / "cache.h5"
    link.symlink_to(tmp_path / "gone.h5")
    line = one_line_error(capsys, "validate", link)
    assert f"a symlink to {tmp_path / 'gone.h5'}, which does not exist" in line


def test_missing_file_is_still_no_such_file(capsys, tmp_path):
    line = one_line_error(capsys, "validate", tmp_path / "nope.h5")
    assert line.endswith(": /: no such file")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", ["validate", "info"])
def test_a_pipe_is_refused_without_blocking(capsys, tmp_path, command):
    fifo = tmp_path / "cache.h5"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    line = one_line_error(capsys, command, fifo)
    assert line.endswith(": /: not a regular file (a device, pipe or socket?)")
