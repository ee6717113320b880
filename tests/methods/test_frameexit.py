"""FrameExit (agents/frameexit.py): order, training, exits, cost, checkpoint, names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cfg

from adaframe_env.data.store import FeatureStore
from adaframe_env.harness.registry import list_agents, make_agent
from adaframe_env.harness.runner import run_agent
from agents.frameexit import FrameExitAgent, coarse_to_fine_locations, ordered_frames

K = 5
#: a short schedule for the tiny preset: 60 updates per stage, val every 20, no early stop
SHORT = dict(epochs=None, updates=60, eval_every=20, patience=0)


@pytest.fixture(scope="module")
def store(tiny_cache):
    return FeatureStore(tiny_cache)


def trained(store, **settings) -> FrameExitAgent:
    cfg = run_cfg(budget=K, settings={k: str(v) for k, v in settings.items()}, **SHORT)
    agent = make_agent(f"frameexit-{K}", cfg)
    agent.setup(store, cfg)
    agent.fit(store, store.videos("train"), cfg)
    return agent


def test_coarse_to_fine_order():
    assert coarse_to_fine_locations(7).tolist() == [0.5, 0.25, 0.75, 0.125, 0.375, 0.625, 0.875]
    assert coarse_to_fine_locations(8)[-1] == 1 / 16
    # frame round(loc * (T - 1)) of the design's location rule
    assert ordered_frames(np.array([11, 101]), 3).tolist() == [[5, 2, 8], [50, 25, 75]]
    with pytest.raises(ValueError, match="at least 1"):
        coarse_to_fine_locations(0)


def test_it_trains_both_stages_and_logs_rows(store, single_torch_thread):
    agent = trained(store)
    rows, gate_rows = agent.log.rows, agent.gate_log.rows
    assert [r["update"] for r in rows] == [20, 40, 60] == [r["update"] for r in gate_rows]
    assert rows[-1]["loss"] < rows[0]["loss"]  # the classifier's cross-entropy falls
    assert gate_rows[-1]["gate_bce"] < gate_rows[0]["gate_bce"]  # and the gates' BCE
    assert all(np.isfinite(r["val_map"]) for r in rows + gate_rows)
    assert 0 < rows[-1]["val_map"] <= 1  # stage 1 validates by mAP


def test_beta_trades_frames_for_confidence(store, single_torch_thread):
    # same seed, so the same classifier: only the pseudo labels of the gates differ
    strict, loose = trained(store, beta=0.05), trained(store, beta=2.0)
    val = store.videos("val")
    steps_strict = strict.exits(store, val)[0]
    steps_loose = loose.exits(store, val)[0]
    assert steps_strict.mean() > steps_loose.mean()
    assert ((1 <= steps_strict) & (steps_strict <= K)).all()


def test_beats_random_at_the_same_budget(harness_env, single_torch_thread):
    cache, out = harness_env
    (row,) = run_agent(f"frameexit-{K}", str(cache), run_cfg(budget=K, **SHORT), out)
    (rand,) = run_agent("random", str(cache), run_cfg(budget=K), out)
    assert row["map"] > rand["map"], (row["map"], rand["map"])
    assert row["frames_mean"] <= K and rand["frames_mean"] <= K


def test_gflops_follow_the_cost_rule(harness_env, single_torch_thread):
    # a strict beta, so that videos exit at the first step, in between and at step K
    cache, out = harness_env
    cfg = run_cfg(budget=K, settings={"beta": "0.05"}, **SHORT)
    (row,) = run_agent(f"frameexit-{K}", str(cache), cfg, out)
    store = FeatureStore(cache)
    agent = make_agent(f"frameexit-{K}", cfg)
    agent.setup(store, cfg)
    step, gate = agent.model.step_gflops(), agent.model.gate_gflops()
    assert step > 0 and gate > 0
    records = json.loads(Path(row["json_path"]).with_name(row["records"]).read_text())
    assert len({r["exit_step"] for r in records}) > 1 and K in {r["exit_step"] for r in records}
    length = dict(zip(store.video_id, store.length, strict=True))
    for r in records:
        n = r["exit_step"]
        assert 1 <= n <= K
        # the frames seen are the first n of the coarse-to-fine order
        order = ordered_frames(np.array([length[r["id"]]]), K)[0]
        assert r["frame_indices"] == order[:n].tolist()
        distinct = len(set(r["frame_indices"]))
        expected = distinct * row["gflops_per_frame"] + n * step + min(n, K - 1) * gate
        assert r["frames"] == distinct
        assert r["gflops"] == pytest.approx(expected, rel=1e-9)
    assert row["exit_step_mean"] == pytest.approx(np.mean([r["exit_step"] for r in records]))


def test_save_load_round_trip_and_seed_determinism(store, tmp_path, single_torch_thread):
    agent = trained(store)
    test = store.videos("test")
    before = agent.evaluate(store, test, run_cfg(budget=K))
    agent.save(tmp_path)
    assert (tmp_path / "curves.csv").exists() and (tmp_path / "gates" / "curves.csv").exists()

    fresh = make_agent(f"frameexit-{K}", run_cfg(budget=K))
    fresh.setup(store, run_cfg(budget=K, seed=1))  # other initial weights, then loaded
    fresh.load(tmp_path)
    after = fresh.evaluate(store, test, run_cfg(budget=K))
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a.scores, b.scores) and a.exit_step == b.exit_step
        assert np.array_equal(a.frames, b.frames) and a.extra_gflops == b.extra_gflops

    again = trained(store).evaluate(store, test, run_cfg(budget=K))  # same seed, same model
    assert all(np.array_equal(a.scores, b.scores) for a, b in zip(before, again, strict=True))


def test_name_settings_and_errors():
    assert make_agent("frameexit-4").k == 4
    assert make_agent("frameexit", run_cfg(budget=7)).k == 7
    assert any(usage.startswith("frameexit") for usage, _ in list_agents())
    agent = make_agent("frameexit-3", run_cfg(settings={"beta": "0.2"}))
    assert agent.settings.beta == 0.2 and agent.hparams()["beta"] == 0.2
    assert "version" in agent.hparams()
    for bad, match in [({"beta": "-1"}, "beta"), ({"beta": "nan"}, "beta"),
                       ({"gate_input": "pixels"}, "gate_input"), ({"updates": "0"}, "updates"),
                       ({"dropout": "1"}, "dropout"), ({"nope": "1"}, "no setting")]:  # fmt: skip
        with pytest.raises(ValueError, match=match) as e:
            make_agent("frameexit-3", run_cfg(settings=bad))
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="K must be"):
        make_agent("frameexit-0")
