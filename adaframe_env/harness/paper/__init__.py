"""The paper's experiments as harness pieces: Table 1's cells and numbers (:mod:`.table1`), the
stop-signal comparison of Fig. 8 (:mod:`.stop_signals`) and exit step vs class difficulty of
Fig. 5 (:mod:`.exit_vs_difficulty`). The ``adaframe paper`` command composes them."""
