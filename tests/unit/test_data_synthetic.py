"""The synthetic dataset: shapes, frame rate, ranges, determinism, true f0, caching, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ddspbench.suite.data import load_meta, load_split, prepare
from ddspbench.suite.data.splits import split_counts, split_recordings
from ddspbench.suite.data.synthetic import TIMBRES
from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import DATASETS, F0_TRACKERS

SMALL = {"recordings": 3, "clips_per_recording": 1}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    return prepare("synthetic", root / "data", seed=0, cache_dir=root / "cache", **SMALL)


def _all(d: Path) -> dict[str, np.ndarray]:
    sets = [load_split(d, s) for s in ("train", "valid", "test")]
    return {k: np.concatenate([getattr(s, k) for s in sets]) for k in ("audio", "f0_hz", "loudness_db", "clip_ids")}


def test_registered() -> None:
    import ddspbench.suite.data.builders  # noqa: F401

    assert "synthetic" in DATASETS
    assert {"pyin", "crepe"} <= set(F0_TRACKERS.list())


def test_shapes_rate_and_ranges(small_set: Path) -> None:
    meta = load_meta(small_set)
    assert meta["sample_rate"] == 16_000 and meta["block_size"] == 64
    assert len(meta["instruments"]) >= 3 and set(meta["instruments"]) == set(TIMBRES)
    arr = _all(small_set)
    n = 3 * 3
    assert arr["audio"].shape == (n, 64_000) and arr["f0_hz"].shape == (n, 1000)
    assert arr["audio"].shape[1] == 64 * arr["f0_hz"].shape[1]  # 250 frames/s at 16 kHz
    assert np.abs(arr["audio"]).max() <= 1.0
    assert arr["loudness_db"].min() >= -80.0 and arr["loudness_db"].max() <= 0.0
    voiced = arr["f0_hz"][arr["f0_hz"] > 0]
    assert voiced.min() > 150.0 and voiced.max() < 1500.0  # the timbres' ranges (E3..E6 plus vibrato)
    assert 0.5 < (arr["f0_hz"] > 0).mean() < 1.0  # notes and rests
    assert len(set(arr["clip_ids"].tolist())) == n


def test_every_split_has_each_timbre_and_no_recording_is_shared(small_set: Path) -> None:
    recs = {}
    for s in ("train", "valid", "test"):
        c = load_split(small_set, s)
        assert set(c.instruments.tolist()) == set(TIMBRES)  # 3 recordings per timbre -> stratified 1/1/1
        recs[s] = set(c.recording_ids.tolist())
    assert not (recs["train"] & recs["valid"]) and not (recs["train"] & recs["test"]) and not (recs["valid"] & recs["test"])


def _yin_pitch(x: np.ndarray, centres: np.ndarray, fmin: float = 100.0, fmax: float = 2500.0) -> np.ndarray:
    """A plain YIN estimate (cumulative-mean-normalised difference, threshold 0.15) at sample ``centres``."""
    w, sr = 1024, 16_000
    lag_max = int(sr / fmin)
    xp = np.pad(x, (w, w + lag_max))
    out = np.zeros(len(centres))
    for j, c in enumerate(centres + w - w // 2):
        seg = xp[c : c + w + lag_max]
        d = np.array([np.sum((seg[:w] - seg[tau : tau + w]) ** 2) for tau in range(lag_max)])
        cmnd = d[1:] * np.arange(1, lag_max) / np.maximum(np.cumsum(d[1:]), 1e-12)
        lo = int(sr / fmax)
        cand = np.flatnonzero(cmnd[lo:] < 0.15)
        if not len(cand):
            continue
        tau = lo + cand[0]
        while tau + 1 < len(cmnd) and cmnd[tau + 1] < cmnd[tau]:
            tau += 1
        a, b, g = cmnd[tau - 1], cmnd[tau], cmnd[tau + 1] if tau + 1 < len(cmnd) else cmnd[tau]
        shift = 0.5 * (a - g) / (a - 2 * b + g) if (a - 2 * b + g) != 0 else 0.0
        out[j] = sr / (tau + 1 + shift)
    return out


def test_f0_matches_the_audio(small_set: Path) -> None:
    c = load_split(small_set, "train")
    rng = np.random.default_rng(0)
    for i in range(len(c)):
        frames = np.flatnonzero((c.f0_hz[i] > 0) & (c.loudness_db[i] > -40))
        assert len(frames) > 300
        pick = np.sort(rng.choice(frames, 40, replace=False))
        est = _yin_pitch(c.audio[i].astype(np.float64), pick * 64)
        cents = 1200 * np.abs(np.log2(np.maximum(est, 1.0) / c.f0_hz[i][pick]))
        assert np.median(cents) < 15, c.instruments[i]
        assert (cents < 50).mean() >= 0.85, c.instruments[i]


def test_louder_is_brighter() -> None:
    from ddspbench.suite.data.synthetic import _spectrum

    t = TIMBRES["brass-like"]
    pitch = np.full(2, 300.0)
    amps = _spectrum(t, pitch, np.array([0.2, 1.0]), 20)
    k = np.arange(1, 21)
    centroid = (amps * k).sum(1) / amps.sum(1)
    assert centroid[1] > 1.5 * centroid[0]


def test_deterministic_by_seed_and_seeds_differ(tmp_path: Path) -> None:
    opts = {"recordings": 1, "clips_per_recording": 1, "timbres": "string-like", "use_cache": False}
    a = _all(prepare("synthetic", tmp_path / "a", seed=3, **opts))
    b = _all(prepare("synthetic", tmp_path / "b", seed=3, **opts))
    c = _all(prepare("synthetic", tmp_path / "c", seed=4, **opts))
    assert np.array_equal(a["audio"], b["audio"]) and np.array_equal(a["f0_hz"], b["f0_hz"])
    assert not np.allclose(a["audio"], c["audio"])
    assert not np.array_equal(a["f0_hz"], c["f0_hz"])
    # parallel generation gives the same data
    d = _all(prepare("synthetic", tmp_path / "d", seed=3, jobs=2, **{**opts, "timbres": "string-like,flute-like"}))
    strings = d["clip_ids"] == a["clip_ids"][0]
    assert np.array_equal(d["audio"][strings], a["audio"])


def test_cache_second_run_hits_and_equals(tmp_path: Path) -> None:
    opts = {"recordings": 1, "clips_per_recording": 1, "timbres": "flute-like,brass-like"}
    first = prepare("synthetic", tmp_path / "a", cache_dir=tmp_path / "cache", **opts)
    second = prepare("synthetic", tmp_path / "b", cache_dir=tmp_path / "cache", **opts)
    assert load_meta(first)["cache"]["misses"] == 2 and load_meta(first)["cache"]["hits"] == 0
    assert load_meta(second)["cache"]["hits"] == 2 and load_meta(second)["cache"]["misses"] == 0
    a, b = _all(first), _all(second)
    for k in a:
        assert np.array_equal(a[k], b[k])


def test_bad_options_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no option"):
        prepare("synthetic", tmp_path / "x", bogus=1)
    with pytest.raises(UserError, match="timbre"):
        prepare("synthetic", tmp_path / "x", timbres="kazoo")
    with pytest.raises(UserError, match="unknown dataset"):
        prepare("nope", tmp_path / "x")
    with pytest.raises(UserError, match="recordings"):
        prepare("synthetic", tmp_path / "x", recordings=0)


@pytest.mark.parametrize(
    ("n", "expected"), [(1, (1, 0, 0)), (2, (1, 0, 1)), (3, (1, 1, 1)), (4, (2, 1, 1)), (10, (8, 1, 1)), (30, (24, 3, 3))]
)
def test_split_counts(n: int, expected: tuple[int, int, int]) -> None:
    assert split_counts(n) == expected


def test_split_recordings_is_seeded_and_complete() -> None:
    recs = [f"r{i}" for i in range(10)]
    a = split_recordings(recs, ["x"] * 10, seed=0)
    assert a == split_recordings(recs, ["x"] * 10, seed=0)
    assert sorted(a) == sorted(recs)
    assert sorted(a.values()).count("test") == 1
    assert any(split_recordings(recs, ["x"] * 10, seed=s) != a for s in range(1, 5))
