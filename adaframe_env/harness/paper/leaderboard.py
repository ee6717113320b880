"""The leaderboard: every frame-selection method on one mAP-vs-GFLOPs footing, over seeds and
datasets, with confidence intervals (``adaframe leaderboard``; docs/methods.md).

What it does, top to bottom:

1. **Configurations are data** (:data:`METHODS`): a method is a line label, a harness name
   pattern (``mgsampler-{k}``; a name without ``{k}`` gets ``--budget K``), its K values and,
   for adaptive methods, their thresholds ``mu`` (one point per ``mu``). A name the registry
   does not know (a method on a branch not merged yet) is skipped with one printed line.
2. **Runs go through the harness** (:func:`adaframe_env.harness.runner.run_agent`, with
   ``save_scores``): result files land in ``OUT/<dataset>/`` as for ``adaframe run``, trained
   checkpoints are reused, and a finished run is not run again: its ``<run>.json`` is reused
   when it records this cache's fingerprint and the agent's current hyperparameters and its
   ``<run>.scores.npy`` is there. A crash loses at most the run in progress.
3. **Points.** One point per (method, configuration): mAP on the test split, mean over seeds;
   GFLOPs per video, mean over seeds (the harness's cost rule).
4. **Confidence intervals: a two-level bootstrap over seeds x test videos**
   (:func:`bootstrap_map`). A replicate draws the test videos with replacement (one draw shared
   by every point of a dataset, so the intervals of two methods are paired) and the seeds with
   replacement, and takes the mean over the drawn seeds of the mAP on the drawn videos; the CI
   is the 2.5 and 97.5 percentiles of the replicates, shifted by their bias (mean of the
   replicates minus the point's mAP; :func:`add_intervals` says why). Why both levels: with 3 seeds, a
   bootstrap over seeds alone has 10 distinct resamples and gives a training-free
   deterministic method (uniform, mgsampler, scsampler) a zero-width interval, although its mAP
   on another draw of test videos would differ; the videos are the main source of
   uncertainty for those, the seeds for learned and random ones. The mAP of a resample uses
   weighted average precision (a video drawn twice counts twice), exact for duplicates.
5. **Matched budgets** (:func:`budget_table`): for a budget B (GFLOPs per video; default 20,
   40, 80, about 2.5, 5 and 10 heavy frames on the paper's backbones) and a method, the cell is
   the method's configuration with the **highest mean mAP among those whose mean GFLOPs are at
   most B**; empty when none fits. Note the cell is picked on the reported split among a
   handful of configurations (mostly its largest K that fits, since mAP rises with K); it is a
   frontier of what was measured, not a tuned hyperparameter.
6. **Aggregate across datasets** (:func:`aggregate`), the RL community's way (Agarwal et al.,
   NeurIPS 2021, the ``rliable`` library): per (dataset, budget), each seed's mAP of a
   method's cell is normalized as ``(mAP - random) / (avgpool-all - random)``, where
   ``random`` is the mean mAP of the ``random`` agent's cell at the same budget and
   ``avgpool-all`` that of the recognizer on every frame. So 0 is chance-level frame choice
   at the same compute and 1 is the full-video accuracy of the recognizer every method pools;
   both references exist on any cache (the oracle, a tighter ceiling, only on synthetic ones).
   The interquartile mean (IQM) of the normalized scores over seeds x datasets, with a
   stratified bootstrap 95% CI (``rliable.library.get_interval_estimates``), per budget, and
   over seeds x (dataset, budget) for methods that have every cell.
7. **Writes** (atomically) ``OUT/leaderboard.md``, ``OUT/leaderboard.json`` and one
   ``OUT/leaderboard-<dataset>.png`` per dataset: every method as a line through its points,
   error bars the CI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaframe_env.data.atomic import atomic_output, write_json
from adaframe_env.env import open_store
from adaframe_env.harness.registry import lookup, make_agent, name_fixes_budget
from adaframe_env.harness.runner import (
    dataset_name,
    fingerprint,
    resolve_dataset,
    run_agent,
    run_name,
)
from adaframe_env.protocol import RunConfig

KS = (2, 3, 5, 8, 10)
MUS = (0.2, 0.5, 0.7)
BUDGETS = (20.0, 40.0, 80.0)
DATASETS = ("fcvid", "activitynet")
#: the two references of the normalized score (point 6 of the module docstring)
LOW, HIGH = "random", "avgpool-all"

#: (method, harness name pattern, K values, mu values or None). ``{k}`` in the pattern: the name
#: fixes K; otherwise the name runs with ``--budget K`` (K None: the name fixes the frames).
METHODS: tuple[tuple[str, str, tuple, tuple | None], ...] = (
    ("random", "random", KS, None),
    ("uniform", "uniform", KS, None),
    ("avgpool-u", "avgpool-u{k}", KS, None),
    ("avgpool-r", "avgpool-r{k}", KS, None),
    ("avgpool-g-u", "avgpool-g-u{k}", KS, None),
    ("avgpool-all", "avgpool-all", (None,), None),
    ("scsampler", "scsampler-{k}", KS, None),
    ("mgsampler", "mgsampler-{k}", KS, None),
    ("oracle", "oracle-{k}", KS, None),
    ("lstm-u", "lstm-u{k}", KS, None),
    ("lstm-g-u", "lstm-g-u{k}", KS, None),
    ("adaframe", "adaframe-{k}", (3, 5, 8, 10), MUS),
    ("frameglimpse", "frameglimpse", (3, 5, 10), None),
    ("frameglimpse-g", "frameglimpse-g", (3, 5, 10), None),
    ("fastforward", "fastforward", (3, 5, 10), None),
    ("fastforward-g", "fastforward-g", (3, 5, 10), None),
    ("sb3-ppo", "sb3-ppo", (5, 10), None),
    ("sb3-sac", "sb3-sac", (5, 10), None),
    ("sb3-recurrentppo", "sb3-recurrentppo", (5, 10), None),
    ("ocsampler", "ocsampler-{k}", (3, 5, 10), None),
    ("frameexit", "frameexit-{k}", (3, 5, 10), None),  # K: the most frames; it exits early
    ("arnet", "arnet-{k}", (3, 5, 10), None),
)
TRAINING_FREE = (
    "random",
    "uniform",
    "avgpool-u",
    "avgpool-all",
    "scsampler",
    "mgsampler",
    "oracle",
)


@dataclass(frozen=True)
class Entry:
    """One configuration of a method: a harness name, the budget of a name without K, the
    thresholds of an adaptive method."""

    method: str
    agent: str
    budget: int | None = None
    mu: tuple[float, ...] | None = None


def entries(methods: list[str] | None = None, say=print) -> list[Entry]:
    """The configurations of ``methods`` (default: all of :data:`METHODS`); a method whose
    name the registry does not know is skipped with one line through ``say``."""
    known = {m for m, *_ in METHODS}
    wanted = list(dict.fromkeys(methods or [m for m, *_ in METHODS]))
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise ValueError(f"unknown leaderboard method(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")  # fmt: skip
    out = []
    for method, pattern, ks, mus in METHODS:
        if method not in wanted:
            continue
        first = pattern.format(k=ks[0]) if ks[0] is not None else pattern
        if lookup(first) is None:
            say(f"leaderboard: skipping {method}: the registry does not know {first}")
            continue
        for k in ks:
            if "{k}" in pattern:
                out.append(Entry(method, pattern.format(k=k), None, mus))
            else:
                out.append(Entry(method, pattern, k, mus))
    return out


# ------------------------------------------------------------------ running, reusing results
def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def run_entry(entry: Entry, seed: int, path: Path, folder: Path, out: Path, fp: str,
              checkpoints, progress: bool) -> list[dict]:  # fmt: skip
    """The result rows of one (configuration, seed): reused from ``folder`` when finished
    (same cache fingerprint and hyperparameters, scores saved), else run by the harness."""
    config = RunConfig(budget=entry.budget if entry.budget is not None else 10, seed=seed,
                       progress=progress, mu=entry.mu or (0.7,))  # fmt: skip
    agent = make_agent(entry.agent, config)
    has_k = name_fixes_budget(entry.agent)
    budget = getattr(agent, "k", config.budget) if has_k else config.budget
    mus = list(config.mu) if getattr(agent, "uses_mu", False) else [None]
    hp = _jsonable(agent.hparams() if hasattr(agent, "hparams") else {})
    rows = []
    for mu in mus:
        run = run_name(entry.agent, budget, mu, seed, has_k, {}, "test", config.schedule())
        try:
            row = json.loads((folder / f"{run}.json").read_text())
        except (OSError, ValueError):
            break
        ok = (row.get("cache_fingerprint") == fp and row.get("hparams") == hp
              and row.get("scores") and (folder / row["scores"]).is_file())  # fmt: skip
        if not ok:
            break
        rows.append(row)
    else:
        return rows
    return run_agent(entry.agent, str(path), config, out=out, checkpoints=checkpoints,
                     save_scores=True)  # fmt: skip


@dataclass
class Point:
    """One configuration of one method on one dataset, over seeds."""

    method: str
    label: str  # e.g. "mgsampler-5", "adaframe-10 mu=0.7", "random K=5"
    bound: bool
    seeds: list[int]
    maps: list[float]
    gflops: list[float]
    scores: list[Path]
    map: float = 0.0
    gflops_mean: float = 0.0
    ci: tuple[float, float] = (0.0, 0.0)

    def summary(self) -> dict:
        d = dataclasses.asdict(self)
        d["scores"] = [str(p) for p in self.scores]
        return d


def collect(rows_by_entry: list[tuple[Entry, list[dict]]], folder: Path) -> list[Point]:
    """Group the rows of every seed into points (one per configuration and ``mu``)."""
    points: dict[str, Point] = {}
    for entry, rows in rows_by_entry:
        for r in rows:
            label = entry.agent + (f" K={entry.budget}" if entry.budget is not None else "")
            label += f" mu={r['mu']:g}" if r.get("mu") is not None else ""
            p = points.setdefault(label, Point(entry.method, label, bool(r.get("bound")),
                                               [], [], [], []))  # fmt: skip
            p.seeds.append(int(r["seed"]))
            p.maps.append(float(r["map"]))
            p.gflops.append(float(r["gflops_mean"]))
            p.scores.append(folder / r["scores"])
    for p in points.values():
        p.map, p.gflops_mean = float(np.mean(p.maps)), float(np.mean(p.gflops))
    return list(points.values())


# ------------------------------------------------------------------ the bootstrap
def weighted_map(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B,) mAP of ``scores`` (N, C) under each row of video ``weights`` (B, N): a video of
    weight w counts as w copies of it (a bootstrap resample). Equal to
    :func:`adaframe_env.metrics.mean_average_precision` of the resample, ties included
    (precision at a positive's score counts every video scored at least as high, as
    scikit-learn's average precision does); classes without a positive of positive weight are
    left out. Every video is the positive of one class, so the precisions are two (B, N) x
    (N, N) products: O(B N^2), a second for 1000 replicates of 1500 videos."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    s = scores[:, labels]  # s[j, p]: video j's score for the class of video p
    above = (s >= s[np.arange(n), np.arange(n)][None, :]).astype(np.float32)  # (N, N)
    same = (labels[:, None] == labels[None, :]).astype(np.float32)
    onehot = (labels[:, None] == np.unique(labels)[None, :]).astype(np.float64)  # (N, C')
    w = np.asarray(weights, np.float32)
    seen = (w @ above).astype(np.float64)  # weight scored at least as high as positive p
    tp = (w @ (above * same)).astype(np.float64)  # of which positives of p's class
    contrib = w * tp / np.maximum(seen, 1e-12)
    npos = w.astype(np.float64) @ onehot
    ap = np.where(npos > 0, (contrib @ onehot) / np.maximum(npos, 1e-12), np.nan)
    return np.nanmean(ap, axis=1)


def bootstrap_map(scores: list[np.ndarray], labels: np.ndarray, reps: int = 1000,
                  seed: int = 0, chunk: int = 250) -> np.ndarray:  # fmt: skip
    """(reps,) replicates of the mean-over-seeds mAP: each draws the N videos and the S seeds
    with replacement (point 4 of the module docstring). The video draws depend only on
    ``seed``, N and ``reps``, so every point of a dataset sees the same ones (paired)."""
    rng = np.random.default_rng(seed)
    n, s = len(labels), len(scores)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=reps).astype(np.float32)
    drawn = rng.integers(0, s, size=(reps, s))
    unique: dict[bytes, int] = {}  # seeds with the same scores (deterministic methods): once
    index = [unique.setdefault(hashlib.sha1(np.ascontiguousarray(x).tobytes()).digest(),
                               len(unique)) for x in scores]  # fmt: skip
    firsts = [scores[index.index(u)] for u in range(len(unique))]
    per = np.empty((reps, len(firsts)))
    for u, x in enumerate(firsts):
        for i in range(0, reps, chunk):
            per[i : i + chunk, u] = weighted_map(x, labels, weights[i : i + chunk])
    return per[:, np.asarray(index)[drawn]].mean(axis=1)


def add_intervals(points: list[Point], labels: np.ndarray, reps: int, seed: int = 0) -> None:
    """Set each point's 95% CI: the percentiles of :func:`bootstrap_map`, shifted by the
    bootstrap's estimate of its bias (mean of the replicates minus the point's mAP). The shift
    matters: a resample repeats videos, and a repeated positive scores consecutive hits, so
    resampled AP runs high (about +2 mAP on the fcvid proxy, ~6 positives per class); the
    unshifted interval did not even contain the mean for some points."""
    for p in points:
        reps_ = bootstrap_map([np.load(f) for f in p.scores], labels, reps, seed)
        reps_ = reps_ - (reps_.mean() - p.map)
        p.ci = (float(np.percentile(reps_, 2.5)), float(np.percentile(reps_, 97.5)))


# ------------------------------------------------------------------ tables
def budget_table(points: list[Point], budgets) -> dict[str, dict[float, Point | None]]:
    """method -> budget -> its configuration with the best mean mAP among those whose mean
    GFLOPs are at most the budget (None when none fits)."""
    table: dict[str, dict[float, Point | None]] = {}
    for p in points:
        table.setdefault(p.method, {})
    for method in table:
        mine = [p for p in points if p.method == method]
        for b in budgets:
            fit = [p for p in mine if p.gflops_mean <= b]
            table[method][b] = max(fit, key=lambda p: p.map) if fit else None
    return table


def normalized(cell: Point, low: float, high: float) -> np.ndarray:
    """Each seed's mAP of ``cell`` as ``(mAP - low) / (high - low)``."""
    return (np.asarray(cell.maps) - low) / (high - low)


