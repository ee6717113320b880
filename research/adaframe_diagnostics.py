"""Where does AdaFrame look, and does its policy beat uniform frames? (research tool)

    python research/adaframe_diagnostics.py CACHE.h5 '[{}, {"reward": "prediction_transition"}]'

Trains AdaFrame-K (``--budget``, default 10) once per JSON config of ``--set`` settings on the
train split and reports on the **val** split (the split to choose on), at the full budget with
the policy's mean (no early exit):

- the val mAP at each evaluation of the schedule, and by step of the final model;
- distinct frames, and the recognizer's AvgPooling over the agent's own frames;
- the same network fed uniform locations instead of its policy (is the classifier or the
  policy the weak part?), and AvgPooling over those uniform frames;
- where the policy looks: mean and spread of the location per step, three example videos, the
  mean jump between consecutive steps and the span of a video's locations;
- the trained policy sampled as in training (sigma 0.1 and 0.2) instead of its mean;
- on the train videos, the paper's objective (the discounted return of the agent's own
  reward) and top-1 with its own policy and with uniform locations (:func:`train_objective`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from adaframe_env.env import open_store
from adaframe_env.metrics import mean_average_precision
from adaframe_env.protocol import RunConfig
from adaframe_env.rewards import episode_rewards
from agents.adaframe import AdaFrameAgent
from agents.recurrent import Rollout, discounted_returns, rollout
from baselines.avgpool import pooled_scores


def uniform_locations(budget: int) -> np.ndarray:
    """The centres of ``budget`` equal parts of the video: uniform frames as locations."""
    return (np.arange(budget) + 0.5) / budget


def diagnose(store, settings: dict, budget: int, seed: int) -> dict:
    agent = AdaFrameAgent(budget, {k: str(v) for k, v in settings.items()})
    agent.name = f"adaframe-{budget}"
    config = RunConfig(seed=seed, progress=False)
    agent.setup(store, config)
    t0 = time.perf_counter()
    agent.fit(store, store.videos("train"), config)
    seconds = time.perf_counter() - t0
    val = store.videos("val")
    labels = store.label[val]

    def m(scores):
        return round(100 * mean_average_precision(scores, labels), 1)

    r = agent.episodes(store, val)
    probs = torch.softmax(r.logits, -1).numpy()
    loc = r.location.numpy().astype(np.float64)  # rounds to 2 decimals in the JSON
    uniform = agent.episodes(store, val, locations=uniform_locations(budget))
    out = {
        "settings": settings,
        "train_seconds": round(seconds, 1),
        "val_map_by_update": {h["update"]: round(100 * h["val_map"], 1) for h in agent.history},
        "kept_update": agent.log.kept_update,
        "val_map_by_step": [m(probs[:, t]) for t in range(budget)],
        "distinct_frames": round(float(np.mean([len(np.unique(f)) for f in r.frames])), 2),
        "avgpool_on_its_frames": m(pooled_scores(store, val, list(r.frames))),
        "net_on_uniform": m(torch.softmax(uniform.logits[:, -1], -1).numpy()),
        "avgpool_on_uniform": m(pooled_scores(store, val, list(uniform.frames))),
        "location_mean_by_step": np.round(loc.mean(0), 2).tolist(),
        "location_std_by_step": np.round(loc.std(0), 2).tolist(),
        "example_locations": [np.round(loc[i], 2).tolist() for i in range(3)],
        "mean_jump": round(float(np.abs(np.diff(loc[:, 1:], axis=1)).mean()), 3),
        "mean_span": round(float((loc[:, 1:].max(1) - loc[:, 1:].min(1)).mean()), 3),
    }
    out["objective_on_train"] = train_objective(agent, store, budget)
    env = agent.make_env(store, "val", min(256, len(val)))
    positions = np.searchsorted(env.split_videos, val)
    with torch.no_grad():
        for sigma in (0.1, 0.2):
            torch.manual_seed(seed)
            sampled = Rollout.concat([
                rollout(agent.model, env, positions[i : i + env.num_envs], agent.buffers,
                        agent.device, sigma=sigma)
                for i in range(0, len(val), env.num_envs)])  # fmt: skip
            logits, frames = sampled.final_logits(), sampled.frames
            out[f"sampled_sigma_{sigma}"] = {
                "net": m(torch.softmax(logits, -1).numpy()),
                "avgpool_on_its_frames": m(pooled_scores(store, val, list(frames))),
                "distinct_frames": round(float(np.mean([len(np.unique(f)) for f in frames])), 2),
            }
    return out


def train_objective(agent: AdaFrameAgent, store, budget: int) -> dict:
    """Does the paper's objective prefer what the policy learned? On the **train** videos, the
    trained network's discounted return (Eq. 5, its own reward) and top-1 at step K, with its
    own policy mean against the same network fed uniform locations. A policy that earns more
    return with worse accuracy is the optimizer doing its job on an objective that does not
    pay for what accuracy needs."""
    train = store.videos("train")
    s = agent.settings
    out = {}
    for name, locations in (("own", None), ("uniform", uniform_locations(budget))):
        r = agent.episodes(store, train, locations=locations)
        probs = torch.softmax(r.logits, -1).numpy()
        rewards = episode_rewards(s.reward, probs, r.labels)
        out[name] = {
            "return": round(float(discounted_returns(rewards, s.gamma)[:, 0].mean()), 3),
            "top1": round(100 * float((probs[:, -1].argmax(-1) == r.labels).mean()), 1),
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("cache")
    p.add_argument("configs", help="JSON list of settings dicts, e.g. '[{}, {\"updates\": 2000}]'")
    p.add_argument("--budget", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    store = open_store(args.cache)
    for settings in json.loads(args.configs):
        print(json.dumps(diagnose(store, settings, args.budget, args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
