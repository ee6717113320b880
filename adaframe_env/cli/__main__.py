"""``python -m adaframe_env.cli``: the ``adaframe`` command."""

from adaframe_env.cli import console_main

console_main()
