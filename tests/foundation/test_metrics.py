"""Video-level metrics: mAP against a hand-computed case, softmax, top-1."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from adaframe_env.metrics import mean_average_precision, softmax, top1_accuracy


def test_map_hand_computed():
    # 4 videos, 3 classes; class 2 has no positive video and is left out.
    labels = np.array([0, 1, 0, 1])
    scores = np.array(
        [
            [0.9, 0.1, 0.5],
            [0.8, 0.7, 0.2],
            [0.3, 0.2, 0.9],
            [0.1, 0.05, 0.4],
        ]
    )
    # class 0 ranking: v0 (+), v1 (-), v2 (+), v3 (-): AP = (1/1 + 2/3) / 2
    # class 1 ranking: v1 (+), v2 (-), v0 (-), v3 (+): AP = (1/1 + 2/4) / 2
    expected = ((1 + 2 / 3) / 2 + (1 + 2 / 4) / 2) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no positive class" warning from sklearn
        assert mean_average_precision(scores, labels) == pytest.approx(expected)


def test_map_skips_classes_without_positives_whatever_their_scores():
    labels = np.array([0, 1, 0, 1])
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.0], [0.8, 0.2, 0.0], [0.1, 0.6, 0.0]])
    base = mean_average_precision(scores, labels)
    assert base == pytest.approx(1.0)
    scores[:, 2] = [5.0, -1.0, 3.0, 0.0]
    assert mean_average_precision(scores, labels) == pytest.approx(base)


def test_map_perfect_and_reversed():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 4)
    perfect = np.eye(5)[labels] + 0.01 * rng.random((20, 5))
    assert mean_average_precision(perfect, labels) == pytest.approx(1.0)
    assert mean_average_precision(-perfect, labels) < 0.5


def test_map_ties_and_float16_input():
    labels = np.array([0, 1])
    scores = np.array([[1, 1], [1, 1]], dtype=np.float16)
    # All scores tied: each class's single positive shares rank with the negative -> AP 1/2.
    assert mean_average_precision(scores, labels) == pytest.approx(0.5)


def test_softmax_rows_sum_to_one():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 5, (50, 7)).astype(np.float16)
    p = softmax(x)
    assert p.dtype == np.float32 and p.shape == x.shape
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    assert (p >= 0).all()
    assert np.array_equal(p.argmax(-1), x.astype(np.float32).argmax(-1))


def test_softmax_is_stable_and_shift_invariant():
    x = np.array([[60000.0, 0.0, -60000.0], [1.0, 2.0, 3.0]], dtype=np.float16)
    p = softmax(x)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(softmax(x[1:] + np.float16(100)), p[1:], rtol=1e-3)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p[1], e / e.sum(), rtol=1e-6)


def test_softmax_other_axis_does_not_modify_input():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    before = x.copy()
    p = softmax(x, axis=0)
    np.testing.assert_allclose(p.sum(0), 1.0, rtol=1e-6)
    assert np.array_equal(x, before)


def test_top1_accuracy():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert top1_accuracy(scores, np.array([1, 0, 0, 0])) == pytest.approx(0.75)
