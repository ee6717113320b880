"""Which frames a fixed-budget baseline looks at: K uniform (U), K random (R), or all."""

from __future__ import annotations

import numpy as np


def uniform_frames(length: int, k: int) -> np.ndarray:
    """Centres of ``k`` equal segments of a ``length``-frame video (all frames if k >= length)."""
    if k >= length:
        return np.arange(length)
    return (2 * np.arange(k) + 1) * length // (2 * k)


def jittered_uniform_frames(length: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame inside each of ``k`` equal segments (TSN-style training augmentation:
    the same temporal layout as :func:`uniform_frames`, new frames every epoch)."""
    if k >= length:
        return np.arange(length)
    start = np.arange(k) * length // k
    end = (np.arange(k) + 1) * length // k
    return start + (rng.random(k) * (end - start)).astype(np.int64)


def random_frames(length: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct frames drawn uniformly at random, in temporal order."""
    if k >= length:
        return np.arange(length)
    return np.sort(rng.choice(length, k, replace=False))


def select_frames(
    lengths: np.ndarray, strategy: str, k: int | None, seed: int = 0
) -> list[np.ndarray]:
    """Frame indices per video for ``strategy`` in {"uniform", "random", "all"}."""
    rng = np.random.default_rng(seed)
    if strategy == "all":
        return [np.arange(t) for t in lengths]
    if k is None or k < 1:
        raise ValueError(f"strategy {strategy!r} needs a frame count k >= 1, got {k}")
    if strategy == "uniform":
        return [uniform_frames(int(t), k) for t in lengths]
    if strategy == "random":
        return [random_frames(int(t), k, rng) for t in lengths]
    raise ValueError(f"unknown sampling strategy {strategy!r}; use uniform, random or all")
