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
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter
from threadpoolctl import threadpool_limits
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


PRESETS: dict[str, SynthConfig] = {
    "fcvid": SynthConfig(),
    "activitynet": SynthConfig(
        dataset="activitynet",
        num_classes=200,
        group_names=tuple(ACTIVITYNET_GROUPS),
        mean_duration=117.0,
        class_strength=(14.1, 35.0),  # calibrated on ActivityNet's AvgPooling row, like fcvid's
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


# BLAS on one thread: how a threaded matrix product splits its tiles can change the last bit of
# some entries on some CPUs, and a seed must give the same file whatever the thread settings
# (OMP_NUM_THREADS, the core count). It costs about 10% of the generation time.
@threadpool_limits.wrap(limits=1, user_api="blas")
def generate(config: SynthConfig, progress: bool = True) -> tuple[dict, dict]:
    """Draw a whole synthetic dataset; return (schema arrays, root attributes).

    The recognizer's logits are not included: :func:`adaframe_env.build.recognizer.fit` adds them.
    """
    cfg = config
    rngs = {
        name: np.random.default_rng(child)
        for name, child in zip(
            ("classes", "videos", "segments", "content", "noise", "projection", "light"),
            np.random.SeedSequence(cfg.seed).spawn(7),
            strict=True,
        )
    }
    bar = tqdm(total=5, desc=f"synth {cfg.dataset}", disable=not progress, unit="stage")

    # --- classes: directions, groups, difficulty
    r = rngs["classes"]
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
    r = rngs["videos"]
    label = np.concatenate([np.repeat(np.arange(cfg.num_classes), n) for n in cfg.videos_per_class])
    split = np.concatenate(
        [
            np.full(cfg.num_classes * n, s, np.uint8)
            for n, s in zip(cfg.videos_per_class, (0, 1, 2), strict=True)
        ]
    )
    order = r.permutation(len(label))
    label, split = label[order], split[order]
    n = len(label)
    mu_log = np.log(cfg.mean_duration) - cfg.duration_sigma**2 / 2
    length = np.clip(
        np.rint(r.lognormal(mu_log, cfg.duration_sigma, n) * cfg.fps),
        cfg.min_frames,
        cfg.max_frames,
    ).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(length)[:-1]])
    video_strength = r.lognormal(0.0, cfg.video_strength_sigma, n)
    nuisance = r.standard_normal((n, cfg.latent_dim)) * cfg.nuisance
    bar.update()

    # --- evidence segments, relevance and background topic of every frame
    relevance, topic = _segments(cfg, length, rngs["segments"])
    bar.update()

    # --- latent content (float32 throughout: F x L is the largest working array)
    r = rngs["content"]
    video_of_frame = np.repeat(np.arange(n), length)
    amp = (strength[label] * video_strength)[video_of_frame] * relevance
    evidence = mu[label][video_of_frame].astype(np.float32) * amp[:, None].astype(np.float32)
    z = (1 - relevance)[:, None].astype(np.float32) * (cfg.background_scale * topics[topic]).astype(
        np.float32
    )
    z += nuisance[video_of_frame].astype(np.float32)
    z += _ar1_noise(cfg, length, rngs["noise"])
    bar.update()

    # --- the two views
    r = rngs["projection"]
    p_heavy = (
        r.standard_normal((cfg.latent_dim, cfg.feature_dim)) / np.sqrt(cfg.latent_dim)
    ).astype(np.float32)
    p_light = (r.standard_normal((cfg.latent_dim, cfg.light_dim)) / np.sqrt(cfg.latent_dim)).astype(
        np.float32
    )
    heavy = (z + evidence) @ p_heavy
    heavy += cfg.heavy_noise * r.standard_normal(heavy.shape, dtype=np.float32)
    # The light network reacts to a video's nuisance partly in its own way: only a share of it
    # is common to both views, so the two models' per-video errors are not the same errors.
    own = rngs["light"].standard_normal((n, cfg.latent_dim)) * cfg.nuisance
    shift = (np.sqrt(cfg.light_nuisance_share) - 1) * nuisance + np.sqrt(
        1 - cfg.light_nuisance_share
    ) * own
    light = (z + cfg.light_signal * evidence + shift[video_of_frame].astype(np.float32)) @ p_light
    light += cfg.light_noise * r.standard_normal(light.shape, dtype=np.float32)
    del z, evidence
    bar.update()

    names = np.array([f"{cfg.group_names[g]}/class_{c:03d}" for c, g in enumerate(group_of_class)])
    ids = np.array([f"{cfg.dataset}-{i:06d}" for i in range(n)])
    arrays = {
        "frames/features": heavy.astype(np.float16),
        "frames/light": light.astype(np.float16),
        "frames/relevance": relevance.astype(np.float16),
        "videos/offset": offset,
        "videos/length": length.astype(np.int32),
        "videos/label": label.astype(np.int32),
        "videos/split": split,
        "videos/id": ids,
        "classes/name": names,
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
    bar.update()
    bar.close()
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
) -> Path:
    """Generate ``config``, fit the recognizer heads and write the cache to ``dest`` atomically."""
    from adaframe_env.build.recognizer import fit_and_attach
    from adaframe_env.data.writer import write_cache

    arrays, attrs = generate(config, progress=progress)
    report = None
    if fit_recognizer:
        report = fit_and_attach(arrays, seed=config.seed, progress=progress)
        attrs.update(report.as_attrs())
    write_cache(dest, arrays, attrs, generator=config.as_json(), progress=progress)
    return Path(dest)
