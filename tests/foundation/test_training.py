"""The shared training schedule (adaframe_env.protocol.training): updates, val, early stop."""

from __future__ import annotations

import json
import math

import pytest
import torch

from adaframe_env.protocol import RunConfig
from adaframe_env.protocol.training import (
    Schedule,
    TrainingLog,
    resolve_schedule,
    train_on_schedule,
    write_curves,
)


class Counter(torch.nn.Module):
    """A model whose one weight counts the updates it has had."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def step(self):
        with torch.no_grad():
            self.w += 1
        return {"loss": 1.0 / self.w.item()}


def run(schedule, val_of_update, **kw):
    model = Counter()
    log = train_on_schedule(schedule, model.step, lambda: val_of_update(int(model.w)), model,
                            progress=False, **kw)  # fmt: skip
    return model, log


def test_keeps_the_best_val_weights_and_stops_after_patience():
    vals = {2: 0.5, 4: 0.7, 6: 0.6, 8: 0.65, 10: 0.9}  # best at 4, then two without a new best
    model, log = run(Schedule(updates=10, eval_every=2, patience=2), vals.get)
    assert [r["update"] for r in log.rows] == [2, 4, 6, 8]  # update 10 never ran
    assert log.kept_update == 4 and log.best_val == 0.7
    assert int(model.w) == 4  # the best-val weights were restored
    assert "did not improve for 2" in log.reason and "update 4" in log.summary()
    # the row's metrics are the means over the updates since the previous row
    assert log.rows[0]["loss"] == pytest.approx((1 / 1 + 1 / 2) / 2)


def test_patience_zero_runs_to_the_end_and_evaluates_after_the_last_update():
    model, log = run(Schedule(updates=7, eval_every=3, patience=0), lambda u: -u)
    assert [r["update"] for r in log.rows] == [3, 6, 7]
    assert log.kept_update == 3 and int(model.w) == 3 and log.reason == "reached 7 updates"


def test_keep_last_and_no_val_split_keep_the_final_weights():
    model, log = run(Schedule(updates=6, eval_every=2, patience=0, keep="last"), lambda u: -u)
    assert int(model.w) == 6 and log.kept_update == 6
    model, log = run(Schedule(updates=6, eval_every=2, patience=1), lambda u: math.nan)
    assert int(model.w) == 6 and log.kept_update == 6 and len(log.rows) == 3  # never stops


def test_decide_makes_the_val_score_the_one_every_process_uses():
    # under torchrun only rank 0 validates; decide (broadcast) hands its score to every rank
    model, log = run(Schedule(updates=4, eval_every=1, patience=1), lambda u: math.nan,
                     decide=lambda v: 0.5)  # fmt: skip
    assert log.kept_update == 1 and int(model.w) == 1 and len(log.rows) == 2


def test_resolve_schedule_overrides_and_the_fixed_epoch_schedule():
    defaults = Schedule(updates=1000, eval_every=100, patience=5)
    assert resolve_schedule(defaults, RunConfig(), 30) == defaults
    assert resolve_schedule(defaults, RunConfig(updates=50, patience=0), 30) == Schedule(50, 100, 0)
    assert resolve_schedule(defaults, RunConfig(epochs=3), 30) == Schedule(90, 30, 0, "last")


@pytest.mark.parametrize("bad", [dict(updates=0), dict(eval_every=0), dict(patience=-1),
                                 dict(keep="first")])  # fmt: skip
def test_a_bad_schedule_is_refused(bad):
    with pytest.raises(ValueError):
        Schedule(**{"updates": 10, "eval_every": 2, "patience": 1, **bad})


def test_run_config_refuses_epochs_with_updates_and_takes_patience_zero():
    with pytest.raises(ValueError, match="not both"):
        RunConfig(epochs=2, updates=10)
    assert RunConfig(patience=0).patience == 0
    with pytest.raises(ValueError, match=r"RunConfig\.patience must be an integer >= 0"):
        RunConfig(patience=-1)


def test_write_curves_marks_the_kept_update(tmp_path):
    _, log = run(Schedule(updates=6, eval_every=2, patience=1), {2: 0.5, 4: 0.4}.get)
    write_curves(log, tmp_path, "counter")
    saved = json.loads((tmp_path / "curves.json").read_text())
    assert saved["kept_update"] == 2 and "did not improve" in saved["reason"]
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "curves.csv").read_text().splitlines()[0] == "update,loss,val_map,seconds"
    write_curves(TrainingLog(), tmp_path / "none", "empty")  # nothing trained: nothing written
    assert not (tmp_path / "none").exists()
