"""Pure feature functions of the data pipeline: loudness, normalisation, silence splitting, chunking."""

from __future__ import annotations

import numpy as np
import pytest

from ddspbench.suite.data.features import (
    a_weighted_loudness,
    a_weighting_db,
    chunk_region,
    chunk_starts,
    n_frames,
    peak_normalise,
    split_on_silence,
)

SR = 16_000


def _tone(seconds: float, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_frame_count_is_ceil_of_samples_over_hop() -> None:
    assert a_weighted_loudness(np.zeros(64_000)).shape == (1000,)
    assert a_weighted_loudness(np.zeros(64_001)).shape == (1001,)
    assert a_weighted_loudness(np.zeros(63_999)).shape == (1000,)
    assert n_frames(100) == 2
    assert a_weighted_loudness(np.zeros((3, 6400))).shape == (3, 100)


def test_silence_is_floor_and_louder_is_higher() -> None:
    assert np.all(a_weighted_loudness(np.zeros(8000)) == -80.0)
    levels = [float(np.median(a_weighted_loudness(_tone(1.0, amp=a)))) for a in (0.001, 0.01, 0.1, 0.5)]
    assert levels == sorted(levels) and len(set(levels)) == 4
    # 20 dB per decade of amplitude (power spectrum, so exactly)
    assert levels[2] - levels[1] == pytest.approx(20.0, abs=0.05)


def test_loudness_range_and_a_weighting() -> None:
    loud = a_weighted_loudness(np.random.default_rng(0).uniform(-1, 1, 32_000))
    assert loud.min() >= -80.0 and loud.max() <= 0.0
    # A-weighting: a 100 Hz tone reads about 19 dB quieter than a 1 kHz tone of the same amplitude
    low = np.median(a_weighted_loudness(_tone(1.0, 100.0, 0.1)))
    mid = np.median(a_weighted_loudness(_tone(1.0, 1000.0, 0.1)))
    assert mid - low == pytest.approx(19.1, abs=1.0)
    assert a_weighting_db(np.array([1000.0]))[0] == pytest.approx(0.0, abs=0.01)


def test_a_weighting_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    f = np.linspace(20, 8000, 200)
    assert np.allclose(a_weighting_db(f), librosa.A_weighting(f, min_db=None), atol=0.01)


def test_loudness_is_not_centred() -> None:
    # frame i looks at samples [64 i, 64 i + 2048): a tone starting at sample 6400 is first heard at
    # frame (6400 - 2048) / 64 = 68, and nothing before
    x = np.zeros(16_000, np.float32)
    x[6400:] = _tone(1.0)[: 16_000 - 6400]
    loud = a_weighted_loudness(x)
    assert np.all(loud[:68] == -80.0)
    assert loud[69] > -80.0


def test_peak_normalise() -> None:
    x = np.array([0.1, -0.25, 0.2], np.float32)
    y = peak_normalise(x)
    assert np.max(np.abs(y)) == pytest.approx(1.0)
    assert np.allclose(y / x, 4.0)
    assert np.all(peak_normalise(np.zeros(5)) == 0)


def test_split_on_silence_finds_regions() -> None:
    x = np.concatenate([np.zeros(SR), _tone(2.0), np.zeros(SR), _tone(1.5), np.zeros(SR // 2)])
    regions = split_on_silence(x, top_db=40)
    assert len(regions) == 2
    (s1, e1), (s2, e2) = regions
    assert abs(s1 - SR) < 2048 and abs(e1 - 3 * SR) < 2048
    assert abs(s2 - 4 * SR) < 2048 and abs(e2 - int(5.5 * SR)) < 2048
    assert s1 % 64 == 0 and s2 % 64 == 0
    assert split_on_silence(np.zeros(SR)) == []


def test_chunking_drops_short_and_pads_the_rest() -> None:
    assert chunk_starts(64_000 * 2 + 48_000) == [0, 64_000]  # the 3.0 s tail is dropped (<= 3 s)
    assert chunk_starts(64_000 * 2 + 48_001) == [0, 64_000, 128_000]
    assert chunk_starts(40_000) == []
    region = np.ones(64_000 + 50_000, np.float32)
    chunks = chunk_region(region)
    assert chunks.shape == (2, 64_000)
    assert np.all(chunks[1, :50_000] == 1) and np.all(chunks[1, 50_000:] == 0)
    assert chunk_region(np.ones(1000)).shape == (0, 64_000)
