"""Reproduce the baseline rows of the paper's Table 1 on a cache, beside the paper's numbers.

    python benchmarks/table1.py                          # default fcvid proxy, training-free rows
    python benchmarks/table1.py --methods avgpool,avgpool-g,lstm,lstm-g,scsampler,oracle
    python benchmarks/table1.py --dataset activitynet

Every cell is one run of the harness (``benchmarks/run.py --agent NAME``): results land in
``--out`` as usual and trained checkpoints are reused, so an interrupted table resumes where it
stopped. Prints a Markdown table and redraws the dataset's plots, mAP (%) with the paper's value in parentheses; the oracle row
is a bound (ground-truth relevance, synthetic caches only), not a competitor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adaframe_env.harness.protocol import RunConfig  # noqa: E402
from adaframe_env.harness.runner import resolve_dataset, run_agent  # noqa: E402

SETTINGS = ("R8", "U8", "R10", "U10", "R25", "U25", "All")

# Paper Table 1 (mAP %); SCSampling only has K = 8, 10, 25.
PAPER = {
    "fcvid": {
        "avgpool": (78.3, 78.4, 79.0, 78.9, 79.7, 80.0, 80.2),
        "lstm": (77.8, 77.9, 78.7, 78.1, 78.0, 79.8, 80.0),
        "avgpool-g": (78.2, 79.1, 78.7, 79.5, 79.7, 80.1, 80.3),
        "lstm-g": (78.8, 79.2, 79.0, 79.7, 79.4, 80.1, 80.4),
        "scsampler": (79.6, None, 79.9, None, 80.9, None, None),
    },
    "activitynet": {
        "avgpool": (67.5, 67.8, 68.9, 68.6, 69.8, 70.0, 70.2),
        "lstm": (68.7, 68.8, 69.8, 70.4, 69.9, 70.8, 71.0),
        "avgpool-g": (66.8, 68.0, 67.4, 68.9, 69.1, 70.1, 70.3),
        "lstm-g": (69.6, 70.3, 70.5, 70.8, 70.7, 71.2, 71.8),
        "scsampler": (65.8, None, 66.8, None, 70.0, None, None),
    },
}
NAMES = {
    "avgpool": "AvgPooling",
    "lstm": "LSTM",
    "avgpool-g": "AvgPooling-G",
    "lstm-g": "LSTM-G",
    "scsampler": "SCSampling",
    "oracle": "oracle (bound)",
}


def agent_name(method: str, setting: str) -> str | None:
    """Harness agent of one cell, or None where the table has no such cell."""
    k = setting[1:]
    if method in ("scsampler", "oracle"):
        return f"{method}-{k}" if setting.startswith("R") else None  # one column per K
    return f"{method}-all" if setting == "All" else f"{method}-{setting.lower()}"


def paper_columns(dataset: str | None) -> str:
    """Which of the paper's column sets a cache is compared with, by its ``dataset`` attribute."""
    with h5py.File(resolve_dataset(dataset), "r") as f:
        name = str(f.attrs.get("dataset", ""))
    return "activitynet" if "activitynet" in name.lower() else "fcvid"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default=None, help="fcvid (default), activitynet or PATH.h5")
    p.add_argument(
        "--methods",
        default="avgpool,avgpool-g,scsampler,oracle",
        help="rows to run; add lstm,lstm-g for the trained rows (20+ min on 2 cores)",
    )
    p.add_argument(
        "--paper",
        default=None,
        choices=sorted(PAPER),
        help="paper column set (default: by dataset)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="LSTM training epochs (agent default)")
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in NAMES]
    if unknown:
        p.error(f"unknown --methods {unknown}; choose from {', '.join(NAMES)}")
    paper = PAPER[args.paper or paper_columns(args.dataset)]
    last_row = None
    lines = ["| method | " + " | ".join(SETTINGS) + " |", "|---" * (len(SETTINGS) + 1) + "|"]
    for method in methods:
        cells = []
        for i, setting in enumerate(SETTINGS):
            name = agent_name(method, setting)
            if name is None:
                cells.append("")
                continue
            config = RunConfig(seed=args.seed, epochs=args.epochs, progress=False)
            (row,) = run_agent(name, args.dataset, config, out=args.out)
            last_row = row
            ref = paper.get(method, (None,) * len(SETTINGS))[i]
            cell = f"{100 * row['map']:.1f}" + (f" ({ref})" if ref is not None else "")
            cells.append(cell)
            print(
                f"{name}: mAP {100 * row['map']:.1f}, {row['gflops_mean']:.1f} GFLOPs",
                file=sys.stderr,
            )
        lines.append(f"| {NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if last_row is not None:
        from adaframe_env.harness.plots import plot_dataset

        for path in plot_dataset(Path(last_row["json_path"]).parent):
            print(f"drew {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
