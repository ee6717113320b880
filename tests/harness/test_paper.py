"""benchmarks/paper.py: which cells it runs, that it resumes, and that its verdicts follow the
numbers."""

from __future__ import annotations

import dataclasses
import json

import pytest

from adaframe_env.cli import paper
from adaframe_env.cli.paper import MUS, Cell, Results
from agents.adaframe import AdaFrameAgent


def test_quick_is_a_subset_of_the_full_run_and_no_cell_repeats():
    quick, full = paper.plan(True, synthetic=True), paper.plan(False, synthetic=True)
    assert len(set(full)) == len(full)
    assert set(quick) < set(full)
    names = {c.agent for c in full}
    # every Table 1 cell, AdaFrame-3/5/8/10 over mu, the four competitors, the ablations
    assert {"lstm-all", "lstm-g-all", "avgpool-r25", "scsampler-8", "oracle-10"} <= names
    assert {Cell(f"adaframe-{k}", mu=MUS) for k in (3, 5, 8, 10)} <= set(full)
    assert {"frameglimpse-g", "fastforward-g"} <= names
    ablations = {dict(c.settings).get("memory_frames") or dict(c.settings).get("reward")
                 for c in full if c.settings}  # fmt: skip
    assert ablations == {"0", "12", "32", "prediction", "prediction_transition"}
    assert not any(c.agent.startswith("oracle") for c in paper.plan(False, synthetic=False))


def _row(agent, map_, gflops, frames=10.0, mu=None, **settings):
    return {"agent": agent, "mu": mu, "settings": {k: str(v) for k, v in settings.items()},
            "map": map_, "top1": map_, "frames_mean": frames, "gflops_mean": gflops,
            "seed": 0}  # fmt: skip


def test_claims_are_decided_by_the_numbers():
    base = [_row("avgpool-u8", 0.786, 63), _row("avgpool-u10", 0.799, 79),
            _row("avgpool-all", 0.80, 1300), _row("frameglimpse", 0.77, 60)]  # fmt: skip
    good = Results({"a": base + [_row("adaframe-10", 0.801, 66, 8.2, mu=0.7),
                                 _row("adaframe-5", 0.79, 40, 4.9, mu=0.7)]})  # fmt: skip
    bad = Results({"a": base + [_row("adaframe-10", 0.75, 66, 8.2, mu=0.7),
                                _row("adaframe-5", 0.76, 40, 5.2, mu=0.7)]})  # fmt: skip
    text_good, text_bad = "\n".join(paper.claims(good, None)), paper.claims(bad, None)
    assert "not supported" not in text_good and text_good.count("**supported**") == 4
    assert all("**not supported**" in line for line in text_bad), text_bad


@pytest.mark.slow
def test_paper_writes_its_report_and_resumes_without_rerunning(harness_env, monkeypatch):
    cache, results = harness_env
    cells = [Cell("avgpool-u8"), Cell("avgpool-u10"), Cell("avgpool-all"),
             Cell("adaframe-5", mu=MUS), Cell("adaframe-10", mu=MUS)]  # fmt: skip
    monkeypatch.setattr(paper, "plan", lambda quick, synthetic: cells)
    # a short schedule: the default's thousands of updates are for the proxies, not a test
    short = dataclasses.replace(AdaFrameAgent.defaults, updates=10, eval_every=5)
    monkeypatch.setattr(AdaFrameAgent, "defaults", short)
    argv = ["--dataset", str(cache), "--out", str(results), "--no-progress"]
    assert paper.main(argv) == 0
    (folder,) = [p for p in results.iterdir() if p.is_dir()]
    report = (folder / "paper.md").read_text()
    assert "| AvgPooling | " in report and "(78.9)" in report  # the paper's U10 beside ours
    assert "| AdaFrame: K -> K' | 5 -> " in report
    assert "not run (77.8)" in report  # an LSTM cell this plan left out, said so
    for fig in ("fig3_map_vs_gflops", "fig4_exit_steps", "fig7_locations", "fig8_stop_signals"):
        assert (folder / "paper" / f"{fig}.png").stat().st_size > 1000
    before = report

    def no_rerun(*args, **kwargs):
        raise AssertionError("a finished cell ran again")

    monkeypatch.setattr(paper, "run_agent", no_rerun)
    assert paper.main(argv) == 0  # resumed entirely from paper-state.json
    after = (folder / "paper.md").read_text()
    strip = [line for line in after.splitlines() if "min on this machine" not in line]
    assert strip == [line for line in before.splitlines() if "min on this machine" not in line]
    with pytest.raises(AssertionError, match="ran again"):
        paper.main(argv + ["--fresh"])

    # a cell recorded under other defaults (an older version of the agent) runs again
    state_file = folder / "paper-state.json"
    state = json.loads(state_file.read_text())
    state["cells"][Cell("adaframe-5", mu=MUS).key(0)]["rows"][0]["hparams"]["context"] = "content"
    state_file.write_text(json.dumps(state))
    reran = []
    monkeypatch.setattr(paper, "run_agent", lambda name, *a, **k: reran.append(name) or no_rerun())
    with pytest.raises(AssertionError, match="ran again"):
        paper.main(argv)
    assert reran == ["adaframe-5"]
