"""The ``adaframe`` command (layer 7, docs/design.md): one entry point for the data
subcommands (:mod:`.data`: synth, info, validate, fit-recognizer, import, extract, merge) and
the benchmark's (``run``, ``paper``, ``plot``, ``throughput``, each a module of this package
with its own ``main(argv, prog)``; ``benchmarks/*.py`` are thin wrappers of the same).

    adaframe run --agent fastforward-g
    adaframe paper --quick
    adaframe plot results
    adaframe throughput --data tiny --seconds 0.2
"""

from __future__ import annotations

import importlib
import os
import sys

from adaframe_env.cli import data

#: subcommand -> (module, one line for --help)
COMMANDS = {
    "run": ("adaframe_env.cli.run", "benchmark an agent: train or reuse, evaluate, write results"),
    "paper": ("adaframe_env.cli.paper", "the paper's tables and figures on a cache"),
    "leaderboard": (
        "adaframe_env.cli.leaderboard",
        "every method by mAP vs GFLOPs over seeds and datasets, with CIs",
    ),
    "plot": ("adaframe_env.cli.plot", "redraw the plots of a results folder"),
    "throughput": ("adaframe_env.cli.throughput", "env-steps per second against CartPole"),
}


def main(argv: list[str] | None = None, exiting: bool = False) -> int:
    """Run ``adaframe ARGV``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        status = module.main(argv[1:], prog=f"adaframe {argv[0]}")
        return status if isinstance(status, int) else 0
    return data.main(argv, exiting, {name: text for name, (_, text) in COMMANDS.items()})


#: the exit status of a command whose reader closed stdout early (``adaframe ... | head -1``):
#: 128 + SIGPIPE, what a Unix tool killed by the broken pipe reports, so ``set -o pipefail``
#: scripts see the output was cut short (0 would claim a complete run); without pipefail the
#: pipeline's status stays the reader's
BROKEN_PIPE_STATUS = 128 + 13


def console_main() -> None:
    """The ``adaframe`` console entry point. A closed stdout ends it quietly: no traceback,
    status :data:`BROKEN_PIPE_STATUS` (the recipe of the Python docs, "Note on SIGPIPE")."""
    try:
        status = main(exiting=True)
        sys.stdout.flush()  # a write that fails at exit would print "Exception ignored ..."
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at devnull so that flush succeeds
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(BROKEN_PIPE_STATUS)
    sys.exit(status)
