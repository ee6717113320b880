"""Plain helpers the tests import (``from helpers import run_cfg``); the fixtures are in
conftest.py. ``tests/`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from adaframe_env.protocol import RunConfig

#: the repository root (benchmarks/, examples/)
REPO = Path(__file__).resolve().parents[1]

#: check_env warnings we accept on purpose (documented in the env docstring and docs/environment.md):
#: feature observations are unbounded, their Box is (-inf, inf).
GYM_DELIBERATE = (
    "A Box observation space minimum value is -infinity",
    "A Box observation space maximum value is infinity",
)


def unexpected(records, allowed) -> list[str]:
    """Messages of the recorded warnings that are not in ``allowed``."""
    out = []
    for r in records:
        msg = str(r.message)
        if not any(a in msg for a in allowed):
            out.append(f"{r.category.__name__}: {msg}")
    return out


def run_cfg(**kw) -> RunConfig:
    """A fast run config: no progress bars, tiny training."""
    kw.setdefault("budget", 5)
    kw.setdefault("epochs", 1)
    kw.setdefault("progress", False)
    return RunConfig(**kw)
