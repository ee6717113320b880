"""The benchmark harness: fit (or load a cached checkpoint), evaluate on the test split,
compute the metrics, write the results (docs/design.md 6).

``run_agent(name, dataset, config, out)`` is what ``benchmarks/run.py`` calls; it returns one
result dict per setting (one per ``mu`` for agents with ``uses_mu``, else one).

Under ``torchrun`` (:mod:`adaframe_env.distributed`, docs/distributed.md) every rank
calls ``run_agent``: rank 0 builds a missing cache first, all ranks train together (agents that
declare ``distributed = True``: the recurrent agents), rank 0 alone writes the checkpoint, then
evaluates and writes the results; the other ranks return an empty list once the checkpoint is
on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from adaframe_env import distributed
from adaframe_env.build.proxy import resolve_data
from adaframe_env.data.atomic import atomic_output, fsync_path, sweep_dead_partials, write_json
from adaframe_env.data.paths import cache_dir
from adaframe_env.env import open_store
from adaframe_env.harness.registry import make_agent, name_fixes_budget
from adaframe_env.metrics import mean_average_precision, top1_accuracy
from adaframe_env.protocol import RunConfig, VideoResult
from adaframe_env.protocol.agent import CheckpointError, one_line

#: keys every result JSON has (docs/design.md 6; tests check them)
RESULT_KEYS = (
    "agent", "dataset", "budget", "mu", "map", "top1", "frames_mean", "frames_std",
    "gflops_mean", "gflops_std", "seconds_per_video", "params", "seed", "config", "git_commit",
)  # fmt: skip
EVAL_CHUNK = 512
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- identity
def fingerprint(path: str | os.PathLike) -> str:
    """A cheap, stable identity of a cache: size, root attributes, the video table, and the
    first and last rows of every frame array (no pass over the whole file)."""
    h = hashlib.sha256()
    path = Path(path)
    h.update(str(path.stat().st_size).encode())
    with h5py.File(path, "r") as f:
        for key in sorted(f.attrs):
            h.update(f"{key}={f.attrs[key]!r}".encode())
        for name in ("videos/offset", "videos/length", "videos/label", "videos/split"):
            h.update(np.ascontiguousarray(f[name][:]).tobytes())
        for name in ("frames/features", "frames/light", "frames/logits", "frames/light_logits"):
            if name in f:
                ds = f[name]
                h.update(np.ascontiguousarray(ds[:4]).tobytes())
                h.update(np.ascontiguousarray(ds[-4:]).tobytes())
    return h.hexdigest()[:16]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def dataset_name(store) -> str:
    """Name of the results folder: the cache's ``dataset`` attribute (``fcvid-proxy`` for the
    synthetic proxy of FCVID, so proxy and real results never mix), else the file's stem."""
    name = str(store.attrs.get("dataset") or store.path.stem)
    if store.synthetic and not name.endswith("-proxy") and name in ("fcvid", "activitynet"):
        name += "-proxy"
    return re.sub(r"[^\w.-]+", "_", name)


def resolve_dataset(dataset: str | None, progress: bool = True) -> Path:
    """``None`` -> the default FCVID data ($ADAFRAME_FCVID or the proxy, built on first use);
    ``fcvid`` / ``activitynet`` -> that dataset the same way; anything else -> a path/preset."""
    if dataset is None:
        dataset = "fcvid"
    if dataset in ("fcvid", "activitynet"):
        return resolve_data(None, dataset, progress=progress)
    return resolve_data(dataset, progress=progress)


