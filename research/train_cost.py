"""What one AdaFrame training update costs, measured, and what that makes a full FCVID run.

    python research/train_cost.py                # the FCVID proxy, this machine's CPU
    python research/train_cost.py --device cuda  # the network on a GPU
    python research/train_cost.py --allreduce    # + gloo all-reduce between 2 ranks

Measured, ``--updates`` updates after one warm-up, median per update:

1. **env**: the vector env alone, one batch of K-step episodes with random locations (what
   stays on the CPU, in NumPy, whatever the device);
2. **proxy update**: one update of ``adaframe-10`` on the proxy cache, as ``fit`` runs it
   (rollout = env + forward, then losses + backward, then the optimizer step), at the proxy's
   defaults (hidden 256, batch 64, Adam) and at the paper's sizes (hidden 2048, batch 128, SGD);
3. **network at FCVID's dimensions**: the same K steps, losses and backward with random inputs
   of the real caches' sizes (2048-d ResNet-101 features, a 16-frame memory of 1280-d
   MobileNetV2 features, 239 classes), hidden 2048, batch 128 (no env: its cost is 1);
4. with ``--allreduce``: the gloo all-reduce of that network's gradient between 2 processes.

The estimate for a full run (printed at the end; docs/distributed.md) is
``updates x (env + network at FCVID's dimensions)`` with ``updates = floor(45,611 / 128) x 100``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.distributions import Normal

from adaframe_env.env import open_store
from adaframe_env.harness.registry import make_agent
from adaframe_env.harness.runner import resolve_dataset
from adaframe_env.protocol import RunConfig
from agents.recurrent import AdaFrameNet, AdaFrameSettings, Rollout, losses, rollout
from agents.recurrent.memory import standardization

FCVID = {"train_videos": 45_611, "test_videos": 45_612, "seconds_per_video": 167, "fps": 1,
         "feature_dim": 2048, "light_dim": 1280, "classes": 239, "memory": 16}  # fmt: skip
PAPER = {"epochs": 100, "batch_size": 128, "hidden": 2048, "k": 10}


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def clock(device) -> float:
    """``time.perf_counter()`` once the device's queued work is done."""
    sync(device)
    return time.perf_counter()


def timed(fn, device) -> float:
    t0 = clock(device)
    fn()
    return clock(device) - t0


def median_of(parts: list[dict]) -> dict:
    return {k: statistics.median(p[k] for p in parts) for k in parts[0]}


def env_cost(store_path, batch: int, k: int, updates: int) -> float:
    """Seconds for one batch of K-step episodes in the vector env, random locations."""
    config = RunConfig(budget=k, progress=False)
    agent = make_agent(f"adaframe-{k}", config)
    store = open_store(store_path)
    agent.setup(store, config)
    env = agent.make_env(store, "train", batch)
    rng = np.random.default_rng(0)

    def episodes():
        env.reset(options={"video": rng.integers(0, len(env.split_videos), batch)})
        for _ in range(k - 1):
            env.step(rng.random((batch, 1), dtype=np.float32))

    return statistics.median(timed(episodes, "cpu") for _ in range(updates + 1))


def timed_updates(forward, opt, s, updates: int, device: str, first: str) -> list[dict]:
    """Seconds of each part of ``updates`` updates (``forward`` -> ``first``, backward,
    step, whole), after one warm-up update that is not counted."""
    parts = []
    for _ in range(updates + 1):
        t0 = clock(device)
        r = forward()
        t1 = clock(device)
        opt.zero_grad()
        losses(r, s)["total"].backward()
        t2 = clock(device)
        opt.step()
        t3 = clock(device)
        parts.append({first: t1 - t0, "backward": t2 - t1, "step": t3 - t2, "update": t3 - t0})
    return parts[1:]


def proxy_update(store_path, settings: dict, k: int, updates: int, device: str) -> dict:
    """Seconds of one ``fit`` update of adaframe-K on the cache (rollout, backward, step)."""
    config = RunConfig(budget=k, progress=False, device=device, settings=settings)
    agent = make_agent(f"adaframe-{k}", config)
    store = open_store(store_path)
    agent.setup(store, config)
    s, net = agent.settings, agent.model
    train = store.videos("train")
    rng = np.random.default_rng(0)
    agent.buffers = standardization(store, train, rng)
    batch = min(s.batch_size, len(train))
    env = agent.make_env(store, "train", batch)
    opt_cls = torch.optim.SGD if s.optimizer == "sgd" else torch.optim.Adam
    opt = opt_cls(net.parameters(), s.lr, weight_decay=s.weight_decay)
    net.train()

    def forward() -> Rollout:
        videos = rng.choice(len(env.split_videos), batch, replace=False)
        return rollout(net, env, videos, agent.buffers, agent.device, sigma=s.sigma)

    parts = timed_updates(forward, opt, s, updates, device, first="rollout")
    return {**median_of(parts), "params": agent.num_parameters(), "batch": batch,
            "hidden": s.hidden}  # fmt: skip


