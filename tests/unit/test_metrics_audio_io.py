"""Audio loading for the metric tools (suite.audio_io): downmix, resampling, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ddspbench.suite.audio_io import list_audio_files, load_audio, resample
from ddspbench.suite.errors import UserError


def _sine(sr: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_is_downmixed_and_rates_resampled(tmp_path: Path) -> None:
    left, right = _sine(44100), np.zeros(22050, np.float32)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 44100)
    x = load_audio(tmp_path / "st.wav")
    assert x.dtype == np.float32 and x.ndim == 1 and x.size == 8000  # 0.5 s at 16 kHz
    ref = _sine(16000) / 2  # the average of the two channels
    assert np.max(np.abs(x[200:-200] - ref[200:-200])) < 0.01
    sf.write(tmp_path / "mono.flac", _sine(16000), 16000)
    assert np.allclose(load_audio(tmp_path / "mono.flac"), _sine(16000), atol=1e-4)
    assert resample(_sine(48000), 48000, 16000).size == 8000


def test_bad_files_raise_one_line_user_errors(tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("this is not audio")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    for path, pattern in (
        (tmp_path / "missing.wav", "not found"),
        (tmp_path / "text.wav", "not a readable audio file"),
        (tmp_path / "empty.wav", "no samples"),
    ):
        with pytest.raises(UserError, match=pattern) as exc:
            load_audio(path)
        assert "\n" not in str(exc.value)


def test_list_audio_files(tmp_path: Path) -> None:
    sf.write(tmp_path / "b.wav", _sine(16000), 16000)
    sf.write(tmp_path / "a.ogg", _sine(16000), 16000)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_audio_files(tmp_path)] == ["a.ogg", "b.wav"]
    with pytest.raises(UserError, match="folder not found"):
        list_audio_files(tmp_path / "nope")