def run_name(
    agent: str,
    budget,
    mu,
    seed: int,
    name_has_k: bool,
    settings=None,
    split: str = "test",
    schedule: dict | None = None,
) -> str:
    """The file name of a run's results: the agent, its ``--set`` settings, ``k<K>`` when the
    name has no K, every schedule override given (``RunConfig.schedule()``: ``epochs3``; the
    agent's default schedule adds nothing, so a default run keeps its name), ``mu<mu>``,
    ``seed<S>``, ``val`` for a val run; so no run overwrites another of other arguments."""
    base = re.sub(r"[^\w.-]+", "_", agent.replace(".py", ""))
    parts = [base]
    parts += [re.sub(r"[^\w.]+", "_", f"{k}_{v}") for k, v in sorted((settings or {}).items())]
    if budget is not None and not name_has_k:
        parts.append(f"k{budget}")
    parts += [f"{name}{value}" for name, value in sorted((schedule or {}).items())]
    if mu is not None:
        parts.append(f"mu{mu:g}")
    parts.append(f"seed{seed}")
    if split != "test":  # a val run must not overwrite the test run of the same config
        parts.append(split)
    return "-".join(parts)


def checkpoint_dir(root: Path, agent_name: str, hparams: dict, config: RunConfig, fp: str):
    """(folder, key) of a checkpoint: the folder's name is the agent's and a digest of the key
    (agent, hparams, the config's key, cache fingerprint); its DONE.json records the key."""
    key = json.dumps(
        {"agent": agent_name, "hparams": hparams, "config": config.key(), "data": fp},
        sort_keys=True, default=str,
    )  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = re.sub(r"[^\w.-]+", "_", agent_name)[:60]
    return Path(root) / f"{safe}-{digest}", key


class CheckpointWarning(UserWarning):
    """A cached checkpoint was not used (damaged or stale): the run retrains and replaces it."""


# --------------------------------------------------------------------------- the run
def fit_or_load(agent, store, config: RunConfig, fp: str, checkpoints: Path | None,
                key_name: str | None = None):  # fmt: skip
    """Train ``agent`` or load its cached checkpoint. Returns (cached, fit_seconds, dir).

    ``key_name``: the agent name in the checkpoint's key (default ``agent.name``). The harness
    passes ``--agent`` as given, so a user's short name (``--name``) labels the results but
    never selects the checkpoint: renaming an agent reuses its training, and two agents
    given one short name do not share one.

    The checkpoint folder is a cache (docs/reliability.md, "Checkpoints and models"): a folder
    whose DONE.json is missing, damaged or records another key, or whose ``agent.load`` fails,
    is retrained with one :class:`CheckpointWarning` and replaced. Publishing is safe against
    other processes training the same checkpoint: the first complete folder wins and the others
    load it (:func:`publish_checkpoint`).

    Under ``torchrun`` rank 0 decides whether the checkpoint exists (and alone loads it: the
    other ranks return without evaluating), every rank trains, rank 0 alone writes the
    checkpoint, and every rank returns once it is on disk. The world size is not part of the
    key (a run on W processes is the same experiment up to the seed's draws: the recurrent
    agents' ``fit``); DONE.json records it.
    """
    train = store.videos("train")
    if not getattr(agent, "trainable", False):
        t0 = time.perf_counter()
        agent.fit(store, train, config)
        return False, time.perf_counter() - t0, None
    root = Path(checkpoints) if checkpoints else cache_dir() / "checkpoints"
    hp = agent.hparams() if hasattr(agent, "hparams") else {}
    ckpt, key = checkpoint_dir(root, key_name or agent.name, hp, config, fp)
    unusable = None  # the identity of a folder found damaged or stale (to be replaced)
    hit = False
    if distributed.is_main():
        sweep_dead_partials(ckpt)
        hit, unusable = _try_checkpoint(agent, ckpt, key)
    if distributed.broadcast_object(hit):
        return True, 0.0, ckpt
    t0 = time.perf_counter()
    agent.fit(store, train, config)
    seconds = time.perf_counter() - t0
    if distributed.is_main():
        done = {"key": json.loads(key), "fit_seconds": seconds, "world_size": distributed.world()}
        publish_checkpoint(agent, ckpt, key, done, unusable)
    distributed.barrier()
    return False, seconds, ckpt


