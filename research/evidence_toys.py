"""Can AdaFrame's policy learn *where to look* at all? Two toy caches with a known answer
(research tool, not a benchmark of the paper).

    python research/evidence_toys.py fixed [--seeds 0,1,2,3] [--json FILE]
    python research/evidence_toys.py marked [--marker 3] [--train-per-class 200] [--epochs 30]

Both start from the tiny preset (6 classes) and replace every frame outside an evidence region
by class-free noise (heavy and light views), so the answer to "where to look" is known:

- ``fixed``: the evidence is the first (``early``) or last (``late``) 40% of every video. A
  policy needs no memory to find it: the same place pays in every video.
  ``tests/research/test_evidence_toys.py`` checks the result.
- ``marked``: the evidence is one 30% segment at a random place in each video, and the light
  features of its frames carry a common marker vector (``--marker`` times the light
  features' scale): an idealized global memory that says where the evidence is. To find it,
  the policy has to read the memory. This is what the proxies ask of it, made easy.

Trains AdaFrame-4 (default settings unless ``--set``) and prints, on the test split, where
it looked (mean location per step; for ``marked``, the correlation between a video's mean
location and its segment's centre, and the share of its frames inside the evidence), its
mAP, and AvgPooling over uniform frames for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from adaframe_env.build.recognizer import fit_and_attach
from adaframe_env.build.synth import generate, preset
from adaframe_env.data.writer import write_cache
from adaframe_env.env import open_store
from adaframe_env.metrics import mean_average_precision
from adaframe_env.protocol import RunConfig
from adaframe_env.protocol.settings import parse_settings
from agents.adaframe import AdaFrameAgent
from baselines.avgpool import pooled_scores
from baselines.sampling import uniform_frames


def _blank_outside(arrays: dict, keep, rng: np.random.Generator) -> None:
    """Replace, in place, the heavy and light features of every frame that ``keep(position,
    video)`` rejects by Gaussian noise with the features' own mean and std (class-free)."""
    heavy = arrays["frames/features"].astype(np.float32)
    light = arrays["frames/light"].astype(np.float32)
    relevance = arrays["frames/relevance"].astype(np.float32)
    stats = [(x, x.mean(0), x.std(0)) for x in (heavy, light)]
    offsets, lengths = arrays["videos/offset"], arrays["videos/length"]
    for video, (offset, n) in enumerate(zip(offsets, lengths, strict=True)):
        position = (np.arange(n) + 0.5) / n
        empty = offset + np.nonzero(~keep(position, video))[0]
        for x, mean, std in stats:
            x[empty] = mean + std * rng.standard_normal((len(empty), x.shape[1]))
        relevance[empty] = 0.0
    arrays["frames/features"] = heavy.astype(np.float16)
    arrays["frames/light"] = light.astype(np.float16)
    arrays["frames/relevance"] = relevance.astype(np.float16)


def fixed_place_cache(dest: Path, where: str, train_per_class: int = 40) -> Path:
    """Evidence in the first (``early``) or last (``late``) 40% of every video."""
    arrays, attrs = generate(preset("tiny", videos_per_class=(train_per_class, 8, 10)),
                             progress=False)  # fmt: skip
    late = where == "late"
    _blank_outside(arrays, lambda pos, v: pos >= 0.6 if late else pos <= 0.4,
                   np.random.default_rng(0))  # fmt: skip
    fit_and_attach(arrays, seed=0, progress=False)
    return write_cache(dest, arrays, attrs)


def marked_segment_cache(
    dest: Path, marker: float, train_per_class: int
) -> tuple[Path, np.ndarray]:
    """Evidence in one 30% segment at a random place per video; its light features carry a
    marker. Returns the cache and each video's segment centre."""
    arrays, attrs = generate(
        preset("tiny", videos_per_class=(train_per_class, 8, 10), min_frames=20), progress=False
    )
    rng = np.random.default_rng(0)
    start = rng.uniform(0.0, 0.7, len(arrays["videos/length"]))
    _blank_outside(arrays, lambda pos, v: (pos >= start[v]) & (pos <= start[v] + 0.3), rng)
    light = arrays["frames/light"].astype(np.float32)
    direction = rng.standard_normal(light.shape[1])
    direction *= marker * light.std(0).mean() * np.sqrt(light.shape[1]) / np.linalg.norm(direction)
    light[arrays["frames/relevance"].astype(np.float32) > 0] += direction.astype(np.float32)
    arrays["frames/light"] = light.astype(np.float16)
    fit_and_attach(arrays, seed=0, progress=False)
    return write_cache(dest, arrays, attrs), start + 0.15


def train(store, settings: dict, seed: int, epochs: int) -> AdaFrameAgent:
    agent = AdaFrameAgent(4, settings)
    config = RunConfig(seed=seed, epochs=epochs, progress=False)
    agent.setup(store, config)
    agent.fit(store, store.videos("train"), config)
    return agent


def report(store, agent: AdaFrameAgent, centres: np.ndarray | None = None) -> dict:
    test = store.videos("test")
    labels = store.label[test]
    r = agent.episodes(store, test)
    location = r.location.numpy()
    out = {
        "map": round(
            100 * mean_average_precision(torch.softmax(r.logits[:, -1], -1).numpy(), labels), 1
        ),
        "location_by_step": [round(float(x), 2) for x in location.mean(0)],
    }
    if centres is not None:
        relevance = store.array("relevance")
        out["corr_with_segment_centre"] = round(
            float(np.corrcoef(location[:, 1:].mean(1), centres[test])[0, 1]), 2
        )
        out["share_in_evidence"] = round(float(np.mean(
            [(relevance[store.offset[v] + f] > 0).mean() for v, f in zip(test, r.frames, strict=True)]
        )), 2)  # fmt: skip
    return out


def uniform_map(store, k: int = 4) -> float:
    test = store.videos("test")
    frames = [uniform_frames(int(store.length[v]), k) for v in test]
    return 100 * mean_average_precision(pooled_scores(store, test, frames), store.label[test])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("toy", choices=("fixed", "marked"))
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--marker", type=float, default=3.0)
    p.add_argument("--train-per-class", type=int, default=None)
    p.add_argument("--out", default="results/toys")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = parse_settings(args.set)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = {}  # cache name -> its cache path, avgpool-u4 and one report per seed
    if args.toy == "fixed":
        for where in ("early", "late"):
            path = fixed_place_cache(out / f"fixed-{where}.h5", where, args.train_per_class or 40)
            store = open_store(path)
            row = rows[where] = {"cache": str(path), "avgpool_u4": uniform_map(store), "seeds": {}}
            print(f"evidence {where}: avgpool-u4 {row['avgpool_u4']:.1f}")
            for seed in seeds:
                r = row["seeds"][seed] = report(store, train(store, settings, seed, args.epochs))
                print(f"  seed {seed}: {r}")
    else:
        path, centres = marked_segment_cache(
            out / f"marked-{args.marker:g}.h5", args.marker, args.train_per_class or 200
        )
        store = open_store(path)
        row = rows["marked"] = {"cache": str(path), "avgpool_u4": uniform_map(store), "seeds": {}}
        print(f"marked segment (marker {args.marker:g}): avgpool-u4 {row['avgpool_u4']:.1f}")
        for seed in seeds:
            agent = train(store, settings, seed, args.epochs)
            r = row["seeds"][seed] = report(store, agent, centres)
            print(f"  seed {seed}: {r}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
