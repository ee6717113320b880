"""Do harder classes get more frames? (paper Fig. 5, as a number)

Per class: an agent's mean exit step and mean distinct frames, against the class's top-1
accuracy under a baseline run (same split, same videos); Spearman's rank correlation of each
with the accuracy. The paper's Fig. 5 shows easy classes exiting earlier (negative).
``adaframe paper`` reports it for AdaFrame-10 against ``avgpool-u10``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def records(run_json: str) -> list[dict]:
    row = json.loads(Path(run_json).read_text())
    return json.loads((Path(run_json).parent / row["records"]).read_text())


def class_correlation(agent: list[dict], base: list[dict]) -> dict[str, dict]:
    """For ``exit_step`` and ``frames``: mean and std over videos, and Spearman's rho (and its
    p-value) between a class's mean and its accuracy under ``base`` (records of the same
    videos, in the same order)."""
    label = np.array([r["label"] for r in agent])
    classes = np.unique(label)
    correct = np.array([r["predicted"] == r["label"] for r in base])
    accuracy = [correct[label == c].mean() for c in classes]
    out = {}
    for key in ("exit_step", "frames"):
        values = np.array([r[key] for r in agent], dtype=float)
        with warnings.catch_warnings():  # a constant input (tiny data) gives nan, said so
            warnings.simplefilter("ignore")
            rho, pvalue = spearmanr([values[label == c].mean() for c in classes], accuracy)
        out[key] = {"mean": float(values.mean()), "std": float(values.std()), "rho": float(rho),
                    "p": float(pvalue), "classes": len(classes)}  # fmt: skip
    return out


