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
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def records(run_json: str) -> list[dict]:
    row = json.loads(Path(run_json).read_text())
    return json.loads((Path(run_json).parent / row["records"]).read_text())


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
    label = np.array([r["label"] for r in agent])
    classes = np.unique(label)
    correct = np.array([r["predicted"] == r["label"] for r in base])
    accuracy = [correct[label == c].mean() for c in classes]
    for key in ("exit_step", "frames"):
        values = np.array([r[key] for r in agent], dtype=float)
        per_class = [values[label == c].mean() for c in classes]
        rho, pvalue = spearmanr(per_class, accuracy)
        print(f"{key}: mean {values.mean():.2f}, std {values.std():.2f}; Spearman rho with "
              f"per-class accuracy {rho:+.3f} (p = {pvalue:.3g}, {len(classes)} classes)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
