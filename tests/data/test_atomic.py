"""Atomic writes: the destination is absent, the old file, or the complete new one.

Three layers:
- ``atomic_output`` unit tests (exceptions, Ctrl-C, stale temp files of dead writers);
- interruptions injected in-process at precise moments of ``adaframe synth`` / ``fit-recognizer``;
- real ``python -m adaframe_env.cli`` processes killed with SIGINT or SIGKILL after a spread of
  delays and at progress-bar markers (the fit, and the moment the fit ends and writing begins).
"""

from __future__ import annotations

import hashlib
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from adaframe_env.build import recognizer
from adaframe_env.build.synth import generate, preset
from adaframe_env.cli import data as cli
from adaframe_env.cli import main
from adaframe_env.data import atomic, writer
from adaframe_env.data.atomic import atomic_output
from adaframe_env.data.schema import CacheError, validate
from adaframe_env.data.writer import write_cache

pytestmark = pytest.mark.usefixtures("single_torch_thread")

INTERRUPTED = "interrupted; nothing was written"


def partials(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------------------- atomic_output


def test_success_replaces_destination(tmp_path):
    dest = tmp_path / "sub" / "out.bin"
    with atomic_output(dest) as tmp:
        assert tmp.parent == dest.parent  # same filesystem: the rename is atomic
        assert tmp.name == f".out.bin.{os.getpid()}.partial"
        assert not dest.exists()
        tmp.write_bytes(b"new")
    assert dest.read_bytes() == b"new"
    assert partials(dest.parent) == []
    with atomic_output(dest) as tmp:
        tmp.write_bytes(b"newer")
        assert dest.read_bytes() == b"new"  # the old file stays until the rename
    assert dest.read_bytes() == b"newer"


def test_relative_destination(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with atomic_output("rel.bin") as tmp:
        assert tmp.is_absolute()
        tmp.write_bytes(b"x")
    assert (tmp_path / "rel.bin").read_bytes() == b"x"


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [True, False])
def test_exception_leaves_destination_untouched(tmp_path, exc, existing):
    dest = tmp_path / "out.bin"
    if existing:
        dest.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with atomic_output(dest) as tmp:
            tmp.write_bytes(b"half")
            raise exc
    assert (dest.read_bytes() == b"old") if existing else not dest.exists()
    assert partials(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.bin"] if existing else [])


def test_exception_before_temp_file_exists(tmp_path):
    dest = tmp_path / "out.bin"
    with pytest.raises(ValueError):
        with atomic_output(dest):
            raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_copy_from_starts_with_a_copy(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"original")
    with atomic_output(dest, copy_from=dest) as tmp:
        assert tmp.read_bytes() == b"original"
        with open(tmp, "ab") as f:
            f.write(b"+edit")
        assert dest.read_bytes() == b"original"
    assert dest.read_bytes() == b"original+edit"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(dest, copy_from=dest) as tmp:
            tmp.write_bytes(b"garbage")
            raise KeyboardInterrupt
    assert dest.read_bytes() == b"original+edit" and partials(tmp_path) == []


def test_stale_partials_of_dead_writers_are_swept(tmp_path):
    dest = tmp_path / "out.h5"
    dead = tmp_path / f".out.h5.{dead_pid()}.partial"
    alive = tmp_path / f".out.h5.{os.getppid()}.partial"  # a live process's write in progress
    other = tmp_path / f".other.h5.{dead_pid()}.partial"  # another destination's
    odd = tmp_path / ".out.h5.notapid.partial"
    for p in (dead, alive, other, odd):
        p.write_bytes(b"leftover")
    with atomic_output(dest) as tmp:
        tmp.write_bytes(b"new")
    assert not dead.exists()
    assert alive.exists() and other.exists() and odd.exists()
    assert dest.read_bytes() == b"new"


def test_stale_partials_are_swept_even_when_the_new_write_fails(tmp_path):
    dest = tmp_path / "out.h5"
    dest.write_bytes(b"old")
    dead = tmp_path / f".out.h5.{dead_pid()}.partial"
    dead.write_bytes(b"leftover")
    with pytest.raises(RuntimeError):
        with atomic_output(dest):
            raise RuntimeError
    assert partials(tmp_path) == [] and dest.read_bytes() == b"old"


def test_scratch_files_are_removed_and_swept_like_partials(tmp_path):
    """An import's staging scratch: gone after the write, whatever happens; a killed writer's
    scratch is swept by the next write to the same destination."""
    dest = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with atomic.scratch_file(dest, "heavy") as scratch:
            assert scratch.name == f".out.h5.{os.getpid()}.heavy.partial"
            scratch.write_bytes(b"rows")
            raise RuntimeError
    assert partials(tmp_path) == []
    dead = tmp_path / f".out.h5.{dead_pid()}.heavy.partial"
    alive = tmp_path / f".out.h5.{os.getppid()}.light.partial"
    for p in (dead, alive):
        p.write_bytes(b"leftover")
    with atomic_output(dest) as tmp:
        tmp.write_bytes(b"new")
    assert partials(tmp_path) == [alive.name]


def test_write_cache_validates_before_renaming(tmp_path):
    """A cache under its final name always passes validation; a bad one never gets there."""
    arrays, attrs = generate(preset("tiny"), progress=False)
    arrays["videos/label"] = arrays["videos/label"].copy()
    arrays["videos/label"][0] = 99
    dest = tmp_path / "bad.h5"
    with pytest.raises(CacheError, match="/videos/label"):
        write_cache(dest, arrays, attrs)
    assert list(tmp_path.iterdir()) == []
    dest.write_bytes(b"old")
    with pytest.raises(CacheError):
        write_cache(dest, arrays, attrs)
    assert dest.read_bytes() == b"old" and partials(tmp_path) == []


# ----------------------------------------------------------------------------- injected Ctrl-C


def _raise_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_while_synth_writes_datasets(capsys, tmp_path, monkeypatch):
    real = writer.write_datasets

    def half_then_interrupt(f, arrays, progress=False):
        real(f, dict(list(arrays.items())[:3]), progress)

        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "write_datasets", half_then_interrupt)
    dest = tmp_path / "out.h5"
    rc = main(["synth", "--preset", "tiny", "--out", str(dest), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 130
    assert (
        err.lstrip("\n") == f"adaframe synth: {INTERRUPTED}\n"
    )  # a fresh line after any progress bar
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_just_before_the_rename_keeps_the_old_file(capsys, tmp_path, monkeypatch):
    dest = tmp_path / "out.h5"
    dest.write_bytes(b"old cache")
    monkeypatch.setattr(atomic, "fsync_path", _raise_interrupt)  # fsync of the temp file
    rc = main(["synth", "--preset", "tiny", "--out", str(dest), "--no-progress"])
    assert rc == 130
    assert capsys.readouterr().err.lstrip("\n") == f"adaframe synth: {INTERRUPTED}\n"
    assert dest.read_bytes() == b"old cache"
    assert partials(tmp_path) == []


@pytest.mark.slow
def test_ctrl_c_while_fit_recognizer_validates_its_output(
    capsys, make_cache_copy, tiny_cache_unfitted, monkeypatch
):
    path = make_cache_copy("fit.h5", source=tiny_cache_unfitted)
    before = sha(path)
    real = recognizer.validate
    calls = []

    def validate_then_interrupt(p, *args, **kwargs):
        calls.append(Path(p))
        if len(calls) == 2:  # the second call checks the temporary file, before the rename
            assert Path(p).name.endswith(".partial") and Path(p).exists()
            raise KeyboardInterrupt
        return real(p, *args, **kwargs)

    monkeypatch.setattr(recognizer, "validate", validate_then_interrupt)
    rc = main(["fit-recognizer", str(path), "--no-progress"])
    assert rc == 130 and len(calls) == 2
    assert capsys.readouterr().err.lstrip("\n") == f"adaframe fit-recognizer: {INTERRUPTED}\n"
    assert sha(path) == before
    assert partials(path.parent) == []


@pytest.mark.slow
def test_ctrl_c_after_the_file_is_in_place_does_not_claim_nothing_was_written(
    capsys, tmp_path, monkeypatch
):
    """Ctrl-C while ``synth`` prints its summary: the cache is complete and valid under its
    final name, so the CLI must not tell the user that nothing was written."""
    monkeypatch.setattr(cli, "_info", _raise_interrupt)
    dest = tmp_path / "out.h5"
    rc = main(["synth", "--preset", "tiny", "--out", str(dest), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 130
    assert dest.exists()
    validate(dest)
    assert INTERRUPTED not in err, f"the file {dest} was written, yet the CLI said: {err!r}"


# ----------------------------------------------------------------------------- real processes

CLI = [sys.executable, "-m", "adaframe_env.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
# Progress texts that say where a run is. A changed text must fail the tests (every marker
# kill asserts that its marker was seen), not silently turn them into uninterrupted runs.
FIT_STARTED = re.compile(rb"fit recognizer: ")  # the recognizer's bar appears: fitting begins
FIT_DONE = re.compile(rb"fit recognizer: 100%")  # every head is fit: evaluation, then writing
WRITING = re.compile(rb"write cache: ")  # datasets are being written to the temporary file


@dataclass
class Kill:
    sig: int
    delay: float  # seconds after the start, or after ``marker`` appears on stderr
    marker: re.Pattern | None = None
    # filled in by the run
    dest: Path | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    pid: int = 0
    fired: bool = False
    marker_seen: bool = False

    def __str__(self) -> str:
        name = signal.Signals(self.sig).name
        at = f"{self.delay:g}s after {self.marker.pattern!r}" if self.marker else f"{self.delay:g}s"
        return f"{name} at {at}"


def _drive(kill: Kill, cmd: list[str], deadline: float) -> None:
    """Run one process, send its signal when due, drain its pipes until it exits."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    kill.pid = p.pid
    t0 = time.monotonic()
    t_marker = None
    out_fd, err_fd = p.stdout.fileno(), p.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(bufs)
    try:
        while open_fds:
            now = time.monotonic()
            if now > deadline:
                p.kill()
                raise AssertionError(f"{kill}: {' '.join(cmd)} did not finish in time")
            if not kill.fired:
                if kill.marker is not None and t_marker is None:
                    if kill.marker.search(bufs[err_fd]):
                        t_marker = now
                        kill.marker_seen = True
                start = t0 if kill.marker is None else t_marker
                if start is not None and now - start >= kill.delay:
                    try:
                        p.send_signal(kill.sig)
                        kill.fired = True
                    except ProcessLookupError:
                        pass
            for key, _ in sel.select(timeout=0.005):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    bufs[key.fd] += chunk
                else:
                    sel.unregister(key.fd)
                    open_fds.discard(key.fd)
        kill.returncode = p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        sel.close()
        p.stdout.close()
        p.stderr.close()
    kill.stdout = bytes(bufs[out_fd]).decode(errors="replace")
    kill.stderr = bytes(bufs[err_fd]).decode(errors="replace")


def _run_all(kills: list[Kill], cmd_of) -> None:
    deadline = time.monotonic() + 150
    errors: list[BaseException] = []

    def target(k):
        try:
            _drive(k, cmd_of(k), deadline)
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=target, args=(k,)) for k in kills]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# A spread of plain delays (interpreter start-up, imports, generation; the machine may be loaded)
# and marker-synchronized kills: during the fit, and right after the fit ends (evaluation,
# writing the temporary file, validating it, the rename). Few processes: each costs seconds.
def _kill_plan(after_fit: tuple[tuple[int, float], ...]) -> list[Kill]:
    return [
        Kill(signal.SIGINT, 0.05),
        Kill(signal.SIGKILL, 0.5),
        Kill(signal.SIGINT, 1.5),
        Kill(signal.SIGINT, 0.0, FIT_STARTED),
        *(Kill(sig, delay, FIT_DONE) for sig, delay in after_fit),
        Kill(signal.SIGKILL, 0.0, WRITING),  # in the middle of writing the temporary file
    ]


def _check_landed(kills: list[Kill], leftovers: list[list[str]]) -> None:
    """Every signal was sent, every marker kill after its marker; the kill during the fit
    interrupted the run, and the SIGKILL during the write left its temporary file behind
    (so it landed between the first dataset written and the rename)."""
    for k, left in zip(kills, leftovers, strict=True):
        assert k.fired, f"{k}: the signal was never sent (the run ended first?)"
        if k.marker is not None:
            assert k.marker_seen, f"{k}: marker never printed; did a progress text change?"
        if k.marker is FIT_STARTED:
            assert k.returncode != 0, f"{k}: the run finished although killed during the fit"
        if k.marker is WRITING:
            assert k.returncode == -signal.SIGKILL and left, f"{k}: did not land mid-write"


def _check_signal_outcome(k: Kill, command: str, unchanged: bool) -> str:
    """Exit status and messages of one killed run; return what happened to the destination."""
    where = f"{command}, {k}: rc={k.returncode}, stderr tail={k.stderr[-300:]!r}"
    if k.returncode == 0:
        assert unchanged is False, where
        return "new"
    if k.sig == signal.SIGKILL:
        assert k.returncode == -signal.SIGKILL, where
    else:
        # 130 with one message once main() runs. Earlier, while the interpreter starts and
        # imports the CLI, no handler of ours can exist yet: Python's own exit (1 or -SIGINT).
        assert k.returncode in (130, 1, -signal.SIGINT), where
        # main() handled it: 130 and one message. (Rarely -SIGINT with the same message: when
        # Ctrl-C lands inside a C extension's import, the extension may report it and CPython
        # then ends the process with SIGINT after main() has returned.)
        if k.returncode == 130 or f"adaframe {command}: interrupted; " in k.stderr:
            # The message ends the output (a progress bar may share its line, and tqdm clears
            # its bar once more at exit).
            tail = re.sub(r"[\r\n ]+$", "", k.stderr)
            assert "Traceback" not in k.stderr, where
            if tail.endswith(" is complete"):  # Ctrl-C after the rename: the new file is in place
                assert f"adaframe {command}: interrupted; " in tail, where
                assert not unchanged, where
                return "new"
            assert tail.endswith(f"adaframe {command}: {INTERRUPTED}"), where
            assert k.stderr.count(INTERRUPTED) == 1, where
            assert unchanged, f"the CLI said nothing was written but the file changed: {where}"
        else:
            # Before main() the interrupt can land anywhere in the interpreter's imports
            # (numpy's C extensions turn it into an ImportError): only main() must not have run.
            ran_main = re.search(r'adaframe_env[/\\]cli\.py", line \d+, in main', k.stderr)
            assert not ran_main, f"main() ran, so it had to exit 130: {where}"
            assert INTERRUPTED not in k.stderr and k.stdout == "" and unchanged, where
        if k.marker is FIT_STARTED and k.marker_seen:
            assert INTERRUPTED in k.stderr, f"Ctrl-C during the fit must be handled: {where}"
    return "old" if unchanged else "new"


@pytest.mark.slow
def test_killing_synth_leaves_nothing_the_old_or_the_complete_file(
    tmp_path, tiny_cache, assert_same_cache
):
    """Half of the runs write over an existing file, half into an empty folder."""
    kills = _kill_plan(((signal.SIGKILL, 0.0), (signal.SIGINT, 0.03)))
    old = b"an older file under the destination name"
    for i, k in enumerate(kills):
        (tmp_path / f"run{i}").mkdir()
        k.dest = tmp_path / f"run{i}" / "tiny.h5"
        if i % 2:
            k.dest.write_bytes(old)
    _run_all(kills, lambda k: CLI + ["synth", "--preset", "tiny", "--out", str(k.dest)])
    outcomes, leftovers = [], []
    for i, k in enumerate(kills):
        before = old if i % 2 else None
        after = k.dest.read_bytes() if k.dest.exists() else None
        outcome = _check_signal_outcome(k, "synth", unchanged=after == before)
        if after != before:  # the complete new file, equal to an uninterrupted run
            validate(k.dest)
            assert_same_cache(k.dest, tiny_cache)
        left = partials(k.dest.parent)
        if k.sig == signal.SIGINT or k.returncode == 0:
            assert left == [], f"{k}: {left}"
        else:
            assert left in ([], [f".tiny.h5.{k.pid}.partial"]), f"{k}: {left}"
            # The next writer to the same destination sweeps the dead writer's leftovers.
            with pytest.raises(RuntimeError), atomic_output(k.dest):
                raise RuntimeError
            assert partials(k.dest.parent) == []
        state = {"old": "old file" if before else "absent", "new": "complete new file"}[outcome]
        outcomes.append(f"{k}: rc={k.returncode} -> {state}" + (", temp file left" if left else ""))
        leftovers.append(left)
    print("\n".join(outcomes))
    _check_landed(kills, leftovers)


@pytest.mark.slow
def test_killing_fit_recognizer_leaves_the_old_or_the_new_file(
    tmp_path, tiny_cache, tiny_cache_unfitted, make_cache_copy, assert_same_cache
):
    kills = _kill_plan(((signal.SIGINT, 0.0), (signal.SIGKILL, 0.02)))
    original = sha(tiny_cache_unfitted)
    for i, k in enumerate(kills):
        (tmp_path / f"run{i}").mkdir()
        k.dest = make_cache_copy(f"run{i}/cache.h5", source=tiny_cache_unfitted)
    _run_all(kills, lambda k: CLI + ["fit-recognizer", str(k.dest)])
    outcomes, leftovers = [], []
    for k in kills:
        unchanged = sha(k.dest) == original
        outcome = _check_signal_outcome(k, "fit-recognizer", unchanged)
        if unchanged:
            validate(k.dest, require_recognizer=False)
        else:  # the complete new file: fitted, valid, equal to an uninterrupted fit
            validate(k.dest)
            assert_same_cache(k.dest, tiny_cache)
        left = partials(k.dest.parent)
        if k.sig == signal.SIGINT or k.returncode == 0:
            assert left == [], f"{k}: {left}"
        else:
            assert left in ([], [f".cache.h5.{k.pid}.partial"]), f"{k}: {left}"
            with pytest.raises(RuntimeError), atomic_output(k.dest):
                raise RuntimeError
            assert partials(k.dest.parent) == []
        outcomes.append(
            f"{k}: rc={k.returncode} -> {outcome}" + (", temp file left" if left else "")
        )
        leftovers.append(left)
    print("\n".join(outcomes))
    _check_landed(kills, leftovers)


def test_a_cache_failing_validation_is_named_by_its_destination(tmp_path):
    """The check runs on the temporary file; the user must read the name they asked for."""
    arrays, attrs = generate(preset("tiny", seed=0), progress=False)
    arrays["frames/features"] = arrays["frames/features"].copy()
    arrays["frames/features"][3, 0] = np.nan
    dest = tmp_path / "mine.h5"
    with pytest.raises(CacheError) as err:
        write_cache(dest, arrays, attrs)
    assert str(err.value).startswith(f"{dest}: /frames/features: ")
    assert "partial" not in str(err.value) and not dest.exists()
    assert not list(tmp_path.iterdir())  # nothing left behind