def _try_checkpoint(agent, ckpt: Path, key: str):
    """Load ``ckpt`` into ``agent`` if it is a finished checkpoint of ``key``. Returns (hit,
    identity of the folder when it exists but is unusable, after one warning)."""
    try:
        ident = _identity(ckpt)
    except FileNotFoundError:
        return False, None
    reason = stale_reason(ckpt, key)
    if reason is not None and not ckpt.exists():
        return False, None  # another process moved it away meanwhile: a miss, not a warning
    if reason is None:
        try:
            agent.load(ckpt)
            return True, None
        except Exception as e:  # noqa: BLE001 - a cache entry that does not load is a miss
            reason = _load_failure(e, ckpt)
    warnings.warn(
        f"checkpoint {ckpt} not used: {reason}; retraining (the new checkpoint replaces it)",
        CheckpointWarning,
        stacklevel=3,
    )
    return False, ident


def stale_reason(ckpt: Path, key: str) -> str | None:
    """None when ``ckpt/DONE.json`` records ``key``, else why the folder is not a finished
    checkpoint of this run."""
    try:
        recorded = json.loads((ckpt / "DONE.json").read_text())["key"]
    except FileNotFoundError:
        return "it has no DONE.json (not a finished checkpoint)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"its DONE.json is damaged ({one_line(e)})"
    mine = json.loads(key)
    if recorded != mine:
        if not isinstance(recorded, dict):
            return "its DONE.json records no key"
        fields = sorted(k for k in set(recorded) | set(mine) if recorded.get(k) != mine.get(k))
        return f"its DONE.json records another run (its {', '.join(fields)} differ)"
    return None


def _load_failure(e: Exception, ckpt: Path) -> str:
    if isinstance(e, CheckpointError):
        where = e.path.relative_to(ckpt) if e.path.is_relative_to(ckpt) else e.path
        return f"{where}: {e.reason}"
    return f"load failed ({type(e).__name__}: {one_line(e)})"


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _fsync_tree(folder: Path) -> None:
    for dirpath, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