def aggregate(tables: dict[str, dict], highs: dict[str, float | None], budgets,
              reps: int = 2000, seed: int = 0) -> dict:  # fmt: skip
    """IQM of normalized scores across datasets, with stratified bootstrap CIs (rliable):
    ``{method: {budget or "all": (iqm, lo, hi)}}``, or ``{"skipped": reason}`` when a
    reference is missing. ``tables``: dataset -> :func:`budget_table`; ``highs``: dataset ->
    mean mAP of :data:`HIGH`. Seeds are the runs and datasets (or (dataset, budget)) the
    tasks; a method enters a column only with a cell on each of its tasks."""
    from rliable import library as rly
    from rliable import metrics

    for ds, table in tables.items():
        if highs.get(ds) is None:
            return {"skipped": f"{ds}: no {HIGH} result (the normalization's 1)"}
        if LOW not in table:
            return {"skipped": f"{ds}: no {LOW} result (the normalization's 0)"}
    columns: dict[str, dict[str, np.ndarray]] = {}  # column -> method -> (seeds, tasks)
    methods = sorted({m for t in tables.values() for m in t} - {LOW, HIGH})
    for method in methods:
        for b in [*budgets, "all"]:
            cols, ok = [], True
            for ds, table in tables.items():
                for bb in budgets if b == "all" else [b]:
                    cell, low = table.get(method, {}).get(bb), table[LOW].get(bb)
                    if cell is None or low is None or highs[ds] <= low.map:
                        ok = False
                        break
                    cols.append(normalized(cell, low.map, highs[ds]))
            if ok and len({len(c) for c in cols}) == 1:
                columns.setdefault(b if b == "all" else f"{b:g}", {})[method] = np.stack(
                    cols, axis=1
                )
    out: dict[str, dict] = {}
    for col, score_dict in columns.items():
        with warnings.catch_warnings():  # arch deprecates rliable's random_state argument
            warnings.simplefilter("ignore", FutureWarning)
            point, interval = rly.get_interval_estimates(
                score_dict, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps,
                random_state=np.random.RandomState(seed),
            )  # fmt: skip
        for method in score_dict:
            lo, hi = interval[method][:, 0]
            out.setdefault(method, {})[col] = (float(point[method][0]), float(lo), float(hi))
    return out


