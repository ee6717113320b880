"""Does the train split's reward point towards better frames? (issue: train split teaches
frame selection, not memorization)

Runs fixed location policies through the environment on every video of the train and test
splits, at budget K, and reports for each the mean episode return (the env's margin reward by
default, from the cross-fitted recognizer), the mean margin of the final prediction, and the
test mAP / top-1 of the env's prediction at the end of the episode. A reward that teaches frame selection ranks the policies on train the
way test accuracy ranks them.

    python research/train_reward.py  # fcvid proxy, K = 10
    python research/train_reward.py --dataset tiny --budget 5

Policies (every one starts where the env does, at frame 0, and chooses the K - 1 others):

- ``oracle``: frames spread over the ground-truth relevant half of the video (synthetic caches
  only; it reads ``frames/relevance``, which no real agent sees): the ceiling.
- ``uniform``: the centres of K - 1 equal segments.
- ``random``: a uniformly random location at every step.
- ``middle``: locations drawn around the middle of the video, N(0.5, 0.1^2) clipped to [0, 1],
  which is where an untrained Gaussian location policy with a sigmoid mean looks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from adaframe_env.data.store import FeatureStore
from adaframe_env.harness.runner import resolve_dataset
from adaframe_env.metrics import mean_average_precision, top1_accuracy
from adaframe_env.rewards import margin
from adaframe_env.vector_env import AdaFrameVectorEnv
from baselines.oracle import oracle_frames

POLICIES = ("oracle", "uniform", "random", "middle")


def policy_locations(
    name: str, store: FeatureStore, videos: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """(len(videos), k - 1) locations in [0, 1] that policy ``name`` visits after frame 0."""
    rng = np.random.default_rng([seed, POLICIES.index(name)])
    n = len(videos)
    if name == "uniform":
        return np.tile((2 * np.arange(k - 1) + 1) / (2 * (k - 1)), (n, 1))
    if name == "random":
        return rng.uniform(0, 1, (n, k - 1))
    if name == "middle":
        return np.clip(rng.normal(0.5, 0.1, (n, k - 1)), 0, 1)
    if name == "oracle":
        out = np.empty((n, k - 1))
        for i, v in enumerate(videos):
            frames = oracle_frames(store, int(v), k - 1)
            frames = np.resize(frames, k - 1)  # short videos: repeat (revisits are free)
            out[i] = frames / max(int(store.length[v]) - 1, 1)
        return out
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")


def run_policy(store, split: str, name: str, k: int, reward: str, seed: int) -> dict:
    """Mean return, mean distinct frames, mAP and top-1 of one policy over a whole split."""
    env = AdaFrameVectorEnv(
        len(store.videos(split)), data=store.path, split=split, budget=k, reward=reward,
        memory=False, observation_keys=("probs",), label_in_info=True,
    )  # fmt: skip
    try:
        videos = env.split_videos
        locations = policy_locations(name, store, videos, k, seed)
        obs, info = env.reset(seed=seed, options={"video": np.arange(len(videos))})
        ret = np.zeros(len(videos))
        for t in range(k - 1):
            obs, r, term, trunc, info = env.step(locations[:, t : t + 1].astype(np.float32))
            ret += r
        assert (term | trunc).all(), "every episode ends after K frames"
        scores = np.array(obs["probs"])
        labels = store.label[videos]
        return {
            "return": float(ret.mean()),
            "final_margin": float(np.mean(margin(scores, labels))),
            "frames": float(np.mean(info["frames_used"])),
            "map": 100 * mean_average_precision(scores, labels),
            "top1": 100 * top1_accuracy(scores, labels),
        }
    finally:
        env.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--dataset", default=None, help="fcvid (default), activitynet, a preset or a cache path"
    )
    p.add_argument("--budget", type=int, default=10)
    p.add_argument("--reward", default="margin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    store = FeatureStore(resolve_dataset(args.dataset))
    rows = {}
    print(f"{store.path} (K = {args.budget}, reward {args.reward})")
    print(
        "| policy | train return | train final margin | test return | test final margin "
        "| test mAP | test top-1 | frames |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in POLICIES:
        if name == "oracle" and not store.has_relevance:
            continue
        tr = run_policy(store, "train", name, args.budget, args.reward, args.seed)
        te = run_policy(store, "test", name, args.budget, args.reward, args.seed)
        rows[name] = {"train": tr, "test": te}
        print(
            f"| {name} | {tr['return']:.3f} | {tr['final_margin']:.3f} | {te['return']:.3f} | "
            f"{te['final_margin']:.3f} | {te['map']:.1f} | {te['top1']:.1f} | {te['frames']:.2f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
