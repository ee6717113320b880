"""When do videos stop: on AdaFrame's utility (Algorithm 2) or on its prediction's entropy?
(paper section 4.3, "Stop Criterion", and Fig. 8). ``adaframe paper`` draws it from a trained
AdaFrame-K (any agent with ``episodes`` and ``exits``) on the test split at the full budget:
for each stop rule the share of videos that have stopped by each step, with the mAP and mean
frames of the resulting predictions:

- utility: Algorithm 2 with mu = 0.2, 0.5, 0.7 (the agent's own ``exits``);
- entropy: stop at the first step whose prediction entropy is below a threshold, for the
  thresholds that make the mean exit step match each utility rule's (so the two signals are
  compared at equal cost), plus fixed 0.5 and 1.0 nats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adaframe_env.data.atomic import atomic_output
from adaframe_env.metrics import mean_average_precision


def entropy_exit(probs: np.ndarray, threshold: float) -> np.ndarray:
    """(B, K, C) scores -> 1-based first step whose entropy is below ``threshold`` (else K)."""
    entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(-1)
    below = entropy < threshold
    return np.where(below.any(1), below.argmax(1) + 1, probs.shape[1])


def summarize(name: str, exits: np.ndarray, probs: np.ndarray, frames: np.ndarray, labels,
              k: int) -> dict:  # fmt: skip
    scores = probs[np.arange(len(exits)), exits - 1]
    distinct = [len(np.unique(f[:e])) for f, e in zip(frames, exits, strict=True)]
    stopped = [float(np.mean(exits <= t)) for t in range(1, k + 1)]
    return {"rule": name, "map": float(mean_average_precision(scores, labels)),
            "exit_step_mean": float(exits.mean()), "frames_mean": float(np.mean(distinct)),
            "stopped_by_step": stopped}  # fmt: skip


def compare_stop_rules(agent, store, videos) -> list[dict]:
    """Rows of :func:`summarize` for the utility rules (mu = 0.2, 0.5, 0.7), the entropy
    thresholds matching each one's mean exit step, and fixed 0.5 / 1.0 nats, for a trained
    AdaFrame ``agent`` on ``videos`` (one full-budget rollout shared by every rule)."""
    with torch.no_grad():
        r = agent.episodes(store, videos)
    probs = torch.softmax(r.logits, -1).cpu().numpy()
    labels, k = store.label[videos], agent.k
    rows = []
    for mu in (0.2, 0.5, 0.7):
        exits = agent.exits(r, mu)  # Algorithm 2 on the utility
        rows.append(summarize(f"utility mu={mu:g}", exits, probs, r.frames, labels, k))
        # the entropy threshold whose mean exit step is closest to this rule's
        grid = np.linspace(0.0, np.log(store.num_classes), 400)
        means = np.array([entropy_exit(probs, g).mean() for g in grid])
        best = grid[int(np.argmin(np.abs(means - exits.mean())))]
        rows.append(summarize(f"entropy < {best:.2f} (same mean exit)",
                              entropy_exit(probs, best), probs, r.frames, labels, k))  # fmt: skip
    for threshold in (0.5, 1.0):
        rows.append(summarize(f"entropy < {threshold:g}", entropy_exit(probs, threshold), probs,
                              r.frames, labels, k))  # fmt: skip
    return rows



def draw(rows: list[dict], k: int, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    steps = np.arange(1, k + 1)
    for i, row in enumerate(rows):
        style = "-" if row["rule"].startswith("utility") else "--"
        ax.plot(steps, [100 * x for x in row["stopped_by_step"]], style, marker="o", ms=3,
                color=f"C{i // 2 if i < 6 else i - 3}", label=f"{row['rule']}: {100 * row['map']:.1f} mAP")  # fmt: skip
    ax.set_xlabel("step")
    ax.set_ylabel("videos stopped by this step (%)")
    ax.set_title(f"{title}: stopping on the utility (solid) vs the entropy (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")

