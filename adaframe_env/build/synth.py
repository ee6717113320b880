"""Synthetic proxies of FCVID and ActivityNet: untrimmed videos as cached per-frame features.

The generator stands in for a real feature cache (ResNet-101 + MobileNetV2 features at 1 fps)
so that the benchmark runs out of the box. It is built from what the paper and the datasets say
about untrimmed video, not from what makes any agent look good, and it is calibrated only
against the paper's AvgPooling rows of Table 1 (see README, "Synthetic proxy").

Generative model
----------------
Every frame has a latent content vector ``z`` in R^L (L = ``latent_dim``), seen by two
backbones through fixed random projections::

    z_t     = s_c * a_v * r_t * mu_c  +  (1 - r_t) * b_scale * beta_{k(t)}  +  nu_v  +  eps_t
    heavy_t = P_h z_t                                        + heavy_noise * xi_t
    light_t = P_l (z_t - (1 - light_signal) * s_c a_v r_t mu_c + delta_v) + light_noise * zeta_t
    delta_v = (sqrt(light_nuisance_share) - 1) * nu_v + sqrt(1 - light_nuisance_share) * nu'_v

- **Classes and groups.** ``num_classes`` classes in ``num_groups`` groups (FCVID: 239 in 11;
  ActivityNet: 200 in 7). The class direction ``mu_c`` is the unit-norm mix
  ``sqrt(group_share) * psi_g + sqrt(1 - group_share) * phi_c`` of a group direction and a class
  direction, so classes in one group have cosine similarity ~``group_share``: confusable siblings
  (e.g. "dining at restaurant" vs "dining at home").
- **Class difficulty.** ``s_c`` is spread evenly on the log scale over ``class_strength`` =
  (lo, hi) and shuffled over classes: some classes are recognized from one frame, others need
  many.
- **Per-video strength** ``a_v ~ LogNormal(0, video_strength_sigma)``: hard and easy instances
  of the same class.
- **Evidence segments.** A fraction ``rho_v ~ Beta(*coverage_beta)`` of the video is evidence,
  split into 1..``max_segments`` contiguous segments placed at random with background between
  them. The default Beta(1.24, 0.65) matches ActivityNet's annotated coverage (median 0.72,
  quartiles 0.44 / 0.90). Inside a segment the relevance ``r_t`` in
  [``relevance_floor``, 1] drifts slowly (AR(1), coefficient ``relevance_corr``); outside it is
  ``background_context`` (< ``relevance_floor``): background still shows a little of the class's
  scene context (a kitchen in a cooking video), as untrimmed video does.
  ``r_t`` is stored as ``frames/relevance`` so an oracle can bound what selection can gain.
- **Background.** Frames outside segments show one of ``num_background_topics`` shared
  background topics ``beta_k`` (title cards, talking heads, crowd shots), one topic per gap,
  with scale ``background_scale``, weighted by ``1 - r_t``.
- **Per-video nuisance** ``nu_v ~ N(0, nuisance^2 I)``: camera, lighting, channel style. It is
  constant over the video, so averaging more frames cannot remove it: this is what makes
  accuracy saturate with the number of frames, as it does on FCVID.
- **Temporal correlation.** ``eps_t`` is a stationary AR(1) process per video with coefficient
  ``temporal_corr`` between consecutive frames (1 fps) and standard deviation ``frame_noise``:
  neighbouring frames look alike, so frames far apart are worth more than adjacent ones.
- **Light view.** The light backbone sees the same frame (same nuisance, background and temporal
  noise) with the class evidence scaled by ``light_signal`` < 1, fresh per-frame noise
  ``light_noise`` and fewer dimensions: a weaker, noisier look that still shows where the
  evidence is (it is what the 16-frame global memory is made of). Only a share
  ``light_nuisance_share`` of the per-video nuisance is common to both views (the rest is drawn
  afresh for the light view): two different networks do not make the same per-video mistakes,
  which is why fusing their scores (AvgPooling-G) can help.
- **Durations** are LogNormal with mean ``mean_duration`` seconds and log-std
  ``duration_sigma``, clipped to [``min_frames``, ``max_frames``], at ``fps`` = 1.

Splits are ``videos_per_class`` = (train, val, test) per class; file order is shuffled.
Every random draw comes from its own child of ``SeedSequence(seed)``: the same seed gives the
same bytes, and changing one knob does not reshuffle the others.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter
from tqdm.auto import tqdm

FCVID_GROUPS = [
    "art", "beauty_and_fashion", "cooking_and_health", "daily_activities", "education",
    "events", "leisure_and_tricks", "music", "nature", "sports", "transportation",
]  # fmt: skip
ACTIVITYNET_GROUPS = [
    "eating_and_drinking", "household", "personal_care", "sports_and_exercise",
    "socializing_and_leisure", "caring_and_helping", "working_and_education",
]  # fmt: skip


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generative model (see the module docstring for their meaning)."""

    dataset: str = "fcvid"
    num_classes: int = 239
    group_names: tuple[str, ...] = tuple(FCVID_GROUPS)
    videos_per_class: tuple[int, int, int] = (12, 2, 6)
    split_videos: tuple[int, int, int] | None = (
        None  # totals (train, val, test); overrides the above
    )
    mean_duration: float = 167.0
    duration_sigma: float = 0.6
    min_frames: int = 8
    max_frames: int = 900
    fps: float = 1.0
    latent_dim: int = 64
    feature_dim: int = 128
    light_dim: int = 64
    group_share: float = 0.5
    class_strength: tuple[float, float] = (16.5, 41.0)
    video_strength_sigma: float = 0.35
    coverage_beta: tuple[float, float] = (1.24, 0.65)
    max_segments: int = 3
    relevance_floor: float = 0.4
    relevance_corr: float = 0.9
    background_context: float = 0.15
    num_background_topics: int = 32
    background_scale: float = 1.0
    nuisance: float = 1.9
    frame_noise: float = 1.0
    temporal_corr: float = 0.6
    heavy_noise: float = 0.3
    light_signal: float = 0.5
    light_noise: float = 0.6
    light_nuisance_share: float = 1.0
    seed: int = 0
    gflops_per_frame: float = 7.82  # ResNet-101 (paper section 4.1)
    light_gflops_per_frame: float = 1.32 / 16  # 16 memory frames cost the paper's 1.32 GFLOPs
    backbone: str = "synthetic-resnet101"
    light_backbone: str = "synthetic-mobilenetv2-112"

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    def replace(self, **changes) -> SynthConfig:
        return dataclasses.replace(self, **changes)

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


