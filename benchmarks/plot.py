"""Draw the harness's pictures from a results folder.

    python benchmarks/plot.py results               # every dataset folder under results/
    python benchmarks/plot.py results/fcvid-proxy   # one dataset
    python benchmarks/plot.py results/fcvid-proxy --focus random-k10-seed0

Writes map_vs_gflops.png (paper Fig. 3), exit_steps.png (Fig. 4), class_frames.png (Fig. 5)
and location_density.png (Fig. 7) into each dataset folder. See adaframe_env.harness.plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adaframe_env.harness.plots import plot_dataset  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
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


if __name__ == "__main__":
    sys.exit(main())
