"""``python benchmarks/paper.py ARGS`` is ``adaframe paper ARGS`` (:mod:`adaframe_env.cli.paper`)."""

import sys

from adaframe_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["paper", *sys.argv[1:]], exiting=True))