#: FCVID's and ActivityNet's real train sizes (45,611 / 239 classes; 10,024 / 200), with val
#: and test splits large enough that the bootstrap std of a test mAP is ~0.2 (docs/proxy.md)
_FCVID = SynthConfig(split_videos=(45_611, 4_780, 9_560), class_strength=(10.9, 27.1))
_ACTIVITYNET = SynthConfig(
    dataset="activitynet",
    num_classes=200,
    group_names=tuple(ACTIVITYNET_GROUPS),
    mean_duration=117.0,
    split_videos=(10_024, 2_000, 8_000),
    class_strength=(11.3, 28.0),  # calibrated on ActivityNet's AvgPooling row, like fcvid's
)
PRESETS: dict[str, SynthConfig] = {
    "fcvid": _FCVID,
    "activitynet": _ACTIVITYNET,
    # The previous proxies, 12 train videos per class: a quick look in about a minute
    # (calibrated at that size; the class strength is what the train size changes).
    "fcvid-small": _FCVID.replace(
        dataset="fcvid-small", split_videos=None, class_strength=(16.5, 41.0)
    ),
    "activitynet-small": _ACTIVITYNET.replace(
        dataset="activitynet-small",
        split_videos=None,
        videos_per_class=(12, 2, 6),
        class_strength=(14.1, 35.0),
    ),
    # Small enough for unit tests (a fraction of a second), same model.
    "tiny": SynthConfig(
        dataset="tiny",
        num_classes=6,
        group_names=("group_a", "group_b"),
        videos_per_class=(8, 2, 4),
        mean_duration=30.0,
        min_frames=4,
        max_frames=80,
        latent_dim=16,
        feature_dim=32,
        light_dim=16,
        num_background_topics=4,
        class_strength=(8.0, 20.0),  # the fcvid strengths make 6 classes trivially separable
    ),
}


