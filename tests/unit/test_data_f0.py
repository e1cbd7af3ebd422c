"""f0 trackers: frame grid, accuracy on known tones, unvoiced handling, crepe's one-line error."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ddspbench.suite.data.f0 import to_frame_grid, track_f0, yin
from ddspbench.suite.errors import UserError

SR = 16_000


def _harmonic(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * hz * t) + 0.25 * np.sin(2 * np.pi * 2 * hz * t)).astype(np.float32)


@pytest.mark.parametrize("hz", [82.4, 261.6, 659.3, 1760.0])
def test_yin_tracks_tones_on_the_frame_grid(hz: float) -> None:
    x = _harmonic(hz, 1.0)[:15_990]
    f0, conf = yin(x)
    assert f0.shape == conf.shape == (250,)  # ceil(15990 / 64)
    mid = f0[20:230]
    assert np.all(mid > 0)
    assert np.median(np.abs(1200 * np.log2(mid / hz))) < 5
    assert conf[20:230].min() > 0.8


def test_yin_silence_and_noise_are_unvoiced() -> None:
    f0, conf = yin(np.zeros(8000, np.float32))
    assert np.all(f0 == 0) and np.all(conf == 0)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, SR).astype(np.float32)
    f0, conf = yin(noise)
    assert (f0 > 0).mean() < 0.2 and conf.mean() < 0.6


def test_yin_follows_a_pitch_change() -> None:
    x = np.concatenate([_harmonic(220.0, 0.5), _harmonic(330.0, 0.5)])
    f0, _ = yin(x)
    assert np.median(f0[10:110]) == pytest.approx(220.0, rel=0.005)
    assert np.median(f0[140:240]) == pytest.approx(330.0, rel=0.005)


def test_frame_grid_interpolation() -> None:
    f0 = np.array([100.0, 400.0, 0.0, 200.0])
    conf = np.array([1.0, 0.5, 0.0, 1.0])
    out_f0, out_conf = to_frame_grid(f0, conf, f0 > 0, 2, 8)
    assert out_f0.shape == (8,)
    assert out_f0[0] == 100.0 and out_f0[1] == pytest.approx(200.0)  # geometric midpoint of 100 and 400
    assert out_f0[2] == 400.0 and out_f0[3] == 0.0  # voiced next to unvoiced: nearest (w = 0.5 -> next)
    assert out_conf[1] == pytest.approx(0.75)


def test_crepe_without_torchcrepe_says_what_to_install() -> None:
    if importlib.util.find_spec("torchcrepe") is not None:
        pytest.skip("torchcrepe is installed")
    with pytest.raises(UserError, match="pip install torchcrepe") as exc:
        track_f0("crepe", np.zeros(1600, np.float32))
    assert "\n" not in str(exc.value)


def test_unknown_tracker_lists_known() -> None:
    with pytest.raises(UserError, match="pyin"):
        track_f0("nope", np.zeros(100, np.float32))


@pytest.mark.slow
def test_pyin_frame_count_and_accuracy() -> None:
    x = _harmonic(440.0, 1.0)[:15_990]
    f0, conf = track_f0("pyin", x)
    assert f0.shape == conf.shape == (250,)
    assert np.median(np.abs(1200 * np.log2(f0[20:230] / 440.0))) < 10
    assert conf[20:230].mean() > 0.5
    f0s, _ = track_f0("pyin", np.zeros(8000, np.float32))
    assert np.all(f0s == 0)
