"""How every learned method trains: a number of updates, checked on val, stopped on val.

An epoch count means 10 updates on a dataset of 600 videos and 3,000 on FCVID, so a schedule
here is a number of gradient updates that does not depend on the dataset's size
(:class:`Schedule`), and :func:`train_on_schedule` runs it: every ``eval_every`` updates it
evaluates the val split, keeps a copy of the best-val weights, stops once val has not improved
for ``patience`` evaluations, and leaves the model at its best-val weights. The history it
returns (one row per evaluation) is what :func:`write_curves` draws, with where training
stopped and why.

A method keeps its default :class:`Schedule` in its settings (``--set updates=...``), and the
command line's schedule fields (``RunConfig.SCHEDULE``: ``--updates``, ``--eval-every``,
``--patience``) override them for one run. ``--epochs N`` is the fixed schedule of earlier
versions: N passes over the train split, val logged every pass, no early stop, the last
weights kept (to reproduce a number measured that way).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm


@dataclass(frozen=True)
class Schedule:
    """``updates``: at most this many gradient updates. ``eval_every``: updates between val
    evaluations (and one after the last update). ``patience``: evaluations without a new best
    val score before training stops (0: never stop early). ``keep``: ``"best"`` restores the
    best-val weights at the end, ``"last"`` keeps the final ones."""

    updates: int
    eval_every: int
    patience: int
    keep: str = "best"

    def __post_init__(self):
        if self.updates < 1 or self.eval_every < 1 or self.patience < 0:
            raise ValueError(
                f"a schedule needs updates >= 1, eval_every >= 1 and patience >= 0, got "
                f"updates={self.updates}, eval_every={self.eval_every}, patience={self.patience}"
            )
        if self.keep not in ("best", "last"):
            raise ValueError(f"Schedule.keep must be 'best' or 'last', got {self.keep!r}")

    @classmethod
    def of(cls, settings) -> Schedule:
        """The schedule a method's settings name (its ``updates``, ``eval_every``,
        ``patience`` fields, settable with ``--set``)."""
        return cls(settings.updates, settings.eval_every, settings.patience)


def resolve_schedule(defaults: Schedule, config, updates_per_epoch: int) -> Schedule:
    """The schedule of one run: ``defaults`` (the method's settings) with the run config's
    overrides. ``config.epochs`` gives the fixed schedule (``epochs x updates_per_epoch``
    updates, val every pass, no early stop, last weights)."""
    if config.epochs is not None:
        if config.updates is not None:
            raise ValueError("give --epochs or --updates, not both")
        return Schedule(config.epochs * updates_per_epoch, updates_per_epoch, 0, keep="last")
    return Schedule(
        config.updates if config.updates is not None else defaults.updates,
        config.eval_every if config.eval_every is not None else defaults.eval_every,
        config.patience if config.patience is not None else defaults.patience,
    )


@dataclass
class TrainingLog:
    """What :func:`train_on_schedule` did: one row per evaluation (``update``, the means of the
    update metrics since the previous row, ``val_map``, ``seconds``), the update whose weights
    were kept, and why training ended."""

    rows: list[dict] = field(default_factory=list)
    kept_update: int = 0
    best_val: float = float("nan")
    reason: str = ""

    def summary(self) -> str:
        if not self.rows:
            return "no training"
        last = self.rows[-1]["update"]
        kept = f"kept the weights of update {self.kept_update}"
        if math.isfinite(self.best_val):
            kept += f" (val mAP {100 * self.best_val:.1f})"
        return f"stopped at update {last}: {self.reason}; {kept}"


def val_map(agent, store, config, chunk: int = 256) -> float:
    """mAP of ``agent.evaluate`` on the val split (in chunks of ``chunk`` videos), NaN when the
    split is empty: the ``validate`` of a method whose evaluation is its prediction."""
    from adaframe_env.metrics import mean_average_precision

    val = store.videos("val")
    if len(val) == 0:
        return math.nan
    results = [r for i in range(0, len(val), chunk)
               for r in agent.evaluate(store, val[i : i + chunk], config)]  # fmt: skip
    return float(mean_average_precision(np.stack([r.scores for r in results]), store.label[val]))


def train_on_schedule(
    schedule: Schedule,
    update: Callable[[], dict[str, float]],
    validate: Callable[[], float],
    model,
    *,
    desc: str = "train",
    progress: bool = True,
    decide: Callable = lambda x: x,
    on_row: Callable[[dict], None] | None = None,
) -> TrainingLog:
    """Run ``update()`` (one gradient update; returns its metrics) up to ``schedule.updates``
    times and ``validate()`` (the val score, higher is better; NaN when there is no val split)
    every ``schedule.eval_every`` updates; keep ``model``'s best-val ``state_dict``.

    ``decide``: makes a value the same on every process (``distributed.broadcast_object``
    under torchrun, where only rank 0 validates). ``on_row``: called with each row (progress
    lines). With no val score (no val split), the last weights are kept and training runs to
    the end."""
    log = TrainingLog()
    best_state, since_best, sums, count = None, 0, {}, 0
    t0 = time.perf_counter()
    bar = tqdm(total=schedule.updates, desc=desc, disable=not progress)
    for step in range(1, schedule.updates + 1):
        for key, value in update().items():
            sums[key] = sums.get(key, 0.0) + float(value)
        count += 1
        bar.update()
        if step % schedule.eval_every and step != schedule.updates:
            continue
        val = float(decide(validate()))
        row = {"update": step, **{k: v / count for k, v in sums.items()}, "val_map": val,
               "seconds": time.perf_counter() - t0}  # fmt: skip
        log.rows.append(row)
        sums, count, t0 = {}, 0, time.perf_counter()
        if math.isfinite(val) and not val <= log.best_val:  # first finite, or a new best
            log.best_val, log.kept_update, since_best = val, step, 0
            if schedule.keep == "best":
                best_state = copy.deepcopy(model.state_dict())
        elif math.isfinite(val):  # no val score (no val split): nothing to stop on
            since_best += 1
        if on_row is not None:
            on_row(row)
        bar.set_postfix(val=f"{100 * val:.1f}", best=f"{100 * log.best_val:.1f}", refresh=False)
        if schedule.patience and since_best >= schedule.patience and step < schedule.updates:
            log.reason = f"val mAP did not improve for {since_best} evaluations"
            break
    bar.close()
    if not log.reason:
        log.reason = f"reached {schedule.updates} updates"
    if schedule.keep == "best" and best_state is not None:
        model.load_state_dict(best_state)
    else:
        log.kept_update = log.rows[-1]["update"] if log.rows else 0
    return log


def write_curves(log: TrainingLog, directory: Path, title: str,
                 panels: list[tuple[str, str]] | None = None) -> None:  # fmt: skip
    """``curves.csv``, ``curves.json`` and ``curves.png`` of a training log in ``directory``:
    one panel per metric (``panels``: (key, label) pairs; default every column), the kept
    update marked, and the reason training ended in the title."""
    rows = log.rows
    if not rows:
        return
    directory = Path(directory)
    keys = list(rows[0])
    with open(directory / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        writer.writerows(rows)
    (directory / "curves.json").write_text(json.dumps(
        {"rows": rows, "kept_update": log.kept_update, "reason": log.reason}))  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if panels is None:
        panels = [(k, k) for k in keys if k not in ("update", "seconds")]
    cols = min(4, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.5 * cols, 3 * nrows), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    x = [r["update"] for r in rows]
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (key, label) in zip(axes.flat, panels, strict=False):
        ax.plot(x, [r.get(key, math.nan) for r in rows], marker="o", ms=3)
        ax.axvline(log.kept_update, color="tab:green", ls="--", lw=1)
        ax.set_title(label)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: {log.summary()} (dashed: kept weights)")
    fig.savefig(directory / "curves.png", dpi=100)
    plt.close(fig)
