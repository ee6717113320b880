"""Env-steps per second of the AdaFrame environments, next to two references from the same run.

Measured:

- ``AdaFrameEnv`` unwrapped, and through ``gym.make`` (checker and order-enforcing wrappers);
- Gymnasium's ``SyncVectorEnv`` of ``gym.make`` envs;
- the native ``AdaFrameVectorEnv`` (``gym.make_vec``), at 16, 256 and 1024 envs;

each with the memory observed and without. References, measured in the same process:

- ``CartPole-v1``'s step (unwrapped and through ``gym.make``; its vector env per num_envs);
- the raw batched row lookup of the same cache: one fancy-index of the float16 feature array
  per batch of rows (``features[rows]``), with rows drawn the way the envs draw them (each lane
  stays on one random video for ``budget`` steps, a random frame per step). This is the floor
  no env on this data can beat; ``+f32`` adds the float32 conversion an observation needs.

Timing: every configuration runs ``--repeats`` times, interleaved repeat by repeat with its
references, and the best (fastest) repeat of each counts, so that a machine shared with other
work disturbs the ratios less.
Each single-env run includes its resets (random locations, episodes of ``budget`` frames).

Usage::

    adaframe throughput                 # the fcvid proxy (generated on first use)
    adaframe throughput --data tiny --seconds 0.2   # quick check
    adaframe throughput --markdown      # the table for the README
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np

import adaframe_env  # noqa: F401  (registers the ids)
from adaframe_env._fast import to_float32
from adaframe_env.build.proxy import resolve_data
from adaframe_env.env import AdaFrameEnv, open_store
from adaframe_env.vector_env import AdaFrameVectorEnv


def _rate(fn, steps_per_call: int, seconds: float) -> float:
    """Steps per second of ``fn`` run for about ``seconds``."""
    fn()  # warm up
    calls, t0 = 0, time.perf_counter()
    while True:
        for _ in range(8):
            fn()
        calls += 8
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return calls * steps_per_call / dt


def single_stepper(env, budget: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    actions = rng.random((4096, *env.action_space.shape)).astype(np.float32)
    state = {"i": 0}
    env.reset(seed=seed)

    def step():
        i = state["i"] = (state["i"] + 1) % 4096
        _, _, te, tr, _ = env.step(actions[i])
        if te or tr:
            env.reset()

    return step


def cartpole_stepper(env, seed: int = 0):
    actions = np.random.default_rng(seed).integers(0, 2, 4096)
    state = {"i": 0}
    env.reset(seed=seed)

    def step():
        i = state["i"] = (state["i"] + 1) % 4096
        _, _, te, tr, _ = env.step(int(actions[i]))
        if te or tr:
            env.reset()

    return step


def _cycling_stepper(venv, actions: np.ndarray, seed: int):
    """A closure stepping ``venv`` through a fixed cycle of pre-drawn action batches."""
    state = {"i": 0}
    venv.reset(seed=seed)

    def step():
        i = state["i"] = (state["i"] + 1) % len(actions)
        venv.step(actions[i])

    return step


def vector_stepper(venv, seed: int = 0):
    rng = np.random.default_rng(seed)
    actions = rng.random((64, *venv.action_space.shape)).astype(venv.action_space.dtype)
    return _cycling_stepper(venv, actions, seed)


def cartpole_vector_stepper(num_envs: int, seed: int = 0):
    venv = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
    actions = np.random.default_rng(seed).integers(0, 2, (64, num_envs))
    return _cycling_stepper(venv, actions, seed)


def lookup_stepper(store, split: str, num_envs: int, budget: int, f32: bool, seed: int = 0):
    """One fancy-index of the feature array per batch, rows drawn as the envs draw them."""
    rng = np.random.default_rng(seed)
    videos = store.videos(split)
    n_batches = 64 * budget
    vid = np.repeat(rng.choice(videos, (64, num_envs)), budget, axis=0)
    frames = (rng.random((n_batches, num_envs)) * store.length[vid]).astype(np.int64)
    rows = store.offset[vid] + frames
    features = store.array("features")
    state = {"i": 0}

    def step():
        i = state["i"] = (state["i"] + 1) % n_batches
        x = features[rows[i]]
        if f32:
            to_float32(x)

    return step


def main(argv=None, prog: str = "adaframe throughput") -> list[dict]:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--data", default="fcvid", help="cache path or preset (default: fcvid)")
    p.add_argument("--split", default="train")
    p.add_argument("--budget", type=int, default=10)
    p.add_argument("--num-envs", type=int, nargs="+", default=[16, 256, 1024])
    p.add_argument("--sync-max", type=int, default=256, help="largest SyncVectorEnv measured")
    p.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)

    path = resolve_data(args.data, "fcvid" if args.data == "fcvid" else None)
    store = open_store(path)
    kw = {"data": str(path), "split": args.split, "budget": args.budget}
    sec, reps = args.seconds, args.repeats

    def best(make_fn, steps_per_call=1):
        fn = make_fn()
        return max(_rate(fn, steps_per_call, sec) for _ in range(reps))

    def best_of(*measures):
        """Interleave the measurements (make_fn, steps_per_call) repeat by repeat; best each."""
        fns = [(make(), k) for make, k in measures]
        rates = [[] for _ in fns]
        for _ in range(reps):
            for out, (fn, k) in zip(rates, fns, strict=True):
                out.append(_rate(fn, k, sec))
        return [max(r) for r in rates]

    rows: list[dict] = []

    def add(name, n, memory, rate, ref_name, ref_rate, extra=None):
        row = {"config": name, "num_envs": n, "memory": memory, "steps_per_s": rate,
               "reference": ref_name, "reference_steps_per_s": ref_rate}  # fmt: skip
        row.update(extra or {})
        rows.append(row)
        print(
            f"{name:<34} n={n:<5} memory={str(memory):<5} {rate:>13,.0f} steps/s   "
            f"{ref_name}: {ref_rate:>13,.0f}/s  ratio {rate / ref_rate:6.3f}"
            + "".join(f"  {k}={v}" for k, v in (extra or {}).items()),
            flush=True,
        )

    best(lambda: cartpole_stepper(gym.make("CartPole-v1").unwrapped))  # warm up
    for memory in (True, False):
        env = AdaFrameEnv(memory=memory, **kw)
        ada, cart = best_of(
            (lambda env=env: single_stepper(env, args.budget), 1),
            (lambda: cartpole_stepper(gym.make("CartPole-v1").unwrapped), 1),
        )
        add("AdaFrameEnv (unwrapped)", 1, memory, ada, "CartPole-v1 unwrapped", cart,
            {"step_time_x_cartpole": round(cart / ada, 2)})  # fmt: skip
        made = gym.make("AdaFrame-v0", memory=memory, **kw)
        ada, cart = best_of(
            (lambda made=made: single_stepper(made, args.budget), 1),
            (lambda: cartpole_stepper(gym.make("CartPole-v1")), 1),
        )
        add("AdaFrameEnv (gym.make)", 1, memory, ada, "CartPole-v1 gym.make", cart,
            {"step_time_x_cartpole": round(cart / ada, 2)})  # fmt: skip

    sync_rates = {}
    for n in args.num_envs:
        if n > args.sync_max:
            continue
        for memory in (True, False):
            sync = gym.make_vec("AdaFrame-v0", num_envs=n, vectorization_mode="sync",
                                memory=memory, **kw)  # fmt: skip
            rate, cart = best_of(
                (lambda sync=sync: vector_stepper(sync), n),
                (lambda n=n: cartpole_vector_stepper(n), n),
            )
            sync_rates[(n, memory)] = rate
            add("SyncVectorEnv(AdaFrameEnv)", n, memory, rate, "CartPoleVectorEnv", cart)
            sync.close()

    for n in args.num_envs:
        for memory in (True, False):
            venv = gym.make_vec("AdaFrame-v0", num_envs=n, memory=memory, **kw)
            assert isinstance(venv.unwrapped, AdaFrameVectorEnv)
            rate, raw, raw32 = best_of(
                (lambda venv=venv: vector_stepper(venv), n),
                (lambda n=n: lookup_stepper(store, args.split, n, args.budget, False), n),
                (lambda n=n: lookup_stepper(store, args.split, n, args.budget, True), n),
            )
            extra = {"x_raw_f32": round(rate / raw32, 3)}
            if (n, memory) in sync_rates:
                extra["x_sync"] = round(rate / sync_rates[(n, memory)], 1)
            add("AdaFrameVectorEnv (native)", n, memory, rate, "raw lookup", raw, extra)

    if args.markdown:
        print()
        print(markdown(rows, store, args))
    return rows


def markdown(rows, store, args) -> str:
    lines = [
        f"Cache: `{store.path.name}` ({store.num_videos} videos, {len(store.array('features'))} "
        f"frames, D={store.feature_dim}, Dl={store.light_dim}, C={store.num_classes}); "
        f"split {args.split}, budget {args.budget}; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, Gymnasium {gym.__version__}.",
        "",
        "| configuration | envs | memory | env-steps/s | reference (same run) | ref. steps/s | ratio |",
        "|---|---:|---|---:|---|---:|---:|",
    ]
    for r in rows:
        ratio = r["steps_per_s"] / r["reference_steps_per_s"]
        note = ", ".join(f"{k}={v}" for k, v in r.items() if k.startswith(("x_", "step_time")))
        lines.append(
            f"| {r['config']} | {r['num_envs']} | {'yes' if r['memory'] else 'no'} | "
            f"{r['steps_per_s']:,.0f} | {r['reference']} | {r['reference_steps_per_s']:,.0f} | "
            f"{ratio:.3f}{' (' + note + ')' if note else ''} |"
        )
    return "\n".join(lines)

