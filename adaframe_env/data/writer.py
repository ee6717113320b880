"""Write a feature cache in the current schema, atomically.

Datasets are stored contiguous and uncompressed: a lazy :class:`~adaframe_env.FeatureStore`
then maps them straight into memory (``np.memmap``), and a batch of lookups stays one
fancy-index even for files larger than RAM.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from adaframe_env.data.atomic import atomic_output
from adaframe_env.data.schema import SCHEMA_VERSION, STR_DTYPE, validate_staged

DTYPES = {
    "frames/features": np.float16,
    "frames/light": np.float16,
    "frames/logits": np.float16,
    "frames/light_logits": np.float16,
    "frames/relevance": np.float16,
    "videos/offset": np.int64,
    "videos/length": np.int32,
    "videos/label": np.int32,
    "videos/split": np.uint8,
    "recognizer/fold": np.int8,
}


def write_datasets(f: h5py.File, arrays: Mapping[str, np.ndarray], progress: bool = False) -> None:
    """Create (or replace) datasets in an open file, cast to the schema's dtypes."""
    with tqdm(total=len(arrays), desc="write cache", unit="dataset", disable=not progress) as bar:
        for name, value in arrays.items():
            _write_one(f, name, value)
            bar.update()


def _write_one(f: h5py.File, name: str, value) -> None:
    if name in f:
        old = f[name]
        new = np.asarray(value, dtype=DTYPES.get(name, np.float32))
        same = old.shape == new.shape and old.dtype == new.dtype
        if same and name not in ("videos/id", "classes/name"):
            old[...] = new  # overwrite in place: HDF5 does not reclaim deleted space
            return
        del f[name]
    if name in ("videos/id", "classes/name"):
        f.create_dataset(name, data=np.asarray(value, dtype=object), dtype=STR_DTYPE)
    else:
        f.create_dataset(name, data=np.asarray(value, dtype=DTYPES.get(name, np.float32)))


def write_cache(
    dest: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, object],
    generator: Mapping[str, object] | None = None,
    progress: bool = False,
) -> Path:
    """Write ``arrays`` (schema paths -> arrays) and root ``attrs`` to ``dest`` atomically.

    The file is validated before it is renamed into place, so a cache under its final name
    always passes ``adaframe validate``.
    """
    with atomic_output(dest) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            for key, value in attrs.items():
                f.attrs[key] = value
            if generator is not None:
                f.attrs["generator"] = json.dumps(dict(generator), sort_keys=True)
            write_datasets(f, arrays, progress)
        fitted = "frames/logits" in arrays or "recognizer/heavy_weight" in arrays
        validate_staged(tmp, dest, require_recognizer=fitted)
    return Path(dest)
