"""The leaderboard: budget rule, bootstrap CIs, the IQM aggregate, reuse of finished runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaframe_env.cli.leaderboard import main as cli_main
from adaframe_env.harness.paper import leaderboard as lb
from adaframe_env.metrics import mean_average_precision


def _scores(n: int, c: int, rng, signal: float = 1.0):
    labels = np.arange(n) % c
    scores = rng.standard_normal((n, c))
    scores[np.arange(n), labels] += signal
    return scores, labels


def test_weighted_map_is_the_harness_map_of_the_resample():
    rng = np.random.default_rng(0)
    scores, labels = _scores(60, 6, rng)
    assert lb.weighted_map(scores, labels, np.ones((1, 60)))[0] == pytest.approx(
        mean_average_precision(scores, labels)
    )
    tied = np.round(scores, 0)  # many ties: precision at a threshold counts every tied video
    assert lb.weighted_map(tied, labels, np.ones((1, 60)))[0] == pytest.approx(
        mean_average_precision(tied, labels)
    )
    w = rng.multinomial(60, np.full(60, 1 / 60))  # a bootstrap draw = those videos repeated
    rows = np.repeat(np.arange(60), w)
    assert lb.weighted_map(scores, labels, w[None])[0] == pytest.approx(
        mean_average_precision(scores[rows], labels[rows])
    )


def test_ci_contains_the_mean_and_shrinks_with_more_videos():
    rng = np.random.default_rng(1)
    widths = []
    for n in (60, 600):
        seeds = [_scores(n, 6, rng) for _ in range(3)]
        labels = seeds[0][1]
        reps = lb.bootstrap_map([s for s, _ in seeds], labels, reps=200)
        mean = np.mean([mean_average_precision(s, labels) for s, _ in seeds])
        lo, hi = np.percentile(reps, [2.5, 97.5])
        assert lo < mean < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~ 1 / sqrt(10) of it


def test_identical_seeds_still_get_a_video_interval():
    rng = np.random.default_rng(2)
    scores, labels = _scores(100, 5, rng)
    reps = lb.bootstrap_map([scores] * 3, labels, reps=200)  # a deterministic method
    assert np.percentile(reps, 97.5) - np.percentile(reps, 2.5) > 0.01


def _point(method, label, gflops, m):
    return lb.Point(method, label, False, [0], [m], [gflops], [], map=m, gflops_mean=gflops)


def test_budget_rule_best_map_within_the_budget():
    points = [_point("a", "a-2", 15, 0.60), _point("a", "a-3", 19, 0.58),
              _point("a", "a-5", 39, 0.70), _point("a", "a-10", 81, 0.90),
              _point("b", "b-5", 45, 0.80)]  # fmt: skip
    table = lb.budget_table(points, (20, 40, 80))
    assert table["a"][20].label == "a-2"  # the best of those that fit, not the largest
    assert table["a"][40].label == "a-5" and table["a"][80].label == "a-5"  # 81 > 80
    assert table["b"][20] is None and table["b"][40] is None and table["b"][80].label == "b-5"


def test_leaderboard_on_tiny_runs_reuses_and_aggregates(harness_env, monkeypatch, capsys):
    cache, out = harness_env
    monkeypatch.setattr(lb, "KS", (2, 5))
    methods = [(m, pat, (2, 5) if ks != (None,) else ks, mu) for m, pat, ks, mu in lb.METHODS
               if m in ("random", "uniform", "mgsampler", "avgpool-all")]  # fmt: skip
    monkeypatch.setattr(lb, "METHODS", (*methods, ("nosuch", "nosuch-{k}", (2,), None)))
    kw = dict(datasets=[str(cache)], seeds=(0, 1, 2), out=out, reps=200, progress=False)
    data = lb.leaderboard(**kw)
    assert "skipping nosuch: the registry does not know nosuch-2" in capsys.readouterr().out
    (ds,) = data["datasets"]
    assert {p["method"] for p in data["datasets"][ds]["points"]} == {
        "random", "uniform", "mgsampler", "avgpool-all"}  # fmt: skip
    points = {p["label"]: p for p in data["datasets"][ds]["points"]}
    for p in points.values():
        assert len(p["seeds"]) == 3 and p["ci"][0] <= p["map"] <= p["ci"][1]
    for method, cells in data["datasets"][ds]["table"].items():
        for budget, label in cells.items():
            mine = [p for p in points.values() if p["method"] == method
                    and p["gflops_mean"] <= float(budget)]  # fmt: skip
            assert (label is None) == (not mine)
            if label:
                assert points[label]["map"] == max(p["map"] for p in mine)
    assert {"uniform", "mgsampler"} <= set(data["aggregate"])
    for cols in data["aggregate"].values():
        for iqm, lo, hi in cols.values():
            assert lo <= iqm + 1e-9 and iqm <= hi + 1e-9
    for name in ("leaderboard.md", "leaderboard.json", f"leaderboard-{ds}.png"):
        assert (out / name).stat().st_size > 0
    assert "| mgsampler |" in (out / "leaderboard.md").read_text()

    # a second call finds every run finished: nothing is run again, same numbers
    calls = []
    monkeypatch.setattr(lb, "run_agent", lambda *a, **k: calls.append(a) or [])
    again = lb.leaderboard(**kw)
    assert calls == []
    assert again["datasets"] == data["datasets"]
    written = json.loads((out / "leaderboard.json").read_text())["datasets"]
    assert written == json.loads(json.dumps(data["datasets"]))


def test_bad_arguments_are_one_line(capsys):
    with pytest.raises(ValueError, match="unknown leaderboard method") as e:
        lb.entries(["nosuch"])
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="distinct"):
        lb.leaderboard(datasets=[], seeds=(0, 0))
    assert cli_main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("mgsampler", "ocsampler", "frameexit", "arnet", "adaframe", "scsampler"):
        assert name in listed
    with pytest.raises(SystemExit):
        cli_main(["--seeds", "0,x"])
