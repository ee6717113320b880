"""Do harder classes get more frames? (paper Fig. 5, as a number)

    python benchmarks/exit_vs_difficulty.py results/fcvid-proxy/adaframe-10-mu0.2-seed0.json \\
        results/fcvid-proxy/avgpool-u10-seed0.json

Per class: the agent's mean exit step and mean distinct frames, against the class's top-1
accuracy under the baseline run (same split, same videos). Prints Spearman's rank correlation
of each with the accuracy; the paper's Fig. 5 shows easy classes exiting earlier (negative).
"""

from __future__ import annotations

import argparse
import json
import sys
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("agent_run", help="result JSON of the agent (with exit steps)")
    p.add_argument("baseline_run", help="result JSON of the baseline that defines difficulty")
    args = p.parse_args(argv)
    agent, base = records(args.agent_run), records(args.baseline_run)
    if [r["id"] for r in agent] != [r["id"] for r in base]:
        sys.exit("exit_vs_difficulty.py: the two runs are not over the same videos")
    for key, c in class_correlation(agent, base).items():
        print(f"{key}: mean {c['mean']:.2f}, std {c['std']:.2f}; Spearman rho with "
              f"per-class accuracy {c['rho']:+.3f} (p = {c['p']:.3g}, {c['classes']} classes)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