# ------------------------------------------------------------------ outputs
def fmt_cell(p: Point | None) -> str:
    if p is None:
        return "-"
    return (f"{100 * p.map:.1f} [{100 * p.ci[0]:.1f}, {100 * p.ci[1]:.1f}] "
            f"({p.label}, {p.gflops_mean:.1f})")  # fmt: skip


def draw(points: list[Point], path: Path, title: str, budgets) -> Path:
    """Every method as a line through its points (mAP vs GFLOPs, log x), error bars the CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for method in dict.fromkeys(p.method for p in points):
        mine = sorted((p for p in points if p.method == method), key=lambda p: p.gflops_mean)
        x = [p.gflops_mean for p in mine]
        y = np.array([100 * p.map for p in mine])
        err = np.array(
            [[y_ - 100 * p.ci[0], 100 * p.ci[1] - y_] for p, y_ in zip(mine, y, strict=True)]
        ).T
        style = "--" if mine[0].bound else "-"
        ax.errorbar(x, y, yerr=np.maximum(err, 0), fmt="o" + style, ms=4, capsize=3,
                    label=method + (" (ground truth)" if mine[0].bound else ""))  # fmt: skip
    for b in budgets:
        ax.axvline(b, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs per video (mean)")
    ax.set_ylabel("mAP (%), test split; bars: 95% CI (seeds x videos)")
    ax.set_title(f"leaderboard: {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def report(results: dict, budgets, agg: dict, meta: dict) -> str:
    """The markdown of ``leaderboard.md``."""
    head = " | ".join(f"<= {b:g} GFLOPs" for b in budgets)
    lines = [
        "# Leaderboard",
        "",
        f"`{meta['command']}`: seeds {meta['seeds']}, test split, {meta['reps']} bootstrap "
        f"replicates; {meta['seconds'] / 60:.1f} min.",
        "",
        "Cells: mean mAP (%) over seeds [95% CI, bootstrap over seeds x test videos] "
        "(configuration, mean GFLOPs). A method's cell at budget B is its configuration with "
        "the best mean mAP among those with mean GFLOPs <= B. The oracle reads ground truth: a reference, not a competitor.",
        "",
    ]
    for ds, res in results.items():
        lines += [f"## {ds} ({res['videos']} test videos)", "",
                  f"![{ds}]({res['plot']})", "", f"| method | {head} |",
                  "|---" * (len(budgets) + 1) + "|"]  # fmt: skip
        for method, cells in res["table"].items():
            bound = any(p.bound for p in cells.values() if p is not None)
            name = method + (" (ground truth)" if bound else "")
            lines.append(f"| {name} | " + " | ".join(fmt_cell(cells[b]) for b in budgets) + " |")
        lines.append("")
        high = [p for p in res["points"] if p.method == HIGH]
        if high:
            lines += [f"Reference (the aggregate's 1): {fmt_cell(high[0])}.", ""]
    lines += ["## Aggregate across datasets", ""]
    if "skipped" in agg:
        lines += [f"Not computed: {agg['skipped']}.", ""]
    else:
        lines += [
            f"IQM (interquartile mean, `rliable`) of `(mAP - {LOW}) / ({HIGH} - {LOW})` per "
            "dataset and budget, over seeds x datasets [95% stratified bootstrap CI]; `all`: "
            "over seeds x (dataset, budget), for methods with every cell.",
            "",
            f"| method | {head} | all |",
            "|---" * (len(budgets) + 2) + "|",
        ]
        for method, cols in agg.items():
            cells = [cols.get(b if b == "all" else f"{b:g}") for b in [*budgets, "all"]]
            lines.append(f"| {method} | " + " | ".join(
                "-" if c is None else f"{c[0]:.2f} [{c[1]:.2f}, {c[2]:.2f}]" for c in cells
            ) + " |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def leaderboard(datasets=DATASETS, seeds=(0, 1, 2), methods: list[str] | None = None,
                budgets=BUDGETS, out="results", checkpoints=None, reps: int = 1000,
                progress: bool = True, command: str = "adaframe leaderboard",
                say=print) -> dict:  # fmt: skip
    """Run (or reuse) every configuration on every dataset for every seed, then write
    ``OUT/leaderboard.{md,json}`` and ``OUT/leaderboard-<dataset>.png``; returns the JSON."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    if reps < 100:
        raise ValueError(f"bootstrap replicates must be at least 100, got {reps}")
    if not budgets or any(not b > 0 for b in budgets):
        raise ValueError(f"budgets must be positive GFLOPs, got {list(budgets)}")
    t0 = time.perf_counter()
    out = Path(out)
    todo = entries(methods, say)
    results: dict[str, dict] = {}
    for dataset in datasets:
        path = resolve_dataset(dataset, progress=progress)
        store = open_store(path)
        ds = dataset_name(store)
        folder, fp = out / ds, fingerprint(path)
        synthetic = store.synthetic
        done = []
        for i, entry in enumerate(todo):
            if entry.method == "oracle" and not synthetic:
                continue  # the bound needs ground-truth relevance
            rows = []
            for seed in seeds:
                rows += run_entry(entry, seed, path, folder, out, fp, checkpoints, progress)
            done.append((entry, rows))
            if progress:
                say(f"leaderboard {ds}: {i + 1}/{len(todo)} {entry.agent}"
                    + (f" K={entry.budget}" if entry.budget is not None else ""))  # fmt: skip
        points = collect(done, folder)
        labels = store.label[store.videos("test")]
        add_intervals(points, labels, reps)
        table = budget_table(points, budgets)
        plot = draw(points, out / f"leaderboard-{ds}.png", ds, budgets)
        results[ds] = {"videos": len(labels), "plot": plot.name, "points": points,
                       "table": table}  # fmt: skip
    highs = {ds: next((p.map for p in r["points"] if p.method == HIGH), None)
             for ds, r in results.items()}  # fmt: skip
    agg = aggregate({ds: r["table"] for ds, r in results.items()}, highs, budgets)
    meta = {"command": command, "seeds": list(seeds), "reps": reps,
            "seconds": time.perf_counter() - t0}  # fmt: skip
    with atomic_output(out / "leaderboard.md") as tmp:
        Path(tmp).write_text(report(results, budgets, agg, meta))
    data = {
        **meta, "budgets": list(budgets), "aggregate": agg,
        "datasets": {ds: {"videos": r["videos"], "plot": r["plot"],
                          "points": [p.summary() for p in r["points"]],
                          "table": {m: {f"{b:g}": (p.label if p else None) for b, p in c.items()}
                                    for m, c in r["table"].items()}}
                     for ds, r in results.items()},
    }  # fmt: skip
    write_json(out / "leaderboard.json", data)
    return data
