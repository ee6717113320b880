"""benchmarks/stop_signals.py: the entropy stop rule."""

from __future__ import annotations

import sys

import numpy as np
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from stop_signals import entropy_exit  # noqa: E402


def test_entropy_exit_stops_at_the_first_confident_step_else_at_k():
    flat, sure = [0.5, 0.5], [0.99, 0.01]
    probs = np.array([[flat, sure, flat], [flat, flat, flat], [sure, flat, sure]])
    assert entropy_exit(probs, 0.2).tolist() == [2, 3, 1]
    assert entropy_exit(probs, 0.0).tolist() == [3, 3, 3]  # nothing is below 0 nats
