"""Atomic file replacement: a destination is absent, the old file, or the complete new one.

Writers produce a temporary file beside the destination (same filesystem, so the final
``os.replace`` is atomic), fsync it, rename it over the destination and fsync the directory.
Ctrl-C, an exception or SIGKILL at any moment leaves at most a ``.NAME.*.partial`` file behind,
never a half-written file under the final name; leftovers of dead writers are swept the next
time anyone writes to the same destination. A writer that needs scratch space beside its
output (an import's staging arrays) takes a :func:`scratch_file`, named and swept the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

_SUFFIX = ".partial"
# What sits between ``.NAME.`` and ``.partial``: the writer's pid, then an optional scratch tag.
_OWNER = re.compile(r"(\d+)(?:\.[a-z]+)?")


def _temp_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{os.getpid()}{_SUFFIX}")


def sweep_dead_partials(dest: Path) -> None:
    """Remove the ``.NAME.PID[.tag].partial`` files or folders beside ``dest`` whose writer
    is dead (a result file's, a cache's, a checkpoint folder's)."""
    if not dest.parent.is_dir():
        return
    for p in dest.parent.glob(f".{dest.name}.*{_SUFFIX}"):
        owner = _OWNER.fullmatch(p.name[len(dest.name) + 2 : -len(_SUFFIX)])
        if owner and not _alive(int(owner.group(1))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(
    dest: str | os.PathLike, copy_from: str | os.PathLike | None = None
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``dest`` atomically.

    ``copy_from`` starts the temporary file as a copy of an existing file (for in-place edits
    such as ``fit-recognizer``). On any exception, including KeyboardInterrupt, the temporary
    file is removed and ``dest`` is untouched.
    """
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_partials(dest)
    tmp = _temp_name(dest)
    tmp.unlink(missing_ok=True)
    try:
        if copy_from is not None:
            shutil.copyfile(copy_from, tmp)
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, dest)
        fsync_path(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def scratch_file(dest: str | os.PathLike, tag: str) -> Iterator[Path]:
    """Yield a scratch path beside ``dest`` (``.NAME.PID.TAG.partial``), removed on exit.

    For writers that stage data on disk before the real output exists (it is beside ``dest``
    because that filesystem is the one known to have room for the output). If the process is
    killed, the next :func:`atomic_output` to ``dest`` sweeps it like a stale partial.
    ``tag`` is lowercase letters.
    """
    if not re.fullmatch(r"[a-z]+", tag):
        raise ValueError(f"scratch tag must be lowercase letters, got {tag!r}")
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    path = dest.with_name(f".{dest.name}.{os.getpid()}.{tag}{_SUFFIX}")
    path.unlink(missing_ok=True)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj) -> None:
    """``obj`` as indented JSON at ``path``, atomically; NumPy values become plain ones."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(o):
    if hasattr(o, "tolist"):  # NumPy scalars and arrays
        return o.tolist()
    if isinstance(o, type):
        return f"{o.__module__}.{o.__qualname__}"
    return str(o)
