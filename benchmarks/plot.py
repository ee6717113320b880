"""``python benchmarks/plot.py ARGS`` is ``adaframe plot ARGS`` (:mod:`adaframe_env.cli.plot`)."""

import sys

from adaframe_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["plot", *sys.argv[1:]], exiting=True))
