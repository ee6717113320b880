"""Drawing an AdaFrame episode: ``rgb_array`` (matplotlib, Agg) and ``ansi`` (one line a step).

The ``rgb_array`` frame has two panels: the video's timeline with the frames visited, numbered
in the order they were looked at (revisits hollow; on synthetic data the ground-truth relevance
is shaded behind them), and the recognizer's margin over steps; the title gives the predicted
and the true class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from adaframe_env.env import AdaFrameEnv

WIDTH, HEIGHT, DPI = 640, 400, 100


def ansi_line(env: AdaFrameEnv) -> str:
    """The latest step of ``env`` as one line of text."""
    frame, loc, new, margin, reward = env._history[-1]
    store = env.store
    pred = int(env._prediction)  # the env's own rule: a tie with the true class is wrong
    names = store.class_names
    end = {"stop": "  [stopped]", "budget": "  [budget used]"}.get(env._end or "", "")
    return (
        f"t={env._t:>3}/{env.budget} video={env._video_id} loc={loc:.3f} "
        f"frame={frame:>4}/{env._length - 1}{'' if new else ' (seen)'} "
        f"margin={margin:+.3f} reward={env._last_reward:+.4f} gflops={env._gflops:.2f} "
        f"pred={names[pred]} true={names[env._label]}{end}"
    )


def _figure(env: AdaFrameEnv):
    fig = getattr(env, "_render_fig", None)
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
        env._render_fig = fig
    fig.clear()
    return fig


def episode_rgb(env: AdaFrameEnv) -> np.ndarray:
    """The episode so far as an (HEIGHT, WIDTH, 3) uint8 image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure(env)
    canvas = FigureCanvasAgg(fig)
    ax_t, ax_m = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.2, 1.0]})
    store = env.store
    length = env._length
    hist = env._history
    frames = np.array([h[0] for h in hist])
    new = np.array([h[2] for h in hist])
    margins = np.array([h[3] for h in hist])
    steps = np.arange(1, len(hist) + 1)

    if store.has_relevance:
        rel = store.video_frames("relevance", env._video).astype(np.float32)
        ax_t.fill_between(np.arange(length), 0, rel, step="mid", color="#cfe3f3", lw=0)
        ax_t.text(0.995, 0.93, "shaded: true relevance", transform=ax_t.transAxes,
                  ha="right", va="top", fontsize=7, color="#6a8caf")  # fmt: skip
    ax_t.plot(frames, np.full(len(frames), 0.5), color="0.7", lw=0.8, zorder=1)
    ax_t.scatter(frames[new], np.full(new.sum(), 0.5), s=90, c=steps[new], cmap="viridis",
                 vmin=1, vmax=max(env.budget, 2), zorder=2)  # fmt: skip
    ax_t.scatter(frames[~new], np.full((~new).sum(), 0.5), s=90, facecolors="none",
                 edgecolors="tab:red", zorder=2)  # fmt: skip
    labels: dict[int, list[str]] = {}
    for i, f in enumerate(frames):
        labels.setdefault(int(f), []).append(str(i + 1))
    for f, steps_at in labels.items():  # visit order; a revisited frame lists every step
        ax_t.annotate(",".join(steps_at), (f, 0.5), xytext=(0, 9), textcoords="offset points",
                      ha="center", fontsize=7)  # fmt: skip
    ax_t.set_xlim(-0.5, max(length - 0.5, 0.5))
    ax_t.set_ylim(0, 1.05)
    ax_t.set_yticks([])
    ax_t.set_xlabel(f"frame (video {env._video_id}, {length} frames)", fontsize=8)
    ax_t.tick_params(labelsize=7)

    ax_m.plot(steps, margins, marker="o", color="tab:blue", lw=1.2)
    ax_m.axhline(0, color="0.6", lw=0.6)
    ax_m.set_xlim(0.5, env.budget + 0.5)
    ax_m.set_ylim(min(-1.0, margins.min() - 0.05), max(1.0, margins.max() + 0.05))
    ax_m.set_xlabel("step t", fontsize=8)
    ax_m.set_ylabel("margin m_t", fontsize=8)
    ax_m.tick_params(labelsize=7)

    pred = int(env._prediction)  # the env's own rule: a tie with the true class is wrong
    names = store.class_names
    ok = pred == env._label
    fig.suptitle(
        f"pred: {names[pred]}   true: {names[env._label]}   "
        f"({'correct' if ok else 'wrong'}; {env._n} frames, {env._gflops:.1f} GFLOPs)",
        fontsize=9,
        color="tab:green" if ok else "tab:red",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def close(env: AdaFrameEnv) -> None:
    fig = getattr(env, "_render_fig", None)
    if fig is not None:
        fig.clear()
        env._render_fig = None
