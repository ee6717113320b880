"""The synthetic generator: seeded, deterministic, in the schema (structure only, no accuracy)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from adaframe_env.build.synth import (
    CHUNK_VIDEOS,
    PRESETS,
    SynthConfig,
    frames,
    generate,
    num_chunks,
    plan,
    preset,
)
from adaframe_env.cli import main
from adaframe_env.data.schema import validate

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def tiny_arrays():
    return generate(preset("tiny", seed=0), progress=False)


@pytest.mark.slow
def test_cli_synth_same_seed_gives_same_bytes(
    capsys, tmp_path, tiny_cache_computed, assert_same_cache
):
    """``adaframe synth --preset tiny`` twice with one seed: every dataset and attribute equal
    (the session's cache was made through the library, this one through the CLI; the CLI
    stores no logits, so the reference is the session's cache without them)."""
    out = tmp_path / "again.h5"
    rc = main(["synth", "--preset", "tiny", "--out", str(out), "--seed", "0", "--no-progress"])
    stdout, stderr = capsys.readouterr()
    assert rc == 0 and stderr == ""
    assert stdout.startswith(f"wrote {out} (")
    assert "SYNTHETIC proxy" in stdout and "recognizer        test split" in stdout
    validate(out)
    assert_same_cache(out, tiny_cache_computed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.h5"]  # no temp files left


@pytest.mark.slow
def test_cli_synth_other_seed_gives_other_data(capsys, tmp_path, tiny_cache):
    out = tmp_path / "seed1.h5"
    assert (
        main(["synth", "--preset", "tiny", "--out", str(out), "--seed", "1", "--no-progress"]) == 0
    )
    capsys.readouterr()
    s0, s1 = validate(tiny_cache), validate(out)
    assert (s0.num_classes, s0.feature_dim, s0.light_dim) == (
        s1.num_classes,
        s1.feature_dim,
        s1.light_dim,
    )
    assert s0.num_videos == s1.num_videos
    with h5py.File(tiny_cache, "r") as a, h5py.File(out, "r") as b:
        assert json.loads(b.attrs["generator"])["seed"] == 1
        assert json.loads(a.attrs["generator"])["seed"] == 0
        assert not np.array_equal(a["videos/length"][:], b["videos/length"][:])
        n = min(len(a["frames/features"]), len(b["frames/features"]))
        fa, fb = a["frames/features"][:n], b["frames/features"][:n]
        assert not np.array_equal(fa, fb)
        assert np.mean(fa == fb) < 0.01


def test_generate_is_deterministic(tiny_arrays):
    arrays, attrs = generate(preset("tiny", seed=0), progress=False)
    ref_arrays, ref_attrs = tiny_arrays
    assert arrays.keys() == ref_arrays.keys()
    for name in arrays:
        assert arrays[name].dtype == ref_arrays[name].dtype, name
        if arrays[name].dtype.kind in "OU":
            assert arrays[name].tolist() == ref_arrays[name].tolist(), name
        else:
            assert arrays[name].tobytes() == ref_arrays[name].tobytes(), name
    assert attrs == ref_attrs


def test_one_knob_does_not_reshuffle_the_others(tiny_arrays):
    """Every draw has its own seed stream: changing the light noise leaves the videos, the
    segments and the heavy features as they were."""
    ref, _ = tiny_arrays
    changed, _ = generate(preset("tiny", seed=0, light_noise=1.2), progress=False)
    for name in (
        "videos/label",
        "videos/split",
        "videos/length",
        "frames/relevance",
        "frames/features",
    ):
        assert np.array_equal(changed[name], ref[name]), name
    assert not np.array_equal(changed["frames/light"], ref["frames/light"])


def test_generated_structure(tiny_arrays):
    cfg = preset("tiny")
    arrays, attrs = tiny_arrays
    label, split = arrays["videos/label"], arrays["videos/split"]
    length, offset = arrays["videos/length"], arrays["videos/offset"]
    n = cfg.num_classes * sum(cfg.videos_per_class)
    assert len(label) == len(split) == len(length) == len(offset) == n
    for s, per_class in enumerate(cfg.videos_per_class):
        assert np.array_equal(
            np.bincount(label[split == s], minlength=cfg.num_classes),
            np.full(cfg.num_classes, per_class),
        )
    assert not np.array_equal(split, np.sort(split)), "file order should be shuffled"
    assert length.min() >= cfg.min_frames and length.max() <= cfg.max_frames
    assert offset[0] == 0 and np.array_equal(offset[1:], np.cumsum(length)[:-1])
    F = int(length.sum())
    assert arrays["frames/features"].shape == (F, cfg.feature_dim)
    assert arrays["frames/light"].shape == (F, cfg.light_dim)
    rel = arrays["frames/relevance"].astype(np.float32)
    assert rel.shape == (F,) and rel.min() >= 0 and rel.max() <= 1
    for v in range(n):
        r = rel[offset[v] : offset[v] + length[v]]
        assert r.max() > 0, f"video {v} has no evidence frame"
    assert len(set(arrays["videos/id"].tolist())) == n
    names = arrays["classes/name"].tolist()
    assert len(names) == cfg.num_classes == len(set(names))
    assert all(name.split("/")[0] in cfg.group_names for name in names)
    assert attrs["synthetic"] is True and attrs["dataset"] == "tiny-proxy"
    assert (
        np.isfinite(arrays["frames/features"]).all() and np.isfinite(arrays["frames/light"]).all()
    )


def test_synthesized_file_records_the_generator(tiny_cache):
    with h5py.File(tiny_cache, "r") as f:
        recorded = json.loads(f.attrs["generator"])
        assert f.attrs["synthetic"]
    assert recorded == json.loads(json.dumps(preset("tiny", seed=0).as_json()))
    assert SynthConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()}
    ) == preset("tiny", seed=0)