def preset(name: str, **overrides) -> SynthConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides)


#: videos generated at a time: bounds the generator's memory (about 0.5 GB per chunk at the
#: fcvid sizes) whatever the size of the dataset. Fixed, because each chunk draws its frames
#: from its own seed stream: the same seed gives the same bytes, for every preset.
CHUNK_VIDEOS = 2048


def _child(seq: np.random.SeedSequence, i: int) -> np.random.Generator:
    """The generator of chunk ``i`` of stream ``seq`` (what ``seq.spawn`` would give as its
    ``i``-th child, without spawn's counter)."""
    return np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, i)))


def plan(config: SynthConfig) -> dict:
    """Everything drawn once per dataset: classes, projections, and every per-video quantity
    (label, split, duration, strength, nuisance). Small: O(N x L), not O(frames)."""
    cfg = config
    seqs = dict(
        zip(
            ("classes", "videos", "segments", "content", "noise", "projection", "light"),
            np.random.SeedSequence(cfg.seed).spawn(7),
            strict=True,
        )
    )
    # --- classes: directions, groups, difficulty
    r = np.random.default_rng(seqs["classes"])
    group_of_class = np.arange(cfg.num_classes) % cfg.num_groups
    psi = _unit(r.standard_normal((cfg.num_groups, cfg.latent_dim)))
    phi = _unit(r.standard_normal((cfg.num_classes, cfg.latent_dim)))
    mu = _unit(np.sqrt(cfg.group_share) * psi[group_of_class] + np.sqrt(1 - cfg.group_share) * phi)
    lo, hi = cfg.class_strength
    # Evenly spread on the log scale, then shuffled: the spread of difficulty is the same for
    # every seed, so a proxy's overall accuracy does not hinge on a lucky draw.
    strength = np.exp(np.linspace(np.log(lo), np.log(hi), cfg.num_classes))[
        r.permutation(cfg.num_classes)
    ]
    topics = _unit(r.standard_normal((cfg.num_background_topics, cfg.latent_dim)))

    # --- videos: label, split, duration, per-video strength and nuisance
    r = np.random.default_rng(seqs["videos"])
    label, split = _labels(cfg)
    order = r.permutation(len(label))
    label, split = label[order], split[order]
    n = len(label)
    mu_log = np.log(cfg.mean_duration) - cfg.duration_sigma**2 / 2
    length = np.clip(
        np.rint(r.lognormal(mu_log, cfg.duration_sigma, n) * cfg.fps),
        cfg.min_frames,
        cfg.max_frames,
    ).astype(np.int64)
    video_strength = r.lognormal(0.0, cfg.video_strength_sigma, n)
    nuisance = (r.standard_normal((n, cfg.latent_dim)) * cfg.nuisance).astype(np.float32)

    # --- the two views' projections, and the light view's own share of the nuisance
    r = np.random.default_rng(seqs["projection"])
    p_heavy = r.standard_normal((cfg.latent_dim, cfg.feature_dim)) / np.sqrt(cfg.latent_dim)
    p_light = r.standard_normal((cfg.latent_dim, cfg.light_dim)) / np.sqrt(cfg.latent_dim)
    own = np.random.default_rng(seqs["light"]).standard_normal((n, cfg.latent_dim)) * cfg.nuisance
    # The light network reacts to a video's nuisance partly in its own way: only a share of it
    # is common to both views, so the two models' per-video errors are not the same errors.
    shift = (np.sqrt(cfg.light_nuisance_share) - 1) * nuisance + np.sqrt(
        1 - cfg.light_nuisance_share
    ) * own
    return {
        "seqs": seqs,
        "mu": mu.astype(np.float32),
        "strength": strength,
        "topics": topics,
        "group_of_class": group_of_class,
        "label": label,
        "split": split,
        "length": length,
        "offset": np.concatenate([[0], np.cumsum(length)[:-1]]),
        "video_strength": video_strength,
        "nuisance": nuisance,
        "shift": shift.astype(np.float32),
        "p_heavy": p_heavy.astype(np.float32),
        "p_light": p_light.astype(np.float32),
    }


