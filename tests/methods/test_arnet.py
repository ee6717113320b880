"""arnet-K: AR-Net-style skip / light / heavy decisions per uniform frame (agents/arnet.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cfg

from adaframe_env.data.store import FeatureStore
from adaframe_env.harness.registry import list_agents, make_agent
from adaframe_env.harness.runner import run_agent
from agents.arnet import ACTIONS, straight_through_gumbel, video_prediction
from baselines.sampling import uniform_frames

K = 5


def short(lam: float, seed: int = 0, updates: int = 300):
    """A run config of a short schedule (6 val evaluations, no early stop)."""
    return run_cfg(budget=K, epochs=None, updates=updates, eval_every=50, patience=0, seed=seed,
                   settings={"lam": str(lam)})  # fmt: skip


def trained(store, config):
    agent = make_agent(f"arnet-{K}", config)
    agent.setup(store, config)
    agent.fit(store, store.videos("train"), config)
    return agent


@pytest.fixture(scope="module")
def store(tiny_cache):
    return FeatureStore(tiny_cache)


@pytest.fixture(scope="module")
def accurate(store):
    """lam=0: accuracy only."""
    torch.set_num_threads(1)
    return trained(store, short(0.0))


@pytest.fixture(scope="module")
def frugal(store):
    """lam=2: two K-heavy-frame budgets' worth of cross-entropy per video is not worth it."""
    torch.set_num_threads(1)
    return trained(store, short(2.0))


def test_video_prediction_means_the_frames_not_skipped():
    onehot = torch.eye(3)
    # video 0: skip, light, heavy; video 1: skip everywhere
    actions = torch.stack([onehot[[0, 1, 2]], onehot[[0, 0, 0]]])
    p_light = torch.tensor([[[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]],
                            [[0.2, 0.8], [0.4, 0.6], [0.3, 0.7]]])  # fmt: skip
    p_heavy = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.2, 0.8]],
                            [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])  # fmt: skip
    pred = video_prediction(actions, p_light, p_heavy)
    assert pred[0].tolist() == pytest.approx([(0.6 + 0.2) / 2, (0.4 + 0.8) / 2])
    # every frame skipped: the mean light probabilities of the K frames
    assert pred[1].tolist() == pytest.approx([0.3, 0.7])


def test_straight_through_gumbel_is_hard_forward_and_soft_backward():
    logits = torch.zeros(4, 5, 3, requires_grad=True)
    a = straight_through_gumbel(logits, 1.0, torch.Generator().manual_seed(0))
    assert set(a.detach().unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a.detach().sum(-1), torch.ones(4, 5))
    (a[..., 2] * torch.arange(5.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    b = straight_through_gumbel(logits, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)  # the noise comes from the generator


def test_it_trains_and_logs_a_curve(accurate):
    rows = accurate.log.rows
    assert [r["update"] for r in rows] == [50, 100, 150, 200, 250, 300]
    assert all(np.isfinite(r["val_map"]) for r in rows)
    assert rows[-1]["tau"] < rows[0]["tau"] < 5.0  # the temperature decays
    assert rows[-1]["ce"] < rows[0]["ce"]  # the policy learns what to look at


def test_lam_is_the_cost_knob(store, accurate, frugal):
    test = store.videos("test")
    heavy = {name: np.mean([len(r.frames) for r in agent.evaluate(store, test, short(0))])
             for name, agent in (("accurate", accurate), ("frugal", frugal))}  # fmt: skip
    assert heavy["accurate"] > heavy["frugal"] + 1.0, heavy
    assert frugal.log.rows[-1]["gflops"] < accurate.log.rows[-1]["gflops"]


def test_evaluation_is_deterministic_and_training_is_for_a_seed(store, accurate):
    test = store.videos("test")
    a, b = accurate.evaluate(store, test, short(0)), accurate.evaluate(store, test, short(0))
    assert all(np.array_equal(x.scores, y.scores) for x, y in zip(a, b, strict=True))
    one, two = (trained(store, short(0.5, seed=3, updates=40)) for _ in range(2))
    for (k, x), y in zip(one.model.state_dict().items(), two.model.state_dict().values(),
                         strict=True):  # fmt: skip
        assert torch.equal(x, y), k


def test_save_load_round_trip_gives_identical_scores(store, accurate, tmp_path):
    accurate.save(tmp_path)
    assert (tmp_path / "curves.csv").exists() and (tmp_path / "curves.png").exists()
    again = make_agent(f"arnet-{K}", short(0.0))
    again.setup(store, short(0.0))
    again.load(tmp_path)
    test = store.videos("test")
    x, y = accurate.evaluate(store, test, short(0)), again.evaluate(store, test, short(0))
    for a, b in zip(x, y, strict=True):
        assert np.array_equal(a.scores, b.scores) and np.array_equal(a.frames, b.frames)


@pytest.fixture(scope="module")
def harness_rows(tiny_cache, tmp_path_factory):
    """arnet-5 at lam=0 and random, both at K=5, on the tiny cache's test split."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("arnet_results")
    cfg = run_cfg(budget=K, epochs=None, settings={"lam": "0"})  # the default schedule
    (arnet,) = run_agent(f"arnet-{K}", str(tiny_cache), cfg, out)
    (rand,) = run_agent("random", str(tiny_cache), run_cfg(budget=K), out)
    return arnet, rand


def test_it_beats_random_at_the_same_budget(harness_rows):
    arnet, rand = harness_rows
    assert arnet["map"] > rand["map"], (arnet["map"], rand["map"])
    assert arnet["frames_mean"] <= K


def test_gflops_follow_the_cost_rule(store, harness_rows):
    arnet, _ = harness_rows
    records = json.loads(Path(arnet["json_path"]).with_name(arnet["records"]).read_text())
    policy = make_agent(f"arnet-{K}")
    policy.setup(store, run_cfg())
    step = policy.model.frame_gflops()
    length = dict(zip(store.video_id, store.length, strict=True))
    assert 0 < step < 1e-3  # the GRU is tiny next to a heavy frame
    for r in records:
        passed = min(K, int(length[r["id"]]))
        # the light view is charged once per passed frame, whatever the action
        assert r["light_frames"] == passed
        assert set(r["frame_indices"]) <= set(uniform_frames(int(length[r["id"]]), K).tolist())
        cost = (len(set(r["frame_indices"])) * store.gflops_per_frame
                + passed * store.light_gflops_per_frame + passed * step)  # fmt: skip
        assert r["gflops"] == pytest.approx(cost, rel=1e-9)


def test_name_resolves_and_bad_settings_are_one_line_errors():
    agent = make_agent("arnet-8", run_cfg(settings={"lam": "0.25"}))
    assert agent.k == 8 and agent.settings.lam == 0.25 and agent.hparams()["version"] >= 1
    assert len(ACTIONS) == 3
    assert any(usage == "arnet-K" for usage, _ in list_agents())
    for name, settings, match in [
        ("arnet-5", {"lam": "-1"}, "lam=-1"),
        ("arnet-5", {"lam": "much"}, "expected a float"),
        ("arnet-5", {"hidden": "0"}, "hidden=0"),
        ("arnet-5", {"tau_decay": "1.5"}, "tau_decay"),
        ("arnet-5", {"temperature": "1"}, "no setting 'temperature'"),
        ("arnet-0", {}, "K must be at least 1"),
    ]:
        with pytest.raises(ValueError, match=match) as e:
            make_agent(name, run_cfg(settings=settings))
        assert "\n" not in str(e.value)
