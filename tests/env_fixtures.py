"""Fixtures and helpers of the environment tests (conftest.py belongs to the data tests).

Import the fixtures you use into a test module: ``from env_fixtures import env_vars  # noqa``.
``tiny_cache`` (the fitted tiny preset) comes from conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from adaframe_env.rewards import margin as margin_fn

#: check_env warnings we accept on purpose (documented in the env docstring and docs/environment.md):
#: feature observations are unbounded, their Box is (-inf, inf).
GYM_DELIBERATE = (
    "A Box observation space minimum value is -infinity",
    "A Box observation space maximum value is infinity",
)
#: SB3's check_env: the memory is (16, Dl) (agents attend over its rows); the action is a
#: location in [0, 1] (DESIGN.md 3), not SB3's recommended [-1, 1].
SB3_DELIBERATE = (
    "Your observation memory has an unconventional shape",
    "We recommend you to use a symmetric and normalized Box action space",
)


@pytest.fixture
def env_vars(tiny_cache, tmp_path, monkeypatch):
    """Point every registered id at the tiny cache; never touch the real ~/.cache."""
    for var in ("ADAFRAME_FCVID", "ADAFRAME_ACTIVITYNET", "ADAFRAME_DATA"):
        monkeypatch.setenv(var, str(tiny_cache))
    monkeypatch.setenv("ADAFRAME_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tiny_cache


def unexpected(records, allowed) -> list[str]:
    """Messages of the recorded warnings that are not in ``allowed``."""
    out = []
    for r in records:
        msg = str(r.message)
        if not any(a in msg for a in allowed):
            out.append(f"{r.category.__name__}: {msg}")
    return out


def expected_episode(store, video: int, frames: list[int]):
    """Hand computation of the recognizer over an episode: per step, the probabilities
    (softmax of each frame's logits in float64, averaged over distinct frames), the margin
    and the true-class score."""
    label = int(store.label[video])
    seen: list[int] = []
    probs, margins, gts = [], [], []
    for f in frames:
        if f not in seen:
            seen.append(f)
        logits = store.logits(np.full(len(seen), video), np.array(seen)).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = (e / e.sum(axis=1, keepdims=True)).mean(axis=0)
        probs.append(p)
        margins.append(float(margin_fn(p, label)))
        gts.append(float(p[label]))
    return np.array(probs), np.array(margins), np.array(gts)
