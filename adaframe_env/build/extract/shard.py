"""Scale-out: the rank and world size of a ``torchrun`` launch, the shard of each rank, and the
one barrier before the cache is built.

``torchrun --nproc_per_node N`` (or several nodes) starts N copies of the same command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` in their environment; without
them the command is rank 0 of 1. Rank r extracts the CSV's videos r, r + world, r + 2 world,
... (fixed by the CSV order alone, so a resumed run gives every rank the same videos again),
writing its own per-video files into the shared work folder. Then every rank waits at one gloo
barrier and rank 0 builds the cache from the whole folder. Ranks share the work folder through
the file system: on several nodes it must be a shared file system, or each node keeps its own
folder and ``adaframe merge`` builds the cache after the folders are copied together (the files
are per video, so ``rsync -a node*/WORK/ WORK/`` is a merge).

The barrier's timeout is a week: ranks finish hours apart on a large dataset (gloo's default of
30 minutes would kill the early ones). A rank that dies makes ``torchrun`` stop the others; the
same command then resumes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from adaframe_env.build.importer import FeatureImportError
from adaframe_env import distributed

T = TypeVar("T")
BARRIER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Dist:
    """Where this process sits in a launch (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def tag(self) -> str:
        """``"rank r/w: "`` in a multi-process launch, else empty (a prefix for messages)."""
        return f"rank {self.rank}/{self.world}: " if self.world > 1 else ""


def dist_from_env(env: dict[str, str] | None = None) -> Dist:
    """The launch's :class:`Dist`, read from torchrun's environment variables."""
    env = os.environ if env is None else env
    values = {}
    for key, name, default in (
        ("rank", "RANK", 0),
        ("world", "WORLD_SIZE", 1),
        ("local_rank", "LOCAL_RANK", 0),
        ("local_world", "LOCAL_WORLD_SIZE", None),
    ):
        text = env.get(name)
        try:
            values[key] = default if text in (None, "") else int(text)
        except ValueError:
            raise FeatureImportError(
                name, f"environment variable is {text!r}, not an integer"
            ) from None
    if values["local_world"] is None:
        values["local_world"] = values["world"]
    d = Dist(**values)
    if not (d.world >= 1 and 0 <= d.rank < d.world and 0 <= d.local_rank < d.local_world):
        raise FeatureImportError(
            "RANK", f"rank {d.rank} of world size {d.world} is not a valid launch"
        )
    return d


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """The items of ``rank``: ``items[rank::world]``."""
    return list(items[rank::world])


@contextlib.contextmanager
def process_group(d: Dist) -> Iterator[None]:
    """The launch's gloo process group (nothing for a single process), torn down on exit; its
    collectives wait up to :data:`BARRIER_TIMEOUT`. :func:`distributed.barrier` waits for the
    ranks."""
    if d.world == 1:
        yield
        return
    distributed.init("cpu", timeout=BARRIER_TIMEOUT)
    try:
        yield
    finally:
        distributed.cleanup()