def publish_checkpoint(agent, ckpt: Path, key: str, done: dict, unusable=None) -> bool:
    """Save ``agent`` to ``ckpt`` atomically: a folder is complete or absent, never half there.

    The checkpoint is written to ``.NAME.PID.partial`` beside ``ckpt``, then, holding the
    checkpoint root's lock (an ``flock`` of the folder), renamed into place. If a folder is there
    already: a finished checkpoint of ``key`` that is not the one found unusable (``unusable``:
    its identity) is another process's, which won the race: this process's partial is
    discarded and the agent loads the winner's (returns False). Otherwise the folder in the way
    is moved aside to ``.NAME.PID.old.partial``, the new one renamed in, and the old one
    deleted (returns True).
    """
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    tmp = ckpt.with_name(f".{ckpt.name}.{os.getpid()}.partial")
    aside = ckpt.with_name(f".{ckpt.name}.{os.getpid()}.old.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        agent.save(tmp)
        (tmp / "DONE.json").write_text(json.dumps(done))
        _fsync_tree(tmp)
        reload = False  # the agent loaded a folder that failed half-way: reload its own
        while True:
            with _root_lock(ckpt.parent):
                ident, finished = _finished(ckpt, key, unusable)
                if not finished:
                    if ident is not None:
                        shutil.rmtree(aside, ignore_errors=True)
                        os.rename(ckpt, aside)
                    os.rename(tmp, ckpt)
                    fsync_path(ckpt.parent)
            if not finished:
                if reload:
                    agent.load(ckpt)
                return True
            try:
                agent.load(ckpt)  # the winner's: evaluate what is on disk
            except Exception as e:  # noqa: BLE001 - then it is damaged: replace it
                warnings.warn(
                    f"checkpoint {ckpt} not used: {_load_failure(e, ckpt)}; replacing it",
                    CheckpointWarning,
                    stacklevel=3,
                )
                unusable, reload = ident, True
                continue
            shutil.rmtree(tmp, ignore_errors=True)
            return False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def _root_lock(root: Path):
    """An exclusive ``flock`` on the folder ``root`` itself, or, where a folder cannot be
    locked (NFS emulates flock with byte-range locks, which need a file), on ``root/.lock``.
    No lock where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _finished(folder: Path, key: str, unusable) -> tuple[tuple[int, int] | None, bool]:
    """(identity of ``folder`` or None when absent, whether it is a finished checkpoint of
    ``key`` other than the one known to be unusable)."""
    try:
        ident = _identity(folder)
    except FileNotFoundError:
        return None, False
    return ident, ident != unusable and stale_reason(folder, key) is None


def evaluate(agent, store, videos, config: RunConfig, mu=None) -> tuple[list[VideoResult], float]:
    """All ``videos`` through ``agent.evaluate`` in chunks; returns (results, seconds)."""
    results: list[VideoResult] = []
    desc = f"eval {agent.name}" + (f" mu={mu}" if mu is not None else "")
    t0 = time.perf_counter()
    with tqdm(total=len(videos), desc=desc, disable=not config.progress) as bar:
        for i in range(0, len(videos), EVAL_CHUNK):
            chunk = videos[i : i + EVAL_CHUNK]
            out = list(agent.evaluate(store, chunk, config, mu=mu))
            if len(out) != len(chunk):
                raise ValueError(
                    f"{agent.name}.evaluate returned {len(out)} results for {len(chunk)} videos"
                )
            results.extend(out)
            bar.update(len(chunk))
    return results, time.perf_counter() - t0


def video_cost(store, r: VideoResult) -> tuple[int, float]:
    """(distinct heavy frames, GFLOPs) of one result, by the rule of the protocol."""
    distinct = len(np.unique(np.asarray(r.frames)))
    gflops = (
        distinct * store.gflops_per_frame
        + (store.memory_cost(r.memory_frames) if r.memory else 0.0)
        + r.light_frames * store.light_gflops_per_frame
        + float(r.extra_gflops)
    )
    return distinct, gflops


def summarize(store, videos, results: list[VideoResult], seconds: float):
    """(metrics dict, per-video records)."""
    scores = np.stack([np.asarray(r.scores, dtype=np.float64) for r in results])
    if scores.shape[1] != store.num_classes or not np.isfinite(scores).all():
        raise ValueError(f"scores must be finite, shape (videos, {store.num_classes})")
    labels = store.label[videos]
    records, frames, gflops = [], [], []
    for v, r, s in zip(videos, results, scores, strict=True):
        f = np.asarray(r.frames, dtype=np.int64)
        length = int(store.length[v])
        if len(f) and (f.min() < 0 or f.max() >= length):
            raise ValueError(f"video {store.video_id[v]}: frame index outside 0..{length - 1}")
        n, g = video_cost(store, r)
        frames.append(n)
        gflops.append(g)
        records.append({
            "id": str(store.video_id[v]), "label": int(store.label[v]),
            "predicted": int(np.argmax(s)), "frames": n, "gflops": g,
            "exit_step": int(r.exit_step if r.exit_step is not None else max(len(f), 1)),
            "frame_indices": f.tolist(),
            "locations": (f / max(length - 1, 1)).round(4).tolist(),
            "memory": bool(r.memory), "memory_frames": int(r.memory_frames) if r.memory else 0,
            "light_frames": int(r.light_frames),
        })  # fmt: skip
    frames, gflops = np.array(frames, float), np.array(gflops)
    metrics = {
        "map": mean_average_precision(scores, labels),
        "top1": top1_accuracy(scores, labels),
        "frames_mean": float(frames.mean()), "frames_std": float(frames.std()),
        "gflops_mean": float(gflops.mean()), "gflops_std": float(gflops.std()),
        "exit_step_mean": float(np.mean([r["exit_step"] for r in records])),
        # paper 4.3: the share of videos whose agent jumped back at least once (42.8% on FCVID)
        "backward_jump_share": float(
            np.mean([bool(np.any(np.diff(r["frame_indices"]) < 0)) for r in records])
        ),
        "seconds_per_video": seconds / len(videos), "n_videos": len(videos),
    }  # fmt: skip
    return metrics, records


def run_agent(
    name: str,
    dataset: str | None = None,
    config: RunConfig | None = None,
    out: str | os.PathLike = "results",
    checkpoints: str | os.PathLike | None = None,
    split: str = "test",
    label: str | None = None,
    save_scores: bool = False,
) -> list[dict]:
    """Run one agent end to end and write ``out/<dataset>/<run>.json`` (+ ``.videos.json``).

    ``label``: a short name for a user's agent (``--name``; default: the agent's ``name``
    attribute, else ``name``), used by the table, the result files (``<label>-k5-seed0.json``)
    and the plots; the row's ``agent_spec`` keeps ``name`` as given, and the checkpoint is
    keyed by it (:func:`fit_or_load`). Refused for registered agents and checked by
    :func:`~adaframe_env.harness.registry.check_short_name`.

    ``save_scores``: also write the (videos, C) float32 class scores as ``<run>.scores.npy``
    (the leaderboard bootstraps mAP over videos from them; row key ``scores``).

    Under ``torchrun``: see the module docstring (ranks other than 0 return ``[]``)."""
    config = config or RunConfig()
    config.check_device()  # a CUDA device on a machine without one: before anything runs
    # a wrong name, short name or setting fails before any data is made
    agent = make_agent(name, config, label)
    shown = label or getattr(agent, "name", "") or name  # what the table, files and plots say
    if distributed.is_distributed() and not getattr(agent, "distributed", False):
        raise ValueError(
            f"{name} trains in one process: run it without torchrun (agents that declare "
            "distributed = True train on several)"
        )
    with distributed.main_first():  # rank 0 builds a missing cache, then the others read it
        path = resolve_dataset(dataset, progress=config.progress)
    store = open_store(path, lazy=config.lazy)
    name_has_k = name_fixes_budget(name)
    if name_has_k:
        # the name fixes K (None: all frames); a copy, so the caller's config is left alone
        config = dataclasses.replace(config, budget=getattr(agent, "k", config.budget))
    longest = int(store.length.max())
    if config.budget is not None and config.budget > longest:  # before anything is trained
        given = f"the K of {name}" if name_has_k else "--budget, RunConfig.budget"
        raise ValueError(
            f"{path}: budget {config.budget} ({given}) is beyond the longest video of this "
            f"cache ({longest} frames); the budget counts looks, revisits included: use at "
            f"most {longest}, the longest video's frame count"
        )
    agent.setup(store, config) if hasattr(agent, "setup") else None
    fp = fingerprint(path)
    cached, fit_seconds, ckpt = fit_or_load(agent, store, config, fp, checkpoints, name)
    if not distributed.is_main():
        return []  # rank 0 evaluates and writes the results
    videos = store.videos(split)
    if len(videos) == 0:
        raise ValueError(f"{path}: the {split} split is empty")
    ds = dataset_name(store)
    folder = Path(out) / ds
    rows = []
    mus = list(config.mu) if getattr(agent, "uses_mu", False) else [None]
    for mu in mus:
        results, seconds = evaluate(agent, store, videos, config, mu)
        metrics, records = summarize(store, videos, results, seconds)
        run = run_name(shown, config.budget, mu, config.seed, name_has_k, config.settings, split,
                       config.schedule())  # fmt: skip
        params = agent.num_parameters() if hasattr(agent, "num_parameters") else 0
        row = {
            "agent": shown, "agent_spec": name, "settings": dict(config.settings), "dataset": ds,
            "budget": config.budget, "mu": mu, **metrics,
            "params": int(params), "seed": config.seed, "config": config.as_dict(),
            "git_commit": git_commit(), "run": run,
            "description": getattr(agent, "description", ""),
            "hparams": agent.hparams() if hasattr(agent, "hparams") else {},
            "bound": bool(getattr(agent, "is_bound", False)),
            "trainable": bool(getattr(agent, "trainable", False)),
            "cached": cached, "fit_seconds": fit_seconds,
            "checkpoint": str(ckpt) if ckpt else None,
            "split": split, "cache_path": str(path), "cache_fingerprint": fp,
            "synthetic": store.synthetic, "gflops_per_frame": store.gflops_per_frame,
            # what the runs' memories cost per video, on average (0 without a memory)
            "memory_gflops": float(np.mean([store.memory_cost(r["memory_frames"])
                                            for r in records])),
            "light_gflops_per_frame": store.light_gflops_per_frame,
            "records": f"{run}.videos.json", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }  # fmt: skip
        if save_scores:
            scores = np.stack([np.asarray(r.scores, np.float32) for r in results])
            with atomic_output(folder / f"{run}.scores.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, scores)
            row["scores"] = f"{run}.scores.npy"
        write_json(folder / f"{run}.videos.json", records)
        write_json(folder / f"{run}.json", row)
        row["json_path"] = str(folder / f"{run}.json")
        rows.append(row)
    return rows


def aggregate_seeds(rows: list[dict]) -> list[dict]:
    """One row per (agent, settings, mu) over several seeds: the first row's fields with mAP,
    top-1, frames and GFLOPs averaged, ``map_std`` / ``top1_std`` (population std over seeds),
    ``n_seeds`` and ``seeds``."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["agent"], settings_tag(r), r.get("mu"))
        groups.setdefault(key, []).append(r)
    out = []
    for rs in groups.values():
        row = dict(rs[0])
        for key in ("map", "top1", "frames_mean", "gflops_mean"):
            row[key] = float(np.mean([r[key] for r in rs]))
        row.update(map_std=float(np.std([r["map"] for r in rs])),
                   top1_std=float(np.std([r["top1"] for r in rs])),
                   n_seeds=len(rs), seeds=[r.get("seed") for r in rs])  # fmt: skip
        out.append(row)
    return out


