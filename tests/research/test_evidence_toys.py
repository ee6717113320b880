"""research/evidence_toys.py ``fixed``, run as a user runs it: the paper's Gaussian location
policy and margin reward, trained through the env, move the policy mean into the part of the
video that holds the evidence (and out of the middle, where it starts). The learning machinery
works when there is one place to learn (docs/findings/evidence_toys.md).

Where the evidence is comes from the cache the study wrote, not from the study's own
description: the normalized positions of the frames with ground-truth relevance > 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

from adaframe_env.data.store import FeatureStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("evidence_toys")
    cmd = [sys.executable, str(REPO / "research" / "evidence_toys.py"), "fixed", "--seeds", "0",
           "--epochs", "20", "--out", str(out), "--json", str(out / "rows.json")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as the single_torch_thread fixture
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads((out / "rows.json").read_text())


def evidence_positions(path: str, split: str) -> np.ndarray:
    """Positions (f + 0.5) / T of the frames of ``split`` with relevance > 0."""
    store = FeatureStore(path)
    out = []
    for v in store.videos(split):
        n = int(store.length[v])
        relevance = store.video_frames("relevance", int(v))
        out.append((np.flatnonzero(relevance > 0) + 0.5) / n)
    return np.concatenate(out)


@pytest.mark.parametrize("where", ["early", "late"])
def test_the_location_policy_learns_where_the_evidence_is(study, where):
    row = study[where]
    evidence = evidence_positions(row["cache"], "test")
    # the toy is what it says: the evidence sits at one end, the middle holds none
    assert evidence.max() <= 0.45 if where == "early" else evidence.min() >= 0.55
    looked = float(np.mean(row["seeds"]["0"]["location_by_step"][1:]))  # after frame 0
    assert evidence.min() <= looked <= evidence.max(), (looked, evidence.min(), evidence.max())
