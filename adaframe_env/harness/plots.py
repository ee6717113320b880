"""Pictures of a dataset's results folder (``benchmarks/plot.py DIR``), after paper Fig. 3-7.

- ``map_vs_gflops.png`` (Fig. 3): every run of the dataset, mAP against mean GFLOPs per video;
  runs of one family are joined (same name up to K; an adaptive agent's runs over mu at one
  K, as the paper draws AdaFrame-3/5/10); bounds (the oracle) are hollow and
  dashed, they are not competitors.
- ``exit_steps.png`` (Fig. 4): per run, the fraction of videos that exit at each step (circle
  area) and the accuracy of those videos (colour).
- ``class_frames.png`` (Fig. 5): for the focus run, the share of each class's videos exiting at
  each step, for the most and the least frame-hungry classes.
- ``location_density.png`` (Fig. 7): for the focus run, the density of visited locations
  (normalized position in the video) at each step.

The focus run is ``focus=`` if given, else the run whose exit step varies most (an adaptive
agent), ties broken by the most recent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure  # no pyplot: the caller's backend and state are left alone

from adaframe_env.data.atomic import atomic_output
from adaframe_env.harness.runner import aggregate_seeds, settings_tag

PLOT_FILES = ("map_vs_gflops.png", "exit_steps.png", "class_frames.png", "location_density.png")


def load_results(folder: str | Path, split: str = "test") -> list[dict]:
    """Every ``<run>.json`` result of ``split`` in a dataset folder (not the per-video files)."""
    rows = []
    for p in sorted(Path(folder).glob("*.json")):
        if p.name.endswith(".videos.json"):
            continue
        try:
            row = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if (isinstance(row, dict) and "map" in row and "gflops_mean" in row
                and row.get("split", "test") == split):  # fmt: skip
            row["_path"] = str(p)
            rows.append(row)
    return rows


def load_records(row: dict) -> list[dict]:
    p = Path(row["_path"]).with_name(row.get("records", ""))
    return json.loads(p.read_text()) if p.is_file() else []


def family(agent: str) -> str:
    """``avgpool-u10`` -> ``avgpool-u``; ``scsampler-25`` -> ``scsampler``."""
    return re.sub(r"-?\d+$", "", agent) or agent


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def display_name(agent: str) -> str:
    """How the pictures name an agent: a user's import path ``dir/my_agent.py:make`` or
    ``pkg.my_agent:make`` shortens to ``my_agent:make``; registered names stay as they are."""
    target, sep, attr = agent.rpartition(":")
    if not sep:
        return agent
    return f"{Path(target).stem if target.endswith('.py') else target.rpartition('.')[2]}:{attr}"


def _point(r: dict) -> tuple[float, float]:
    return r["gflops_mean"], 100 * r["map"]


def _near(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Two points that one marker would cover: within 3% in GFLOPs (the axis is logarithmic)
    and 0.15 in mAP. AvgPooling-G's runs sit 1.3 GFLOPs (its memory) right of AvgPooling's."""
    return abs(np.log(a[0] / b[0])) < 0.03 and abs(a[1] - b[1]) < 0.15


def _covered(point, points) -> bool:
    return any(_near(point, q) for q in points)