def network_update(batch: int, hidden: int, k: int, updates: int, device: str) -> dict:
    """Seconds of the network's part of one update at FCVID's dimensions, random inputs."""
    torch.manual_seed(0)
    s = AdaFrameSettings(hidden=hidden, optimizer="sgd", dropout=0.5)
    net = AdaFrameNet(FCVID["feature_dim"], FCVID["classes"], FCVID["light_dim"], s, k)
    net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), 1e-3, momentum=0.9, weight_decay=1e-4)
    b, m = batch, FCVID["memory"]
    frames = torch.randn(k, b, FCVID["feature_dim"], device=device)
    pbar = torch.softmax(torch.randn(k, b, FCVID["classes"], device=device), -1)
    memory = torch.randn(b, m, FCVID["light_dim"], device=device)
    positions = (torch.arange(m, device=device) + 0.5).expand(b, m) / m
    labels = np.random.default_rng(0).integers(0, FCVID["classes"], b)

    def forward() -> Rollout:
        keys = net.core.attention.keys(memory, positions)
        state = net.core.initial_state(b, device)
        loc = torch.zeros(b, device=device)
        logits, utility, log_prob, location = [], [], [], [loc]
        for t in range(k):
            state, s_t, a_t, v_t, _ = net.step(frames[t], pbar[t], loc, state, memory, keys)
            logits.append(s_t)
            utility.append(v_t)
            if t < k - 1:
                policy = Normal(a_t, s.sigma)
                draw = policy.sample()
                log_prob.append(policy.log_prob(draw))
                loc = draw.clamp(0, 1)
                location.append(loc)
        return Rollout(logits=torch.stack(logits, 1), utility=torch.stack(utility, 1),
                       log_prob=torch.stack(log_prob, 1), location=torch.stack(location, 1),
                       frames=np.zeros((b, k), np.int64), labels=labels)  # fmt: skip

    parts = timed_updates(forward, opt, s, updates, device, first="forward")
    params = sum(p.numel() for p in net.parameters())
    # multiply-adds of one step's matrices (LSTM gates, attention query, heads) x batch x K,
    # x2 for FLOPs, x3 for forward + backward
    step_macs = sum(p.numel() for n, p in net.named_parameters() if "weight" in n)
    return {**median_of(parts), "params": params, "batch": b, "hidden": hidden,
            "gflop_per_update": 6 * step_macs * b * k / 1e9}  # fmt: skip


def _allreduce_worker(rank: int, numel: int, repeats: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    flat = torch.randn(numel)
    dist.all_reduce(flat)  # warm-up
    times = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(flat)
        times.append(time.perf_counter() - t0)
    if rank == 0:
        Path(out).write_text(json.dumps(statistics.median(times)))
    dist.destroy_process_group()


def allreduce_cost(numel: int, repeats: int = 3) -> float:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "seconds.json")
        torch.multiprocessing.spawn(_allreduce_worker, nprocs=2,
                                    args=(numel, repeats, os.path.join(tmp, "rdzv"), out))  # fmt: skip
        return json.loads(Path(out).read_text())


def full_run_estimate(env_s: float, net_s: float, allreduce_s: float | None) -> dict:
    updates = FCVID["train_videos"] // PAPER["batch_size"] * PAPER["epochs"]
    frames = (FCVID["train_videos"] + FCVID["test_videos"]) * FCVID["seconds_per_video"]
    frames *= FCVID["fps"]
    row_bytes = 2 * (FCVID["feature_dim"] + FCVID["light_dim"] + 2 * FCVID["classes"])
    one = updates * (env_s + net_s) / 3600
    out = {"updates": updates, "frames": frames, "bytes_per_frame": row_bytes,
           "cache_gb": frames * row_bytes / 1e9, "hours_one_process": one}  # fmt: skip
    if allreduce_s is not None:  # 2 ranks on 2 cores: each half a batch, plus the all-reduce
        out["hours_two_processes"] = updates * ((env_s + net_s) / 2 + allreduce_s) / 3600
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--dataset", default="fcvid", help="cache (default: the FCVID proxy)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--updates", type=int, default=3, help="timed updates per measurement")
    p.add_argument("--allreduce", action="store_true", help="time a 2-rank gloo all-reduce")
    p.add_argument("--json", help="write the measurements here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = resolve_dataset(args.dataset, progress=False)
    k, n = PAPER["k"], args.updates
    print(f"cache {path}; device {args.device}; {args.threads} torch thread(s); K = {k}")
    out = {"device": args.device, "threads": args.threads, "cache": str(path),
           "cpu": os.uname().machine, "cpus": os.cpu_count()}  # fmt: skip
    out["env_128"] = env_cost(path, PAPER["batch_size"], k, n)
    print(f"env alone, batch 128: {out['env_128'] * 1e3:.1f} ms per batch of episodes")
    for name, settings in (
        ("proxy_default", {}),
        ("proxy_paper", {"hidden": "2048", "batch_size": "128", "optimizer": "sgd"}),
    ):
        r = out[name] = proxy_update(path, settings, k, n, args.device)
        print(f"proxy update, hidden {r['hidden']}, batch {r['batch']} ({r['params']:,} "
              f"params): {r['update']:.3f} s (rollout {r['rollout']:.3f}, backward "
              f"{r['backward']:.3f}, step {r['step']:.3f})")  # fmt: skip
    r = out["fcvid_network"] = network_update(PAPER["batch_size"], PAPER["hidden"], k, n,
                                              args.device)  # fmt: skip
    print(f"network at FCVID's dimensions, hidden 2048, batch 128 ({r['params']:,} params, "
          f"{r['gflop_per_update']:.0f} GFLOP): {r['update']:.3f} s (forward {r['forward']:.3f}, "
          f"backward {r['backward']:.3f}, step {r['step']:.3f})")  # fmt: skip
    allreduce = None
    if args.allreduce:
        allreduce = out["allreduce_2_gloo"] = allreduce_cost(r["params"])
        print(f"gloo all-reduce of {r['params']:,} floats, 2 ranks: {allreduce:.3f} s")
    est = out["estimate"] = full_run_estimate(out["env_128"], r["update"], allreduce)
    print(f"full FCVID run: {est['updates']:,} updates, {est['frames'] / 1e6:.1f} M frames, "
          f"cache {est['cache_gb']:.0f} GB; {est['hours_one_process']:.0f} h in one process "
          f"here" + (f", {est['hours_two_processes']:.0f} h on 2 ranks"
                     if "hours_two_processes" in est else ""))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