def _labels(cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """(label, split) of every video before shuffling: ``split_videos`` totals dealt to the
    classes round robin (class c gets one more video than class c + 1 when a total does not
    divide evenly), else ``videos_per_class``."""
    totals = cfg.split_videos or tuple(cfg.num_classes * k for k in cfg.videos_per_class)
    label = np.concatenate([np.arange(t) % cfg.num_classes for t in totals])
    split = np.concatenate([np.full(t, s, np.uint8) for s, t in enumerate(totals)])
    return label, split


def frames(config: SynthConfig, p: dict, chunk: int) -> dict[str, np.ndarray]:
    """The frame arrays (features, light, relevance; float16) of the videos of chunk ``chunk``
    (``CHUNK_VIDEOS`` videos in file order), from the dataset's :func:`plan` ``p``."""
    cfg = config
    lo = chunk * CHUNK_VIDEOS
    vids = np.arange(lo, min(lo + CHUNK_VIDEOS, len(p["length"])))
    length = p["length"][vids]
    seqs = p["seqs"]
    # --- evidence segments, relevance and background topic of every frame
    relevance, topic = _segments(cfg, length, _child(seqs["segments"], chunk))
    # --- latent content (float32 throughout: frames x L is the largest working array)
    label = p["label"][vids]
    video_of_frame = np.repeat(np.arange(len(vids)), length)
    amp = (p["strength"][label] * p["video_strength"][vids])[video_of_frame] * relevance
    evidence = p["mu"][label][video_of_frame] * amp[:, None].astype(np.float32)
    z = (1 - relevance)[:, None] * (cfg.background_scale * p["topics"][topic]).astype(np.float32)
    z += p["nuisance"][vids][video_of_frame]
    z += _ar1_noise(cfg, length, _child(seqs["noise"], chunk))
    # --- the two views
    r = _child(seqs["projection"], chunk)
    heavy = (z + evidence) @ p["p_heavy"]
    heavy += cfg.heavy_noise * r.standard_normal(heavy.shape, dtype=np.float32)
    z += cfg.light_signal * evidence
    z += p["shift"][vids][video_of_frame]
    light = z @ p["p_light"]
    light += cfg.light_noise * r.standard_normal(light.shape, dtype=np.float32)
    return {
        "frames/features": heavy.astype(np.float16),
        "frames/light": light.astype(np.float16),
        "frames/relevance": relevance.astype(np.float16),
    }


def num_chunks(p: dict) -> int:
    return -(-len(p["length"]) // CHUNK_VIDEOS)


def tables(config: SynthConfig, p: dict) -> tuple[dict, dict]:
    """The per-video and per-class datasets of the cache, and its root attributes."""
    cfg = config
    n = len(p["length"])
    names = [f"{cfg.group_names[g]}/class_{c:03d}" for c, g in enumerate(p["group_of_class"])]
    arrays = {
        "videos/offset": p["offset"],
        "videos/length": p["length"].astype(np.int32),
        "videos/label": p["label"].astype(np.int32),
        "videos/split": p["split"],
        "videos/id": np.array([f"{cfg.dataset}-{i:06d}" for i in range(n)]),
        "classes/name": np.array(names),
    }
    attrs = {
        "dataset": f"{cfg.dataset}-proxy",
        "fps": float(cfg.fps),
        "backbone": cfg.backbone,
        "light_backbone": cfg.light_backbone,
        "gflops_per_frame": float(cfg.gflops_per_frame),
        "light_gflops_per_frame": float(cfg.light_gflops_per_frame),
        "synthetic": True,
    }
    return arrays, attrs


def generate(config: SynthConfig, progress: bool = True) -> tuple[dict, dict]:
    """Draw a whole synthetic dataset in RAM; return (schema arrays, root attributes).

    For the small presets and the studies; :func:`synthesize` streams the same bytes to a
    file chunk by chunk instead. The recognizer is not included:
    :func:`adaframe_env.build.recognizer.fit_and_attach` adds it.
    """
    p = plan(config)
    parts = [
        frames(config, p, k)
        for k in tqdm(range(num_chunks(p)), desc=f"synth {config.dataset}", unit="chunk",
                      disable=not progress)
    ]  # fmt: skip
    arrays, attrs = tables(config, p)
    for name in parts[0]:
        arrays[name] = np.concatenate([part[name] for part in parts])
    return arrays, attrs


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _segments(cfg: SynthConfig, length: np.ndarray, rng: np.random.Generator):
    """Per-frame relevance (0 outside evidence segments) and background topic index."""
    total = int(length.sum())
    relevance = np.full(total, cfg.background_context, np.float32)
    topic = np.zeros(total, np.int64)
    # A slow drift of evidence intensity inside segments.
    drift = lfilter(
        [np.sqrt(1 - cfg.relevance_corr**2)], [1, -cfg.relevance_corr], rng.standard_normal(total)
    ).astype(np.float32)
    intensity = cfg.relevance_floor + (1 - cfg.relevance_floor) / (1 + np.exp(-1.5 * drift))
    coverage = rng.beta(*cfg.coverage_beta, len(length))
    num_segments = rng.integers(1, cfg.max_segments + 1, len(length))
    start = 0
    for t, rho, k in zip(length, coverage, num_segments, strict=True):
        t = int(t)
        evidence = min(t, max(1, int(round(rho * t))))
        k = int(min(k, evidence))
        seg = _split_count(evidence, rng.dirichlet(np.ones(k)))
        gaps = _split_count(t - evidence, rng.dirichlet(np.ones(k + 1)))
        pos = start
        for i in range(k + 1):
            topic[pos : pos + gaps[i]] = rng.integers(cfg.num_background_topics)
            pos += gaps[i]
            if i < k:
                relevance[pos : pos + seg[i]] = intensity[pos : pos + seg[i]]
                pos += seg[i]
        start += t
    return relevance, topic


def _split_count(total: int, fractions: np.ndarray) -> np.ndarray:
    """Split an integer ``total`` into ``len(fractions)`` non-negative parts, in proportion."""
    cuts = np.rint(np.cumsum(fractions) * total).astype(np.int64)
    cuts[-1] = total
    return np.diff(np.concatenate([[0], cuts]))


def _ar1_noise(cfg: SynthConfig, length: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise per video along time, restarted at each video."""
    rho, sd = cfg.temporal_corr, cfg.frame_noise
    innov = rng.standard_normal((int(length.sum()), cfg.latent_dim), dtype=np.float32)
    out = np.empty_like(innov)
    start = 0
    b, a = [np.sqrt(1 - rho**2) * sd], [1.0, -rho]
    for t in length:
        seg = innov[start : start + t]
        # Start from the stationary distribution, then filter the rest.
        zi = (rho * sd * seg[0])[None, :]
        out[start] = sd * seg[0]
        if t > 1:
            out[start + 1 : start + t], _ = lfilter(b, a, seg[1:], axis=0, zi=zi)
        start += t
    return out


def synthesize(
    dest: str | os.PathLike,
    config: SynthConfig,
    progress: bool = True,
    fit_recognizer: bool = True,
    store_logits: bool = False,
) -> Path:
    """Generate ``config``, fit the recognizer heads and write the cache to ``dest`` atomically.

    Streamed: the frames are generated ``CHUNK_VIDEOS`` videos at a time into contiguous
    datasets, the heads are fit out of core on memory maps of them
    (:func:`~adaframe_env.build.recognizer.fit_heads_out_of_core`, at most 300,000 sampled
    frames per head), so memory stays bounded at the datasets' real sizes. The logits are not
    stored (schema v3): the store computes them from the heads. ``store_logits=True`` stores
    them too, as a v2 cache does (the tests that edit stored logits, and the check that
    computed equals stored, use it)."""
    import h5py

    from adaframe_env.build.recognizer import (
        DEFAULT_FOLDS,
        assign_folds,
        evaluate,
        fit_heads_out_of_core,
    )  # fmt: skip
    from adaframe_env.data.atomic import atomic_output
    from adaframe_env.data.schema import SCHEMA_VERSION, validate_staged
    from adaframe_env.data.store import FeatureStore
    from adaframe_env.data.writer import write_datasets

    cfg = config
    p = plan(cfg)
    arrays, attrs = tables(cfg, p)
    length, offset = p["length"], p["offset"]
    rows, c = int(length.sum()), cfg.num_classes
    with atomic_output(dest) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            for key, value in attrs.items():
                f.attrs[key] = value
            f.attrs["generator"] = json.dumps(cfg.as_json(), sort_keys=True)
            out = {
                "frames/features": f.create_dataset("frames/features", (rows, cfg.feature_dim), np.float16),
                "frames/light": f.create_dataset("frames/light", (rows, cfg.light_dim), np.float16),
                "frames/relevance": f.create_dataset("frames/relevance", (rows,), np.float16),
            }  # fmt: skip
            for k in tqdm(range(num_chunks(p)), desc=f"synth {cfg.dataset}", unit="chunk",
                          disable=not progress):  # fmt: skip
                lo = k * CHUNK_VIDEOS
                hi = min(lo + CHUNK_VIDEOS, len(length))
                s = slice(int(offset[lo]), int(offset[hi - 1] + length[hi - 1]))
                for name, value in frames(cfg, p, k).items():
                    out[name][s] = value
            write_datasets(f, arrays)
        if fit_recognizer:
            fold = assign_folds(p["label"], p["split"], DEFAULT_FOLDS, cfg.seed)
            store = FeatureStore(tmp, lazy=True, validate_file=False)
            heads = {}
            with tqdm(total=2 * (int(fold.max()) + 2), desc="fit recognizer", unit="head",
                      disable=not progress, leave=False) as bar:  # fmt: skip
                for view, name in (("heavy", "features"), ("light", "light")):
                    heads[view] = fit_heads_out_of_core(
                        store.array(name), length, p["label"], fold, c, cfg.seed, bar=bar
                    )
            store.close()
            fitted = {"recognizer/fold": fold}
            for view, h in heads.items():
                fitted.update(h.arrays(view))
            with h5py.File(tmp, "r+") as f:
                write_datasets(f, fitted)
            store = FeatureStore(tmp, lazy=True, validate_file=False)
            computed = {"frames/logits": store.array("logits"),
                        "frames/light_logits": store.array("light_logits")}  # fmt: skip
            report = evaluate({**arrays, **fitted, **computed}, max_train_videos=5000)
            with h5py.File(tmp, "r+") as f:
                for key, value in report.as_attrs().items():
                    f.attrs[key] = value
                if store_logits:  # as the build path computes them (recognizer.CrossFittedHeads)
                    frame_fold = np.repeat(fold, length)
                    for view, name, stem in (("heavy", "features", "frames/logits"),
                                             ("light", "light", "frames/light_logits")):  # fmt: skip
                        ds = f.create_dataset(stem, (rows, c), np.float16)
                        x = store.array(name)
                        for i in range(0, rows, 1 << 16):
                            s = slice(i, min(rows, i + (1 << 16)))
                            ds[s] = heads[view].logits(x[s], frame_fold[s])
            store.close()
        validate_staged(tmp, dest, require_recognizer=fit_recognizer)
    return Path(dest)
