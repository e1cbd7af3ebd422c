"""Reading audio files for the metric tools: any file soundfile reads -> mono float32 at 16 kHz.

Stereo (or more channels) is downmixed by averaging; other sample rates are resampled with
``scipy.signal.resample_poly`` (a polyphase FIR, exact rational ratio). Missing, empty, corrupt or
non-audio files raise a one-line :class:`~suite.errors.UserError` naming the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ddspbench.suite.errors import UserError
from ddspbench.suite.features import SAMPLE_RATE

__all__ = ["AUDIO_SUFFIXES", "load_audio", "resample", "list_audio_files", "write_wav"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a mono float array from ``sr_in`` to ``sr_out`` Hz (polyphase; a no-op at equal rates)."""
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(int(sr_in), int(sr_out))
    return resample_poly(audio, int(sr_out) // g, int(sr_in) // g).astype(np.float32)


def load_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load an audio file as mono float32 at ``sample_rate`` Hz.

    Raises:
        UserError: the file is missing, unreadable, not audio, or holds no samples.
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise UserError(f"audio file not found: {p}")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile reports every bad file as some error
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UserError(f"{p}: not a readable audio file ({msg})") from None
    if data.shape[0] == 0:
        raise UserError(f"{p}: audio file holds no samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise UserError(f"{p}: audio holds NaN or infinite samples")
    return resample(mono, int(sr), sample_rate)


def list_audio_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Audio files directly in ``folder`` (sorted by name); a one-line error for a missing folder."""
    d = Path(folder)
    if not d.is_dir():
        raise UserError(f"folder not found: {d}")
    return sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float audio as a 16 kHz float WAV file (parent folders created)."""
    import soundfile as sf

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), np.asarray(audio, dtype=np.float32), sample_rate, subtype="FLOAT")
    return p
