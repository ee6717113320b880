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
import sys

from adaframe_env.cli import data

#: subcommand -> (module, one line for --help)
COMMANDS = {
    "run": ("adaframe_env.cli.run", "benchmark an agent: train or reuse, evaluate, write results"),
    "paper": ("adaframe_env.cli.paper", "the paper's tables and figures on a cache"),
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


def console_main() -> None:
    """The ``adaframe`` console entry point."""
    sys.exit(main(exiting=True))
