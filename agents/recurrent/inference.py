"""Adaptive lookahead inference (paper Algorithm 2): when to stop from the predicted utility."""

from __future__ import annotations

import numpy as np


def lookahead_exit(utility: np.ndarray, mu: float, budget: int) -> np.ndarray:
    """Algorithm 2 for a batch: (B, K) predicted utilities -> the 1-based exit step per video.

    A video exits after the step at which its count of steps with ``V_max - V_t > mu`` reaches
    ``p`` (``K // 2 + 1`` if ``mu < 0.7``, else ``K``), ``V_max`` being the running max of its
    utilities, starting at 0; otherwise after step K. Uses only the utilities.
    """
    patience = budget // 2 + 1 if mu < 0.7 else budget
    b, k = utility.shape
    v_max, count = np.zeros(b), np.zeros(b, np.int64)
    exit_step = np.full(b, k, np.int64)
    running = np.ones(b, bool)
    for t in range(k):
        count += running & (v_max - utility[:, t] > mu)
        v_max = np.maximum(v_max, utility[:, t])
        stop = running & (count >= patience)
        exit_step[stop] = t + 1
        running &= ~stop
    return exit_step
