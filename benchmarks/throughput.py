"""``python benchmarks/throughput.py ARGS`` is ``adaframe throughput ARGS`` (:mod:`adaframe_env.cli.throughput`)."""

import sys

from adaframe_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["throughput", *sys.argv[1:]], exiting=True))
