"""``adaframe leaderboard``: every method by mAP against GFLOPs, over seeds and datasets, with
confidence intervals, matched-budget tables and an IQM aggregate
(:mod:`adaframe_env.harness.paper.leaderboard`; docs/methods.md).

    adaframe leaderboard                                   # every method, both proxies, seeds 0,1,2
    adaframe leaderboard --datasets fcvid --methods training-free
    adaframe leaderboard --methods mgsampler,scsampler,random,avgpool-all --seeds 0,1,2,3,4
    adaframe leaderboard --list                            # the method list and its configurations

Every configuration of every method is one harness run per seed (``adaframe run``), written to
``OUT/<dataset>/`` with its class scores; a finished run (same cache, same hyperparameters) is
reused, trained checkpoints too, so a killed leaderboard resumes. A method whose name the
registry does not know is skipped with one line.

The budget rule: at budget B (GFLOPs per video), a method's cell is its configuration with the
best mean mAP among those whose mean GFLOPs are at most B. CI: 95% bias-shifted percentile bootstrap over
seeds x test videos. Aggregate: IQM over seeds x datasets of (mAP - random) / (avgpool-all -
random) at the same budget, with rliable's stratified bootstrap CI.

Writes OUT/leaderboard.md, OUT/leaderboard.json and OUT/leaderboard-<dataset>.png.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from adaframe_env.harness.paper import leaderboard as lb
from adaframe_env.harness.runner import warning_alone


def _numbers(text: str, kind, what: str, p: argparse.ArgumentParser) -> list:
    try:
        values = [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        p.error(f"{what} takes comma-separated numbers, got {text!r}")
    if not values or len(set(values)) != len(values):
        p.error(f"{what} needs distinct values, got {text!r}")
    return values


def main(argv=None, prog: str = "adaframe leaderboard") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--datasets", default=",".join(lb.DATASETS),
                   help="comma-separated: fcvid, activitynet, tiny or PATH.h5 "
                        "(default: fcvid,activitynet)")  # fmt: skip
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--methods", default=None,
                   help="comma-separated method names of --list, or 'training-free' "
                        "(default: all)")  # fmt: skip
    p.add_argument("--budgets", default=",".join(f"{b:g}" for b in lb.BUDGETS),
                   help="matched budgets, GFLOPs per video (default 20,40,80)")  # fmt: skip
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (1000)")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument("--checkpoints", default=None, help="checkpoint cache (default: per-user)")
    p.add_argument("--list", action="store_true", help="print the methods and their configurations")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(argv)
    warnings.showwarning = warning_alone
    if args.list:
        for method, pattern, ks, mus in lb.METHODS:
            mu = f", mu {','.join(f'{m:g}' for m in mus)}" if mus else ""
            k = "" if ks == (None,) else f", K {','.join(str(k) for k in ks)}"
            print(f"{method:<18} {pattern}{k}{mu}")
        return 0
    seeds = _numbers(args.seeds, int, "--seeds", p)
    budgets = _numbers(args.budgets, float, "--budgets", p)
    methods = None
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        if methods == ["training-free"]:
            methods = list(lb.TRAINING_FREE)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    command = " ".join([prog, *(sys.argv[1:] if argv is None else argv)])
    try:
        lb.leaderboard(datasets, seeds, methods, budgets, args.out, args.checkpoints,
                       args.bootstrap, not args.no_progress, command)  # fmt: skip
    except (ValueError, OSError) as e:
        print(f"leaderboard: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/leaderboard.md, leaderboard.json and leaderboard-<dataset>.png")
    return 0
