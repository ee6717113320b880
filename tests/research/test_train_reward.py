"""research/train_reward.py, run as a user runs it, on the tiny preset.

The study's finding (docs/findings/train_reward.md): with cross-fitted train logits, the env's
margin reward on the train split ranks first the policy that looks at the evidence (the
ground-truth oracle), the policy that test accuracy also ranks first; and the return is
``max_t m_t - m_1`` (it telescopes), which is why a policy whose margin peaks early is paid
as much as one whose margin ends high.

The test recomputes the train returns and final margins of the two deterministic policies
(uniform and oracle) from the cache alone: the frames a location selects
(``rint(l * (T - 1))``), the mean softmax over the distinct frames seen so far, the margin of
that mean, and ``max_t m_t - m_1``. No env, no reward kernel: if the study's numbers match, they
measure what its page says they measure.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

from adaframe_env.data.store import FeatureStore
from baselines.oracle import oracle_frames

K = 5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tiny_cache, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("train_reward") / "rows.json"
    cmd = [sys.executable, str(REPO / "research" / "train_reward.py"), "--dataset",
           str(tiny_cache), "--budget", str(K), "--json", str(out)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(out.read_text())


def margins_along(store: FeatureStore, video: int, frames: np.ndarray) -> np.ndarray:
    """m_t for t = 1..len(frames): the margin of the mean softmax over the distinct frames
    among the first t (a revisited frame adds nothing)."""
    logits = store.lookup("logits", np.full(len(frames), video), frames).astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    label = int(store.label[video])
    total, seen, out = np.zeros(probs.shape[1]), set(), []
    for f, p in zip(frames.tolist(), probs, strict=True):
        if f not in seen:
            seen.add(f)
            total += p
        running = total / len(seen)
        out.append(running[label] - np.delete(running, label).max())
    return np.array(out)


def locations(store: FeatureStore, video: int, policy: str) -> np.ndarray:
    """The K - 1 locations after frame 0, as the study's docstring defines the policy."""
    if policy == "uniform":  # the centres of K - 1 equal segments
        return (2 * np.arange(K - 1) + 1) / (2 * (K - 1))
    frames = np.resize(oracle_frames(store, video, K - 1), K - 1)
    return frames / max(int(store.length[video]) - 1, 1)


@pytest.mark.parametrize("policy", ["uniform", "oracle"])
def test_the_train_return_is_the_best_margin_gain_of_the_policys_frames(study, tiny_cache, policy):
    store = FeatureStore(tiny_cache)
    returns, finals = [], []
    for video in store.videos("train"):
        t_minus_1 = int(store.length[video]) - 1
        frames = np.rint(np.concatenate([[0.0], locations(store, video, policy)]) * t_minus_1)
        m = margins_along(store, int(video), frames.astype(np.int64))
        returns.append(m.max() - m[0])
        finals.append(m[-1])
    row = study[policy]["train"]
    assert row["return"] == pytest.approx(np.mean(returns), abs=1e-5)
    assert row["final_margin"] == pytest.approx(np.mean(finals), abs=1e-5)


def test_the_oracle_earns_the_highest_train_return_and_the_best_test_map(study):
    by_return = max(study, key=lambda name: study[name]["train"]["return"])
    by_map = max(study, key=lambda name: study[name]["test"]["map"])
    summary = {n: (round(r["train"]["return"], 3), round(r["test"]["map"], 1))
               for n, r in study.items()}  # fmt: skip
    assert set(study) == {"oracle", "uniform", "random", "middle"}
    assert by_return == "oracle" and by_map == "oracle", summary