def settings_tag(row: dict) -> str:
    """`` key=value`` for each ``--set`` setting of a run (empty without settings)."""
    return "".join(f" {k}={v}" for k, v in sorted((row.get("settings") or {}).items()))


def row_label(row: dict) -> str:
    """The agent name with its settings and mu, as the tables print it."""
    mu = f" mu={row['mu']:g}" if row.get("mu") is not None else ""
    return row["agent"] + settings_tag(row) + mu


def format_seeds_row(row: dict) -> str:
    name = row_label(row)
    return (
        f"{name:<24} mAP {100 * row['map']:.1f} +- {100 * row['map_std']:.1f}, top-1 "
        f"{100 * row['top1']:.1f} +- {100 * row['top1_std']:.1f}, {row['frames_mean']:.2f} "
        f"frames, {row['gflops_mean']:.1f} GFLOPs ({row['n_seeds']} seeds: "
        f"{', '.join(str(x) for x in row['seeds'])})"
    )


# --------------------------------------------------------------------------- printing
def warning_alone(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for command lines: ``Category: message``, without the source
    line it came from (which would be a line of the harness, not the user's)."""
    print(f"{category.__name__}: {message}", file=file or sys.stderr)


HEADER = (
    f"{'agent':<24} {'mAP':>6} {'top-1':>6} {'frames':>13} {'GFLOPs':>15} "
    f"{'s/video':>8} {'params':>9}"
)


def format_row(row: dict) -> str:
    name = row_label(row) + (" (bound)" if row.get("bound") else "")
    return (
        f"{name:<24} {100 * row['map']:6.1f} {100 * row['top1']:6.1f} "
        f"{row['frames_mean']:6.2f}+-{row['frames_std']:<5.2f} "
        f"{row['gflops_mean']:7.2f}+-{row['gflops_std']:<6.2f} "
        f"{row['seconds_per_video'] * 1e3:6.2f}ms {row['params']:>9,}"
    )
