"""The benchmark harness (layer 6, docs/design.md): agent names (:mod:`.registry`), the run
(:mod:`.runner`), the plots (:mod:`.plots`) and the paper's experiments (:mod:`.paper`). It
knows the methods only through their names (entry-point group ``adaframe_gym.agents``); the
interface they implement is :mod:`adaframe_env.protocol`. See ``docs/harness.md``."""
