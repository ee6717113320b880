"""The benchmark harness: train (or reuse a cached checkpoint), evaluate, print, write, plot.

    adaframe run --list
    adaframe run --agent avgpool-u10
    adaframe run --agent sb3-ppo --budget 10 --epochs 4 --seed 0
    adaframe run --agent fastforward --seeds 0,1,2       # mean +- std over seeds
    adaframe run --agent examples/custom_agent.py:make_agent --dataset tiny
    adaframe run --agent examples/env_agent.py:make_agent --name stride --dataset tiny
    torchrun --standalone --nproc_per_node 2 benchmarks/run.py --agent adaframe-10 --lazy

Results: ``OUT/<dataset>/<run>.json`` (+ ``<run>.videos.json``), and the plots of
``adaframe plot`` for that dataset. See docs/harness.md; several processes:
docs/distributed.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

from adaframe_env import distributed
from adaframe_env.harness.registry import list_agents
from adaframe_env.harness.runner import (
    HEADER,
    aggregate_seeds,
    format_row,
    format_seeds_row,
    run_agent,
    warning_alone,
)
from adaframe_env.protocol import RunConfig
from adaframe_env.protocol.settings import parse_settings


def parse_mu(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--mu takes numbers like 0.2,0.5,0.7, got {text!r}"
        ) from None
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"--mu values must be in [0, 1], got {text!r}")
    return values


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes non-negative integers like 0,1,2, got {text!r}"
        ) from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(
            f"takes non-negative integers like 0,1,2 (random seeds), got {text!r}"
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"needs distinct integers, got {text!r}")
    return seeds


def parse_seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(
            f"must be a non-negative integer (a random seed), got {text!r}"
        )
    return seed


def parse_schedule(text: str, least: int = 1) -> int:
    """A schedule override (``--updates``, ``--epochs``, ...): an integer >= ``least``;
    leaving it out is the agent's default."""
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= {least} (leave it out for the agent's default), got {text!r}"
        )
    return value


class OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line, ``adaframe run: argument --epochs: ...``, without the
    usage block (``--help`` shows it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def check_device(device: str) -> str | None:
    """Why ``--device`` cannot run here (one line), or None. Imports torch only for cuda."""
    if device != "cuda":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return (
        "--device cuda: no CUDA device is available (torch.cuda.is_available() is False); "
        "use --device cpu"
    )


def main(argv=None, prog: str = "adaframe run") -> int:
    warnings.showwarning = warning_alone
    p = OneLineParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--agent", help="agent name (see --list) or package.module:factory")
    p.add_argument("--list", action="store_true", help="list the agents and exit")
    p.add_argument("--name", help="a short name for your own agent (--agent FILE.py:factory) in "
                   "the table, the result files and the plots (default: the agent's name "
                   "attribute, else the import path); letters, digits, - and _")  # fmt: skip
    p.add_argument("--dataset", help="fcvid (default), activitynet, a preset or a PATH.h5")
    p.add_argument("--budget", type=int, default=10, help="K for agents without K in the name")
    p.add_argument("--mu", type=parse_mu, default=(0.7,), help="adaptive-inference thresholds")
    p.add_argument("--updates", type=parse_schedule, default=None,
                   help="most gradient updates of a learned method (default: the method's); "
                   "any schedule option given is part of the run's file name (-updates2000), "
                   "so it never replaces a default run's result")  # fmt: skip
    p.add_argument(
        "--eval-every",
        type=parse_schedule,
        default=None,
        help="updates between val evaluations (the best-val weights are kept)",
    )
    p.add_argument(
        "--patience",
        type=lambda t: parse_schedule(t, 0),
        default=None,
        help="stop after this many val evaluations without a new best (0: never)",
    )
    p.add_argument("--epochs", type=parse_schedule, default=None,
                   help="instead of --updates: exactly this many passes over the train split, "
                   "no early stop, the last weights kept (the schedule of earlier versions)")  # fmt: skip
    p.add_argument("--seed", type=parse_seed, default=0)
    p.add_argument("--seeds", type=parse_seeds, help="several seeds, e.g. 0,1,2: one run each, "
                   "then mean +- std over them (replaces --seed)")  # fmt: skip
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="under torchrun: cpu trains over gloo, cuda over nccl on "
                   "cuda:LOCAL_RANK")  # fmt: skip
    p.add_argument("--lazy", action="store_true", help="memory-map the cache instead of reading "
                   "it into RAM (a cache larger than RAM; torchrun ranks share the page cache)")  # fmt: skip
    p.add_argument("--split", default="test", choices=("test", "val"))
    p.add_argument("--model", help="evaluate this SB3 model file (with --agent sb3-...)")
    p.add_argument("--checkpoints", help="checkpoint cache folder (default: per-user cache)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter of a learning agent, repeatable (e.g. --set "
                   "readout=plain); a wrong key lists the agent's settings")  # fmt: skip
    p.add_argument("--no-plot", action="store_true", help="do not redraw the plots")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = p.parse_args(argv)
    if args.list:
        for usage, desc in list_agents():
            print(f"{usage:<28} {desc}")
        return 0
    if not args.agent:
        p.error("--agent NAME is required (or --list)")
    if args.budget < 1:
        p.error("--budget must be at least 1")
    try:
        settings = parse_settings(args.set)
    except ValueError as e:
        p.error(str(e))
    if args.epochs is not None and args.updates is not None:
        p.error("argument --epochs: not with --updates (a fixed number of passes, or updates)")
    problem = check_device(args.device)
    if problem:  # before anything runs, for every agent
        print(f"{p.prog}: {problem}", file=sys.stderr)
        return 2
    device = distributed.init(args.device)  # under torchrun: join the ranks (else a no-op)
    try:
        return _run(args, settings, device, p.prog)
    finally:
        distributed.cleanup()


def _run(args, settings, device: str, prog: str) -> int:
    config = RunConfig(
        budget=args.budget, mu=args.mu, epochs=args.epochs, updates=args.updates,
        eval_every=args.eval_every, patience=args.patience, seed=args.seed, device=device,
        progress=not args.no_progress and distributed.is_main(), settings=settings,
        extra={"model": args.model} if args.model else {}, lazy=args.lazy,
    )  # fmt: skip
    rows = []
    for seed in args.seeds or [args.seed]:
        try:
            rows += run_agent(args.agent, args.dataset, dataclasses.replace(config, seed=seed),
                              args.out, args.checkpoints, args.split, args.name)  # fmt: skip
        except (ValueError, OSError, ImportError, AttributeError) as e:  # CacheError: ValueError
            rank = f" (rank {distributed.rank()})" if distributed.is_distributed() else ""
            print(f"{prog}{rank}: {e}", file=sys.stderr)
            return 2
    if not distributed.is_main():
        return 0  # rank 0 prints, writes and plots
    print(HEADER)
    for row in rows:
        seed = f"  seed {row['seed']}" if args.seeds else ""
        print(format_row(row) + seed + ("  [checkpoint cache hit]" if row["cached"] else ""))
    if args.seeds:
        print(f"mean +- std over seeds {','.join(str(s) for s in args.seeds)}:")
        for row in aggregate_seeds(rows):
            print("  " + format_seeds_row(row))
    print(f"wrote {', '.join(r['json_path'] for r in rows)}")
    if not args.no_plot:
        from adaframe_env.harness.plots import plot_dataset

        files = plot_dataset(Path(rows[0]["json_path"]).parent)
        print(f"plots: {', '.join(str(f) for f in files)}")
    return 0
