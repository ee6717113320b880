"""research/adaframe_diagnostics.py, run as a user runs it, on the tiny preset.

The study's first finding (docs/findings/adaframe_diagnostics.md) compares AdaFrame's own
frames with uniform ones: "the recognizer's AvgPooling over the agent's frames gets 73.2,
against 79.0 over uniform frames" (first frame at location 0, as the agent has it). The test
recomputes that uniform column from the cache alone: frame 0, then frame ``rint(l (T - 1))``
of each location ``l = (i + 0.5) / K``, i = 1 .. K - 1, and the mean softmax of their logits.
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
from adaframe_env.metrics import mean_average_precision

K = 4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tiny_cache) -> dict:
    cmd = [sys.executable, str(REPO / "research" / "adaframe_diagnostics.py"), str(tiny_cache),
           json.dumps([{"updates": 2, "eval_every": 1}]), "--budget", str(K)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    (line,) = res.stdout.strip().splitlines()
    return json.loads(line)


def test_avgpool_on_uniform_is_the_recognizer_on_frame_0_and_the_uniform_locations(
    study, tiny_cache
):
    store = FeatureStore(tiny_cache)
    val = store.videos("val")
    locations = (np.arange(K) + 0.5) / K
    scores = []
    for v in val:
        frames = np.rint(locations * (int(store.length[v]) - 1)).astype(np.int64)
        frames[0] = 0  # Algorithm 1: the first frame is at location 0
        logits = store.lookup("logits", np.full(K, v), frames).astype(np.float64)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        scores.append((probs / probs.sum(1, keepdims=True)).mean(0))
    expected = round(100 * mean_average_precision(np.array(scores), store.label[val]), 1)
    assert study["avgpool_on_uniform"] == expected
