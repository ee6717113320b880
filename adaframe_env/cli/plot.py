"""Draw the harness's pictures from a results folder.

    adaframe plot results               # every dataset folder under results/
    adaframe plot results/fcvid-proxy   # one dataset
    adaframe plot results/fcvid-proxy --focus random-k10-seed0

Writes map_vs_gflops.png (paper Fig. 3), exit_steps.png (Fig. 4), class_frames.png (Fig. 5)
and location_density.png (Fig. 7) into each dataset folder. See adaframe_env.harness.plots.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adaframe_env.harness.plots import plot_dataset


def main(argv=None, prog: str = "adaframe plot") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("folder", help="results folder, or one dataset's folder inside it")
    p.add_argument("--focus", help="run (or agent) for the per-class and location pictures")
    args = p.parse_args(argv)
    root = Path(args.folder)
    folders = (
        [root] if any(root.glob("*.json")) else sorted(d for d in root.iterdir() if d.is_dir())
    )
    if not folders:
        p.error(f"{root}: no results")
    for folder in folders:
        for f in plot_dataset(folder, args.focus):
            print(f)
    return 0