def plot_map_vs_gflops(rows: list[dict], path: Path, title: str) -> Path:
    """mAP against GFLOPs, one line per agent family; several seeds of a run are averaged
    (error bar: their standard deviation).

    Families whose points all coincide with another family's (AvgPooling-G on a cache whose
    fusion weight is 0: the same runs as AvgPooling; ``uniform`` on ``avgpool-u10``) are drawn
    once, their names joined in the legend; a point on top of another family's point is drawn
    as a larger hollow ring around it. Each point's K is written
    once; an adaptive agent's points are labelled by their mu (coinciding mu joined)."""
    fig = Figure(figsize=(7, 4.8))
    ax = fig.subplots()
    groups: dict[str, list[dict]] = {}
    for r in aggregate_seeds(rows):
        # an adaptive agent's line runs over mu at its own K (paper Fig. 3); others over K
        base = r["agent"] if r.get("mu") is not None else family(r["agent"])
        name = display_name(base) + settings_tag(r) + (" (bound)" if r.get("bound") else "")
        groups.setdefault(name, []).append(r)
    # families with exactly the points of an earlier one are drawn with it
    merged: dict[str, list[str]] = {}
    points: dict[str, list] = {}
    for name in sorted(groups, key=lambda n: (-len(groups[n]), len(n), n)):  # largest, plainest
        mine = [_point(r) for r in groups[name]]
        home = next((m for m in merged if all(_covered(q, points[m]) for q in mine)), None)
        if home is None:
            merged[name], points[name] = [name], mine
        else:
            merged[home].append(name)
    merged = dict(sorted(merged.items()))
    palette = matplotlib.colormaps["tab10" if len(merged) <= 10 else "tab20"]
    drawn: list[tuple] = []  # points drawn so far
    labelled: list[tuple] = []  # (point, text) annotations written so far
    for i, (name, names) in enumerate(merged.items()):
        rs = sorted(groups[name], key=lambda r: r["gflops_mean"])
        x = [r["gflops_mean"] for r in rs]
        y = [100 * r["map"] for r in rs]
        bound = any(r.get("bound") for r in rs)
        color = palette(i % palette.N)
        marker = "D" if bound else "os^vPX*"[i % 7]
        label = names[0] + (f" (same points: {', '.join(names[1:])})" if names[1:] else "")
        mus = [r["mu"] for r in rs if r.get("mu") is not None]
        if mus:
            label += " (over mu)"
        on_top = [_covered(_point(r), drawn) for r in rs]
        ax.plot(x, y, "--" if bound else "-", color=color, alpha=0.6)
        for top in (False, True):  # a point on top of another family's: a larger ring
            sel = [k for k, t in enumerate(on_top) if t == top]
            if sel:
                ax.scatter([x[k] for k in sel], [y[k] for k in sel], s=110 if top else 36,
                           marker=marker, color=color, linewidths=1.5 if top else 1,
                           facecolors="none" if (bound or top) else color, zorder=3,
                           label=label if sel[0] == min(range(len(rs)), key=lambda k: on_top[k])
                           else None)  # fmt: skip
        drawn += [_point(r) for r in rs]
        if any(r["n_seeds"] > 1 for r in rs):
            err = [100 * r["map_std"] for r in rs]
            ax.errorbar(x, y, yerr=err, fmt="none", ecolor=color, alpha=0.6, capsize=2)
        texts: dict[tuple, list[str]] = {}
        for r in rs:
            if r.get("mu") is not None:
                texts.setdefault(_point(r), []).append(f"{r['mu']:g}")
            elif tag := r["agent"][len(family(r["agent"])) :].lstrip("-"):
                texts.setdefault(_point(r), []).append(tag)
        for (px, py), parts in texts.items():
            text = ("mu " if mus else "") + "/".join(dict.fromkeys(parts))
            if not any(t == text and _near((px, py), q) for q, t in labelled):
                labelled.append(((px, py), text))
                ax.annotate(text, (px, py), textcoords="offset points", xytext=(4, 3),
                            fontsize=6.5, color="0.25")  # fmt: skip
    ax.set_xscale("log")  # "all frames" costs ~15x K=10: a linear axis crushes the rest
    ax.set_xlabel("GFLOPs per video (mean, log scale)")
    ax.set_ylabel("mAP (%)")
    ax.set_title(f"{title}: mAP vs computation (dashed, hollow diamonds = bound)")
    ax.grid(alpha=0.3)
    if len(merged) > 8:  # outside, so that it hides no point
        fig.set_figwidth(10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7, loc="best", ncol=2)  # where it covers the fewest points
    return _save(fig, path)


def plot_exit_steps(rows: list[dict], path: Path, title: str) -> Path:
    shown = [(r, load_records(r)) for r in rows]
    shown = [(r, rec) for r, rec in shown if rec][:30]
    fig = Figure(figsize=(8, 0.35 * max(len(shown), 4) + 1.5))
    ax = fig.subplots()
    sc = None
    max_step = 1
    for i, (_r, rec) in enumerate(shown):
        steps = np.array([x["exit_step"] for x in rec])
        ok = np.array([x["predicted"] == x["label"] for x in rec])
        for s in np.unique(steps):
            sel = steps == s
            frac = sel.mean()
            sc = ax.scatter(s, i, s=600 * frac, c=[ok[sel].mean()], cmap="viridis", vmin=0,
                            vmax=1, edgecolors="k", linewidths=0.3)  # fmt: skip
        max_step = max(max_step, int(steps.max()))
    ax.set_yticks(range(len(shown)), [_label(r) for r, _ in shown], fontsize=7)
    ax.set_xlabel("exit step (frames looked at when the prediction is made)")
    ax.set_xscale("log" if max_step > 40 else "linear")
    ax.set_title(f"{title}: where videos exit (area = fraction, colour = accuracy)")
    ax.grid(alpha=0.3)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="accuracy of the videos exiting there")
    return _save(fig, path)


def _label(r: dict) -> str:
    return display_name(r["agent"]) + (f" mu={r['mu']:g}" if r.get("mu") is not None else "") + (
        f" K={r['budget']}" if r.get("budget") is not None and not re.search(r"\d$", r["agent"])
        else ""
    )  # fmt: skip


