"""``adaframe ... | head -1``: a reader that stops early is no error of ours. The console
entry point exits quietly with status 141 (128 + SIGPIPE, what a Unix tool killed by the
broken pipe reports) and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def pipe(command: str, *args) -> subprocess.CompletedProcess:
    """``python -m adaframe_env.cli ARGS | COMMAND`` in bash; stdout is COMMAND's, the exit
    status is adaframe's (PIPESTATUS[0]), stderr is adaframe's."""
    script = f'"$0" -m adaframe_env.cli "$@" | {command}; exit "${{PIPESTATUS[0]}}"'
    return subprocess.run(
        ["bash", "-c", script, sys.executable, *map(str, args)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def test_a_closed_stdout_exits_141_without_a_traceback(tiny_cache):
    # `true` reads nothing and exits at once, long before Python has started: every write of
    # adaframe meets a closed pipe
    r = pipe("true", "info", tiny_cache)
    assert r.stderr == "" and r.returncode == 141, (r.returncode, r.stderr)


def test_head_gets_the_first_line_and_adaframe_stays_quiet(tiny_cache):
    whole = subprocess.run([sys.executable, "-m", "adaframe_env.cli", "info", str(tiny_cache)],
                           capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert whole.stdout.count("\n") > 1
    r = pipe("head -1", "info", tiny_cache)
    assert r.stdout == whole.stdout.splitlines(keepends=True)[0]
    # whether the pipe was already closed when adaframe wrote depends on timing: 0 or 141
    assert r.stderr == "" and r.returncode in (0, 141), (r.returncode, r.stderr)
