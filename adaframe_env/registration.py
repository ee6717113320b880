"""Registers the AdaFrame environments with Gymnasium (imported by ``import adaframe_env``).

``gym.make("adaframe_env:AdaFrame-FCVID-v0")`` imports this package first, so the ids work
without an explicit import.
"""

from __future__ import annotations

import gymnasium as gym

ENTRY_POINT = "adaframe_env.env:AdaFrameEnv"
VECTOR_ENTRY_POINT = "adaframe_env.vector_env:AdaFrameVectorEnv"

#: id -> default constructor kwargs. ``dataset`` picks the environment variable and the
#: synthetic proxy used when no ``data`` is given; the generic id needs ``data`` (or $ADAFRAME_DATA).
ENV_IDS = {
    "AdaFrame-FCVID-v0": {"dataset": "fcvid"},
    "AdaFrame-ActivityNet-v0": {"dataset": "activitynet"},
    "AdaFrame-v0": {},
}


def register_all() -> None:
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=dict(kwargs),
        )


register_all()
