"""adaframe_env.harness.paper.stop_signals: the entropy stop rule."""

from __future__ import annotations

import numpy as np

from adaframe_env.harness.paper.stop_signals import entropy_exit


def test_entropy_exit_stops_at_the_first_confident_step_else_at_k():
    flat, sure = [0.5, 0.5], [0.99, 0.01]
    probs = np.array([[flat, sure, flat], [flat, flat, flat], [sure, flat, sure]])
    assert entropy_exit(probs, 0.2).tolist() == [2, 3, 1]
    assert entropy_exit(probs, 0.0).tolist() == [3, 3, 3]  # nothing is below 0 nats
