"""The paper's Table 1 (frame selection strategies): its numbers, its columns, and the agent
name of each cell. ``adaframe paper`` runs the cells through the harness (results land in
``--out`` as usual, trained checkpoints are reused) and prints the table with the paper's
value in parentheses; the oracle row is a bound (ground-truth relevance, synthetic caches
only), not a competitor.
"""

from __future__ import annotations

import h5py

from adaframe_env.harness.runner import resolve_dataset

SETTINGS = ("R8", "U8", "R10", "U10", "R25", "U25", "All")

# Paper Table 1 (mAP %); SCSampling only has K = 8, 10, 25.
PAPER = {
    "fcvid": {
        "avgpool": (78.3, 78.4, 79.0, 78.9, 79.7, 80.0, 80.2),
        "lstm": (77.8, 77.9, 78.7, 78.1, 78.0, 79.8, 80.0),
        "avgpool-g": (78.2, 79.1, 78.7, 79.5, 79.7, 80.1, 80.3),
        "lstm-g": (78.8, 79.2, 79.0, 79.7, 79.4, 80.1, 80.4),
        "scsampler": (79.6, None, 79.9, None, 80.9, None, None),
    },
    "activitynet": {
        "avgpool": (67.5, 67.8, 68.9, 68.6, 69.8, 70.0, 70.2),
        "lstm": (68.7, 68.8, 69.8, 70.4, 69.9, 70.8, 71.0),
        "avgpool-g": (66.8, 68.0, 67.4, 68.9, 69.1, 70.1, 70.3),
        "lstm-g": (69.6, 70.3, 70.5, 70.8, 70.7, 71.2, 71.8),
        "scsampler": (65.8, None, 66.8, None, 70.0, None, None),
    },
}
NAMES = {
    "avgpool": "AvgPooling",
    "lstm": "LSTM",
    "avgpool-g": "AvgPooling-G",
    "lstm-g": "LSTM-G",
    "scsampler": "SCSampling",
    "oracle": "oracle (bound)",
}


def agent_name(method: str, setting: str) -> str | None:
    """Harness agent of one cell, or None where the table has no such cell."""
    k = setting[1:]
    if method in ("scsampler", "oracle"):
        return f"{method}-{k}" if setting.startswith("R") else None  # one column per K
    return f"{method}-all" if setting == "All" else f"{method}-{setting.lower()}"


def paper_columns(dataset: str | None) -> str:
    """Which of the paper's column sets a cache is compared with, by its ``dataset`` attribute."""
    with h5py.File(resolve_dataset(dataset), "r") as f:
        name = str(f.attrs.get("dataset", ""))
    return "activitynet" if "activitynet" in name.lower() else "fcvid"


