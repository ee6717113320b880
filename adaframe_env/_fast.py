"""Hot-path helpers shared by the single and the vector env.

- :func:`to_float32`: float16 -> float32 conversion. NumPy converts half floats one element at
  a time on CPUs without AVX512-FP16 (~1.6 ns per value: more than everything else a vector
  step does); torch's conversion is vectorized (F16C), so batches go through torch (a project
  dependency, imported on first use). The conversion is exact either way.
- :func:`log_normalizer`: per-frame ``logsumexp`` of the cached logits, computed once per
  cache and process, so a frame's recognizer probabilities are ``exp(logits - lse)`` (no
  reductions on the hot path).
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from adaframe_env.data.store import FeatureStore

_LSE: weakref.WeakKeyDictionary[FeatureStore, np.ndarray] = weakref.WeakKeyDictionary()
_MEM_POS: weakref.WeakKeyDictionary[FeatureStore, dict[int, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
_CHUNK = 1 << 15
_TORCH_MIN = 4096  # below this many values NumPy's per-call overhead is lower
# torch splits elementwise work over its thread pool above 32768 values (at::GRAIN_SIZE); on a
# loaded machine the pool's hand-off costs milliseconds, so convert in single-thread pieces.
_TORCH_GRAIN = 32768


def _torch():
    import torch

    return torch


def to_float32(src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``src`` (float16) as float32, written into ``out`` when given (same shape)."""
    if src.size < _TORCH_MIN:
        if out is None:
            return src.astype(np.float32)
        out[...] = src
        return out
    torch = _torch()
    src = np.ascontiguousarray(src)
    if out is None:
        out = np.empty(src.shape, np.float32)
    if src.flags.writeable:
        s = torch.from_numpy(src)
    else:  # a memory-mapped (lazy) store: torch warns about read-only arrays; we only read it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            s = torch.from_numpy(src)
    o = torch.from_numpy(out)
    row = max(1, src.size // max(1, len(src)))
    step = max(1, (_TORCH_GRAIN - 1) // row)
    if step >= len(src):
        o.copy_(s)
    else:
        for i in range(0, len(src), step):
            o[i : i + step].copy_(s[i : i + step])
    return out


def log_normalizer(store: FeatureStore) -> np.ndarray:
    """(F,) float32 ``logsumexp`` over classes of every frame's logits (cached per store)."""
    lse = _LSE.get(store)
    if lse is None:
        torch = _torch()
        logits = store.array("logits")
        lse = np.empty(len(logits), np.float32)
        out = torch.from_numpy(lse)
        with torch.no_grad():
            for i in range(0, len(logits), _CHUNK):
                block = to_float32(logits[i : i + _CHUNK])
                out[i : i + _CHUNK] = torch.logsumexp(torch.from_numpy(block), dim=1)
        _LSE[store] = lse
    return lse


def memory_positions(store: FeatureStore, size: int = 16) -> np.ndarray:
    """(N, size) float32 positions of every video's memory frames (cached per store)."""
    tables = _MEM_POS.setdefault(store, {})
    if size not in tables:
        tables[size] = store.memory_positions(np.arange(store.num_videos), size)
    return tables[size]


def frame_probs(logits_rows: np.ndarray, lse_rows: np.ndarray) -> np.ndarray:
    """Softmax of float16 logit rows (..., C) given their log-normalizers (...,), float32."""
    x = to_float32(logits_rows)
    x -= np.asarray(lse_rows, np.float32)[..., None]
    np.exp(x, out=x)
    return x