def test_synthesized_datasets_are_contiguous(tiny_cache):
    """Uncompressed, unchunked frame arrays: what the lazy loader maps from disk."""
    with h5py.File(tiny_cache, "r") as f:
        for name in ("features", "light", "logits", "light_logits", "relevance"):
            ds = f[f"frames/{name}"]
            assert ds.chunks is None and ds.compression is None, name
            assert ds.id.get_offset() is not None, name


def test_real_size_presets_have_the_datasets_train_sizes():
    """fcvid and activitynet at FCVID's 45,611 and ActivityNet's 10,024 train videos, dealt
    evenly (191 or 190, 51 or 50 per class); the -small presets keep 12 per class. Only the
    per-video plan is drawn (no frames)."""
    for name, train, per_class in (("fcvid", 45_611, (190, 191)), ("activitynet", 10_024, (50, 51)),
                                   ("fcvid-small", 2_868, (12, 12)),
                                   ("activitynet-small", 2_400, (12, 12))):  # fmt: skip
        cfg = preset(name)
        p = plan(cfg)
        counts = np.bincount(p["label"][p["split"] == 0], minlength=cfg.num_classes)
        assert counts.sum() == train, name
        assert (counts.min(), counts.max()) == per_class, name
        assert np.array_equal(p["offset"][1:], np.cumsum(p["length"])[:-1])
    assert preset("fcvid").dataset == "fcvid" and preset("fcvid-small").dataset == "fcvid-small"
    big = plan(preset("fcvid"))
    assert np.bincount(big["split"]).tolist() == [45_611, 4_780, 9_560]


def test_chunks_tile_the_frames_deterministically():
    """The frames of a chunk depend on the seed and the chunk only: drawing chunk 1 of a
    2-chunk dataset twice gives the same bytes, and its rows follow chunk 0's."""
    cfg = preset("tiny", videos_per_class=(300, 20, 40))  # 2160 videos: 2 chunks
    p = plan(cfg)
    assert num_chunks(p) == 2 == -(-len(p["length"]) // CHUNK_VIDEOS)
    a, b = frames(cfg, p, 1), frames(cfg, p, 1)
    assert a["frames/features"].tobytes() == b["frames/features"].tobytes()
    first = frames(cfg, p, 0)["frames/features"]
    assert len(first) == p["length"][:CHUNK_VIDEOS].sum()
    assert len(a["frames/features"]) == p["length"][CHUNK_VIDEOS:].sum()
    arrays, _ = generate(cfg, progress=False)
    assert arrays["frames/features"][len(first) :].tobytes() == a["frames/features"].tobytes()


def test_presets():
    assert {"fcvid", "activitynet", "fcvid-small", "activitynet-small", "tiny"} <= set(PRESETS)
    fcvid, anet = preset("fcvid"), preset("activitynet")
    assert (fcvid.num_classes, fcvid.num_groups) == (239, 11)
    assert (anet.num_classes, anet.num_groups) == (200, 7)
    assert preset("tiny", seed=5).seed == 5 and PRESETS["tiny"].seed == 0
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        preset("nope")


def test_the_names_a_user_can_give_are_the_presets():
    """``data="tiny"`` is resolved without importing the generator: the names it knows
    (:data:`adaframe_env.data.paths.PRESET_NAMES`) must be the generator's presets."""
    from adaframe_env.data.paths import PRESET_NAMES

    assert tuple(sorted(PRESETS)) == PRESET_NAMES
