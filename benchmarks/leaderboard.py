"""``python benchmarks/leaderboard.py ARGS`` is ``adaframe leaderboard ARGS``
(:mod:`adaframe_env.cli.leaderboard`)."""

import sys

from adaframe_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["leaderboard", *sys.argv[1:]], exiting=True))