def focus_run(rows: list[dict], focus: str | None = None) -> dict | None:
    if focus:
        for r in rows:
            if focus in (r.get("run"), r["agent"]):
                return r
        raise ValueError(f"no run named {focus!r} in {[r.get('run') for r in rows]}")
    candidates = [r for r in rows if not r.get("bound") and r.get("budget") is not None]
    candidates = candidates or rows
    if not candidates:
        return None

    def spread(r):
        rec = load_records(r)
        return (np.std([x["exit_step"] for x in rec]) if rec else -1.0, r.get("time", ""))

    return max(candidates, key=spread)


def plot_class_frames(row: dict | None, path: Path, title: str, n: int = 5) -> Path:
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    rec = load_records(row) if row else []
    if rec:
        labels = np.array([x["label"] for x in rec])
        steps = np.array([x["exit_step"] for x in rec])
        frames = np.array([x["frames"] for x in rec])
        classes = np.unique(labels)
        mean = np.array([frames[labels == c].mean() for c in classes])
        order = classes[np.argsort(mean, kind="stable")]
        pick = list(order[-n:][::-1]) + [c for c in order[:n] if c not in order[-n:]]
        smax = int(steps.max())
        grid = np.zeros((len(pick), smax))
        for i, c in enumerate(pick):
            s = steps[labels == c]
            grid[i] = np.bincount(s - 1, minlength=smax)[:smax] / len(s)
        im = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=1,
                       extent=(0.5, smax + 0.5, len(pick) - 0.5, -0.5))  # fmt: skip
        names = _class_names(row)
        ax.set_yticks(range(len(pick)), [
            f"{names.get(int(c), c)} ({frames[labels == c].mean():.1f} fr)" for c in pick
        ], fontsize=7)  # fmt: skip
        if len(pick) > n:
            ax.axhline(min(n, len(pick)) - 0.5, color="r", lw=1)
        fig.colorbar(im, ax=ax, label="share of the class's videos exiting at the step")
        ax.set_xlabel("exit step")
        ax.set_title(f"{title}: {_label(row)}, most (top) and least frame-hungry classes")
    else:
        ax.text(0.5, 0.5, "no per-video records", ha="center")
    return _save(fig, path)


def _class_names(row: dict) -> dict:
    try:
        import h5py

        with h5py.File(row["cache_path"], "r") as f:
            return dict(enumerate(f["classes/name"].asstr()[:]))
    except (OSError, KeyError):
        return {}


def plot_location_density(row: dict | None, path: Path, title: str, bins: int = 20) -> Path:
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    rec = load_records(row) if row else []
    if rec:
        locs = [x["locations"] for x in rec]
        steps = min(max(len(seq) for seq in locs), 50)
        grid = np.zeros((steps, bins))
        for seq in locs:
            for t, loc in enumerate(seq[:steps]):
                grid[t, min(int(loc * bins), bins - 1)] += 1
        grid /= np.maximum(grid.sum(axis=1, keepdims=True), 1)
        # step 1 is the reset frame, the same place for every video: a share of 1 that would
        # take the whole colour scale; the scale is set by steps 2 and later (step 1 saturates)
        vmax = grid[1:].max() if steps > 1 and grid[1:].max() > 0 else 1.0
        im = ax.imshow(grid.T, aspect="auto", origin="lower", cmap="magma", vmin=0, vmax=vmax,
                       extent=(0.5, steps + 0.5, 0, 1))  # fmt: skip
        fig.colorbar(im, ax=ax, label="share of the step's videos (scale: steps 2+)",
                     extend="max" if steps > 1 else "neither")  # fmt: skip
        ax.set_xlabel("step (1: the reset frame, shown saturated)")
        ax.set_ylabel("visited location (normalized position in the video)")
        ax.set_title(f"{title}: {_label(row)}, where each step looks")
    else:
        ax.text(0.5, 0.5, "no per-video records", ha="center")
    return _save(fig, path)


def plot_dataset(folder: str | Path, focus: str | None = None) -> list[Path]:
    """Draw the four pictures of ``folder`` (one dataset's results); returns their paths."""
    folder = Path(folder)
    rows = load_results(folder)
    if not rows:
        raise FileNotFoundError(f"{folder}: no result JSON files")
    title = rows[0].get("dataset", folder.name)
    row = focus_run(rows, focus)
    return [
        plot_map_vs_gflops(rows, folder / PLOT_FILES[0], title),
        plot_exit_steps(rows, folder / PLOT_FILES[1], title),
        plot_class_frames(row, folder / PLOT_FILES[2], title),
        plot_location_density(row, folder / PLOT_FILES[3], title),
    ]
