"""The AdaFrame studies (benchmarks/adaframe_diagnostics.py, benchmarks/evidence_toys.py): the
diagnostics report, and the location policy learning where the evidence is."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaframe_env.env import open_store

pytestmark = pytest.mark.slow  # both train an AdaFrame agent


def test_diagnostics_report_the_objective_on_train_for_own_and_uniform_frames(tiny_cache):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from adaframe_diagnostics import diagnose

    out = diagnose(open_store(tiny_cache), {"epochs": 1}, budget=4, seed=0)
    own, uniform = out["objective_on_train"]["own"], out["objective_on_train"]["uniform"]
    for run in (own, uniform):  # the margin return is a discounted sum of margin gains: >= 0
        assert 0 <= run["return"] <= 2 and 0 <= run["top1"] <= 100  # margins lie in [-1, 1]
    assert len(out["val_map_by_epoch"]) == 1 and len(out["location_mean_by_step"]) == 4


@pytest.mark.parametrize("where", ["early", "late"])
def test_the_location_policy_learns_where_the_evidence_is(tmp_path, where, single_torch_thread):
    """The paper's Gaussian policy and margin reward, trained through the env, move the policy
    mean into the 40% of the video that holds the evidence (and out of the middle, where it
    starts): the learning machinery works when there is a place to learn."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from evidence_toys import fixed_place_cache, train

    store = open_store(fixed_place_cache(tmp_path / f"{where}.h5", where))
    agent = train(store, {}, seed=0, epochs=20)
    looked = agent.episodes(store, store.videos("test")).location[:, 1:].mean().item()
    assert looked > 0.6 if where == "late" else looked < 0.4, looked
