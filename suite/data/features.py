"""Pure feature functions of the data pipeline (REFERENCE §3): loudness, normalisation, splitting, chunking.

Everything here is a pure numpy function of its arguments (no files, no caches), vectorised over
frames. The frame grid is the one of every model: hop 64 samples at 16 kHz, 250 frames/s, and a
signal of ``N`` samples has ``ceil(N / 64)`` frames, so a 4 s clip (64,000 samples) has 1,000.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft

from ddspbench.suite.features import BLOCK_SIZE, CLIP_SAMPLES, LOUDNESS_FLOOR_DB, SAMPLE_RATE

__all__ = [
    "LOUDNESS_N_FFT",
    "LOUDNESS_REF_DB",
    "MIN_CHUNK_SAMPLES",
    "n_frames",
    "a_weighting_db",
    "a_weighted_loudness",
    "peak_normalise",
    "split_on_silence",
    "chunk_region",
    "chunk_starts",
]

LOUDNESS_N_FFT = 2048
"""STFT size of the loudness feature."""
LOUDNESS_REF_DB = 20.7
"""Reference level subtracted from the A-weighted power (dB)."""
MIN_CHUNK_SAMPLES = 3 * SAMPLE_RATE
"""Chunks of this many samples or fewer (3 s) are dropped; longer ones are zero-padded to 4 s."""


def n_frames(n_samples: int, hop: int = BLOCK_SIZE) -> int:
    """Frames of a signal of ``n_samples`` on the model grid: ``ceil(n_samples / hop)``."""
    return int(math.ceil(n_samples / hop))


def a_weighting_db(freqs: np.ndarray) -> np.ndarray:
    """The IEC 61672 A-weighting curve in dB at ``freqs`` (Hz); 0 dB at 1 kHz, -inf at DC."""
    f2 = np.asarray(freqs, dtype=np.float64) ** 2
    with np.errstate(divide="ignore"):
        num = np.log10(12194.0**2 * f2**2)
        den = (
            np.log10(f2 + 20.6**2)
            + 0.5 * np.log10(f2 + 107.7**2)
            + 0.5 * np.log10(f2 + 737.9**2)
            + np.log10(f2 + 12194.0**2)
        )
    out: np.ndarray = 2.0 + 20.0 * (num - den)
    return out


@lru_cache(maxsize=8)
def _a_weights(sample_rate: int, n_fft: int) -> np.ndarray:
    """A-weighting of the rfft bins as a power factor divided by the bin count (for a mean by matmul)."""
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    out: np.ndarray = 10.0 ** (a_weighting_db(freqs) / 10.0) / len(freqs)
    out[0] = 0.0  # DC: -inf dB
    return out


def a_weighted_loudness(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    hop: int = BLOCK_SIZE,
    n_fft: int = LOUDNESS_N_FFT,
    ref_db: float = LOUDNESS_REF_DB,
    floor_db: float = LOUDNESS_FLOOR_DB,
) -> np.ndarray:
    """A-weighted loudness per frame, in dB, as in the reference (REFERENCE §3).

    Frame ``i`` is the Hann-windowed ``n_fft``-sample segment starting at sample ``i * hop``
    (not centred; the signal is zero-padded at its end), so there are ``ceil(N / hop)`` frames.
    Per frame: power spectrum, times the A-weighting of each bin, mean over the bins,
    ``10 log10``, minus ``ref_db``, clipped to ``[floor_db, 0]`` (the models' input scaling
    ``loudness / 80 + 1`` assumes that range; only a near full-scale pure tone reaches 0 dB).

    Args:
        audio: (..., N) float signal; leading dimensions are batch dimensions.
        sample_rate: sample rate of ``audio`` (Hz).
        hop: frame hop (samples).
        n_fft: STFT size (= window length).
        ref_db: reference level subtracted (dB).
        floor_db: lower clip (dB).

    Returns:
        (..., ceil(N / hop)) float32 loudness in dB.
    """
    x = np.asarray(audio, dtype=np.float32)
    n = x.shape[-1]
    frames = n_frames(n, hop)
    if frames == 0:
        return np.zeros(x.shape[:-1] + (0,), dtype=np.float32)
    padded_len = (frames - 1) * hop + n_fft
    pad = [(0, 0)] * (x.ndim - 1) + [(0, padded_len - n)]
    xp = np.pad(x, pad)
    windows = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[..., ::hop, :]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    weights = _a_weights(sample_rate, n_fft).astype(np.float32)
    out = np.empty(x.shape[:-1] + (frames,), dtype=np.float64)
    step = 512  # frames per rfft batch: bounds the memory of the (frames, n_fft) window copy
    for start in range(0, frames, step):
        # float32 FFT (scipy keeps the precision; about 2.5x faster than numpy's float64 one)
        spec = scipy.fft.rfft(windows[..., start : start + step, :] * window, axis=-1)
        power = spec.real**2 + spec.imag**2
        mean_power = (power @ weights).astype(np.float64)
        out[..., start : start + step] = 10.0 * np.log10(np.maximum(mean_power, 1e-20))
    return np.clip(out - ref_db, floor_db, 0.0).astype(np.float32)


def peak_normalise(audio: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """``audio`` scaled so that its largest absolute sample is ``peak`` (all-zero input is returned as is)."""
    x = np.asarray(audio, dtype=np.float32)
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m <= 0.0 or not math.isfinite(m):
        return x.copy()
    return (x * (peak / m)).astype(np.float32)


def split_on_silence(
    audio: np.ndarray, top_db: float = 40.0, frame_length: int = 2048, hop: int = 512, align: int = BLOCK_SIZE
) -> list[tuple[int, int]]:
    """Non-silent regions ``[(start, end), ...]`` in samples.

    The criterion of the reference (librosa's ``effects.split``): the mean square of centred
    ``frame_length`` frames every ``hop`` samples, in dB relative to the loudest frame; frames above
    ``-top_db`` are non-silent and runs of them become regions. Starts are rounded down to a multiple
    of ``align`` so that a region's frames fall on the global 64-sample grid.
    """
    x = np.asarray(audio, dtype=np.float64)
    n = x.shape[-1]
    if n == 0 or not np.any(x):
        return []
    half = frame_length // 2
    sq = np.pad(x**2, (half, half))
    csum = np.concatenate([[0.0], np.cumsum(sq)])
    starts = np.arange(0, n + 1, hop)
    mse = np.maximum(csum[starts + frame_length] - csum[starts], 0.0) / frame_length
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(np.maximum(mse, 1e-10) / max(mse.max(), 1e-10))
    loud = np.concatenate([[False], db > -top_db, [False]])
    edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
    out = []
    for a, b in zip(edges[::2], edges[1::2]):
        s = int(a) * hop
        s -= s % align
        e = min(n, int(b) * hop)
        if e > s:
            out.append((s, e))
    return out


def chunk_starts(region_len: int, chunk: int = CLIP_SAMPLES, min_len: int = MIN_CHUNK_SAMPLES) -> list[int]:
    """Offsets of the chunks of a region of ``region_len`` samples that are kept.

    The region is cut into consecutive pieces of ``chunk`` samples; a piece of ``min_len`` samples
    or fewer (the last one) is dropped.
    """
    return [s for s in range(0, region_len, chunk) if min(chunk, region_len - s) > min_len]


def chunk_region(region: np.ndarray, chunk: int = CLIP_SAMPLES, min_len: int = MIN_CHUNK_SAMPLES) -> np.ndarray:
    """Cut ``region`` into (K, chunk) clips: pieces longer than ``min_len`` kept, the last zero-padded.

    Returns:
        (K, chunk) float32 array (K may be 0).
    """
    x = np.asarray(region, dtype=np.float32)
    starts = chunk_starts(x.shape[-1], chunk, min_len)
    out = np.zeros((len(starts), chunk), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = x[s : s + chunk]
        out[i, : piece.shape[0]] = piece
    return out
