"""Every picture is written from a results folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, run_cfg

from adaframe_env.harness.plots import PLOT_FILES, plot_dataset
from adaframe_env.harness.runner import run_agent


@pytest.mark.slow
def test_every_plot_file_is_written(harness_env):
    cache, out = harness_env
    rows = []
    for name in ("avgpool-u4", "avgpool-all", "random", "oracle"):
        rows += run_agent(name, str(cache), run_cfg(), out)
    folder = Path(rows[0]["json_path"]).parent
    files = plot_dataset(folder)
    assert [f.name for f in files] == list(PLOT_FILES)
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/plot.py"), str(out), "--focus", "random"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert res.stdout.count(".png") == 4


def test_seeds_of_a_run_are_averaged_settings_kept_apart():
    from adaframe_env.harness.runner import aggregate_seeds

    base = {"agent": "lstm-u10", "mu": None, "gflops_mean": 78.0, "top1": 0.7, "frames_mean": 10.0}
    rows = [{**base, "map": 0.80, "seed": 0}, {**base, "map": 0.84, "seed": 1},
            {**base, "map": 0.70, "seed": 0, "settings": {"readout": "plain"}}]  # fmt: skip
    merged = sorted(aggregate_seeds(rows), key=lambda r: r["map"])
    assert [r["n_seeds"] for r in merged] == [1, 2] and merged[1]["seeds"] == [0, 1]
    assert merged[1]["map"] == pytest.approx(0.82) and merged[1]["map_std"] == pytest.approx(0.02)


def test_val_runs_neither_overwrite_nor_join_test_runs(harness_env):
    from adaframe_env.harness.plots import load_results

    cache, out = harness_env
    (test,) = run_agent("avgpool-u3", str(cache), run_cfg(), out)
    (val,) = run_agent("avgpool-u3", str(cache), run_cfg(), out, split="val")
    assert test["json_path"] != val["json_path"] and val["run"].endswith("-val")
    folder = Path(test["json_path"]).parent
    assert [r["split"] for r in load_results(folder)] == ["test"]
    assert [r["split"] for r in load_results(folder, "val")] == ["val"]
