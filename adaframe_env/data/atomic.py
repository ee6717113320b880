"""Atomic file replacement: a destination is absent, the old file, or the complete new one.

Writers produce a temporary file beside the destination (same filesystem, so the final
``os.replace`` is atomic), fsync it, rename it over the destination and fsync the directory.
Ctrl-C, an exception or SIGKILL at any moment leaves at most a ``.NAME.*.partial`` file behind,
never a half-written file under the final name; leftovers of dead writers are swept the next
time anyone writes to the same destination.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

_SUFFIX = ".partial"


def _temp_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{os.getpid()}{_SUFFIX}")


def _sweep_dead_partials(dest: Path) -> None:
    for p in dest.parent.glob(f".{dest.name}.*{_SUFFIX}"):
        pid = p.name[len(dest.name) + 2 : -len(_SUFFIX)]
        if pid.isdigit() and not _alive(int(pid)):
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
    _sweep_dead_partials(dest)
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
