"""Calibrate a synthetic proxy against the paper's AvgPooling row of Table 1.

    python research/calibrate_proxy.py --preset fcvid [--set nuisance=0.8 --set seed=1]
    python research/calibrate_proxy.py --data fcvid-proxy.h5 [--lazy]

Prints AvgPooling mAP over R8, U8, R10, U10, R25, U25 and all frames beside the paper's value,
the light head alone (the global memory's backbone), and an oracle that samples uniformly among
the ground-truth evidence frames (a bound on what frame selection can gain, not a competitor).
Only the non-RL rows are used for calibration: nothing here looks at any agent.

Each AvgPooling row also gets the bootstrap std of its mAP over the evaluated videos (videos
drawn with replacement, ``--bootstrap`` draws, seeded): how large a mAP difference the split's
size lets one see.
"""

from __future__ import annotations

import argparse
import ast
import tempfile
import time
from pathlib import Path

import numpy as np

from adaframe_env.build.synth import preset, synthesize
from adaframe_env.data.store import FeatureStore
from adaframe_env.metrics import mean_average_precision, top1_accuracy
from baselines.avgpool import memory_scores, pooled_scores
from baselines.oracle import oracle_frames
from baselines.sampling import select_frames

# Paper Table 1, AvgPooling row (mAP, %).
PAPER = {
    "fcvid": {
        "R8": 78.3,
        "U8": 78.4,
        "R10": 79.0,
        "U10": 78.9,
        "R25": 79.7,
        "U25": 80.0,
        "All": 80.2,
    },
    "activitynet": {
        "R8": 67.5,
        "U8": 67.8,
        "R10": 68.9,
        "U10": 68.6,
        "R25": 69.8,
        "U25": 70.0,
        "All": 70.2,
    },
}


def bootstrap_std(scores: np.ndarray, labels: np.ndarray, draws: int, seed: int = 0) -> float:
    """Std of the mAP over ``draws`` resamples of the videos (with replacement)."""
    if draws < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(draws):
        i = rng.integers(0, len(labels), len(labels))
        maps.append(mean_average_precision(scores[i], labels[i]))
    return float(np.std(maps, ddof=1))


def calibration_table(
    store: FeatureStore, split: str = "test", seed: int = 0, bootstrap: int = 0
) -> list[tuple]:
    vids = store.videos(split)
    labels = store.label[vids]
    lengths = store.length[vids]
    rows = []
    for name in ("R8", "U8", "R10", "U10", "R25", "U25", "All"):
        strategy = {"R": "random", "U": "uniform", "A": "all"}[name[0]]
        k = None if name == "All" else int(name[1:])
        scores = pooled_scores(store, vids, select_frames(lengths, strategy, k, seed))
        rows.append(
            (
                f"AvgPooling {name}",
                mean_average_precision(scores, labels),
                top1_accuracy(scores, labels),
                bootstrap_std(scores, labels, bootstrap, seed),
            )
        )
    scores = memory_scores(store, vids)
    rows.append(
        (
            "light head, 16 memory frames",
            mean_average_precision(scores, labels),
            top1_accuracy(scores, labels),
        )
    )
    scores = pooled_scores(store, vids, select_frames(lengths, "all", None), "light_logits")
    rows.append(
        (
            "light head, all frames",
            mean_average_precision(scores, labels),
            top1_accuracy(scores, labels),
        )
    )
    if store.has_relevance:
        for k in (8, 10, 25):
            frames = [oracle_frames(store, v, k) for v in vids]
            scores = pooled_scores(store, vids, frames)
            rows.append(
                (
                    f"oracle bound, {k} frames",
                    mean_average_precision(scores, labels),
                    top1_accuracy(scores, labels),
                )
            )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--preset",
        help="generate this preset (fcvid, activitynet, fcvid-small, activitynet-small, tiny)",
    )
    src.add_argument("--data", help="an existing cache")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override a generator knob (repeatable)",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--lazy", action="store_true", help="memory-map the cache")
    parser.add_argument("--bootstrap", type=int, default=100, help="resamples for the mAP std")
    args = parser.parse_args(argv)
    if args.preset:
        overrides = {}
        for item in args.set:
            key, _, value = item.partition("=")
            overrides[key] = ast.literal_eval(value)
        cfg = preset(args.preset, **overrides)
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "proxy.h5"
        t0 = time.time()
        synthesize(path, cfg, progress=False)
        print(f"generated {args.preset} proxy in {time.time() - t0:.1f} s with {overrides}")
        dataset = cfg.dataset
    else:
        path = Path(args.data)
        dataset = None
    store = FeatureStore(path, lazy=args.lazy)
    dataset = dataset or str(store.attrs["dataset"]).removesuffix("-proxy")
    paper = PAPER.get(dataset.removesuffix("-small"), {})
    print(f"{len(store.videos(args.split))} {args.split} videos")
    print("| method | mAP (%) | bootstrap std | top-1 (%) | paper mAP (%) |")
    print("|---|---|---|---|---|")
    for name, m, top1, *std in calibration_table(store, args.split, bootstrap=args.bootstrap):
        ref = paper.get(name.split()[-1], "") if name.startswith("AvgPooling") else ""
        sd = f"{100 * std[0]:.2f}" if std else ""
        print(f"| {name} | {100 * m:.1f} | {sd} | {100 * top1:.1f} | {ref} |")


if __name__ == "__main__":
    main()
