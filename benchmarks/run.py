"""``python benchmarks/run.py ARGS`` is ``adaframe run ARGS`` (:mod:`adaframe_env.cli.run`)."""

import sys

from adaframe_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]], exiting=True))
