"""Fundamental-frequency trackers for recorded audio, registered in ``F0_TRACKERS``.

A tracker is a function ``track(audio, sample_rate=16000, hop=64, **options) -> (f0_hz, confidence)``
that returns two float32 arrays of exactly ``ceil(N / hop)`` frames: f0 in Hz (0 where unvoiced) and
a confidence in [0, 1] (pYIN: voicing probability; CREPE: periodicity). Frame ``i`` describes the
audio around sample ``i * hop``.

Generated datasets (``synthetic``, ``soundfont``) know their true f0 and need no tracker.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import scipy.fft

from ddspbench.suite.data.features import n_frames
from ddspbench.suite.errors import UserError
from ddspbench.suite.features import BLOCK_SIZE, SAMPLE_RATE
from ddspbench.suite.registry import F0_TRACKERS

__all__ = ["F0_FMIN", "F0_FMAX", "pyin", "yin", "crepe", "track_f0", "to_frame_grid"]

F0_FMIN = 50.0
"""Lowest f0 searched (Hz), as in the reference."""
F0_FMAX = 2000.0
"""Highest f0 searched (Hz), as in the reference."""


def to_frame_grid(
    f0: np.ndarray, conf: np.ndarray, voiced: np.ndarray, stride: int, frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Analysis frames every ``stride`` output frames -> every output frame.

    f0 is interpolated geometrically between two voiced analysis frames, otherwise taken from the
    nearest one; the confidence is interpolated linearly.
    """
    pos = np.arange(frames, dtype=np.float64) / stride
    lo = np.clip(np.floor(pos).astype(int), 0, len(f0) - 1)
    hi = np.clip(lo + 1, 0, len(f0) - 1)
    w = pos - lo
    both = voiced[lo] & voiced[hi]
    safe_lo = np.where(voiced[lo], f0[lo], 1.0)
    safe_hi = np.where(voiced[hi], f0[hi], 1.0)
    geo = np.exp((1 - w) * np.log(safe_lo) + w * np.log(safe_hi))
    nearest = np.where(w < 0.5, lo, hi)
    near_f0 = np.where(voiced[nearest], f0[nearest], 0.0)
    out_f0 = np.where(both, geo, near_f0)
    out_conf = (1 - w) * conf[lo] + w * conf[hi]
    return out_f0.astype(np.float32), out_conf.astype(np.float32)


@F0_TRACKERS.register(
    "pyin",
    description="probabilistic YIN (librosa.pyin), fmin 50 Hz, fmax 2000 Hz; confidence = voicing probability",
    min_confidence=0.5,
)
def pyin(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    hop: int = BLOCK_SIZE,
    *,
    fmin: float = F0_FMIN,
    fmax: float = F0_FMAX,
    frame_length: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """pYIN (Mauch & Dixon 2014) via ``librosa.pyin`` (centred frames, so frame i is at sample i * hop).

    Its cost is dominated by the dense Viterbi decoding (about 2 s of CPU per second of audio at hop
    64 on a 2-core machine); the ``folder`` dataset's ``f0_stride`` analyses at a coarser hop.

    Args:
        audio: (N,) mono float signal.
        sample_rate: its sample rate (Hz).
        hop: output frame hop (samples).
        fmin: lowest f0 searched (Hz).
        fmax: highest f0 searched (Hz).
        frame_length: analysis window (samples).

    Returns:
        (f0_hz, confidence), each (ceil(N / hop),) float32; f0 is 0 where pYIN says unvoiced.
    """
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    frames = n_frames(x.shape[-1], hop)
    if frames == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    f0, voiced, prob = librosa.pyin(
        x,
        fmin=fmin,
        fmax=fmax,
        sr=sample_rate,
        frame_length=frame_length,
        hop_length=hop,
        center=True,
    )
    voiced = np.asarray(voiced, bool) & np.isfinite(f0)
    f0 = np.where(voiced, np.nan_to_num(f0), 0.0)
    f0, prob = f0[:frames], np.nan_to_num(np.asarray(prob, np.float64))[:frames]
    return f0.astype(np.float32), prob.astype(np.float32)


@F0_TRACKERS.register(
    "yin",
    description="YIN in numpy (no HMM): fast, less robust than pyin; confidence = 1 - aperiodicity",
    min_confidence=0.6,
)
def yin(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    hop: int = BLOCK_SIZE,
    *,
    fmin: float = F0_FMIN,
    fmax: float = F0_FMAX,
    window: int = 1024,
    threshold: float = 0.15,
    silence_rms: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """YIN (de Cheveigné & Kawahara 2002), vectorised over frames with FFT cross-correlations.

    Per frame (centred on sample ``i * hop``): the difference function over ``window`` samples,
    its cumulative-mean normalisation, the first dip below ``threshold`` (else the global minimum),
    parabolic interpolation. Frames with a normalised dip above ``threshold`` or an RMS below
    ``silence_rms`` are unvoiced (f0 0).

    Returns:
        (f0_hz, confidence), each (ceil(N / hop),) float32; confidence = 1 - the dip's value.
    """
    x = np.asarray(audio, dtype=np.float64)
    frames = n_frames(x.shape[-1], hop)
    max_lag = int(np.ceil(sample_rate / fmin))
    min_lag = max(2, int(np.floor(sample_rate / fmax)))
    seg_len = window + max_lag + 1
    xp = np.pad(x, (window // 2, seg_len + frames * hop))
    nfft = scipy.fft.next_fast_len(seg_len + window, real=True)
    f0 = np.zeros(frames)
    conf = np.zeros(frames)
    lags = np.arange(max_lag + 1)
    for start in range(0, frames, 256):
        idx = np.arange(start, min(frames, start + 256))
        seg = np.lib.stride_tricks.sliding_window_view(xp, seg_len)[idx * hop]  # (F, seg_len)
        head = seg[:, :window]
        spec = np.conj(scipy.fft.rfft(head, nfft)) * scipy.fft.rfft(seg, nfft)
        r = scipy.fft.irfft(spec, nfft)[:, : max_lag + 1]
        csq = np.concatenate([np.zeros((len(idx), 1)), np.cumsum(seg**2, axis=1)], axis=1)
        energy_lag = csq[:, lags + window] - csq[:, lags]  # sum of x[j + tau]^2 over the window
        d = np.maximum(energy_lag[:, :1] + energy_lag - 2 * r, 0.0)
        cum = np.cumsum(d[:, 1:], axis=1)
        cmnd = np.ones_like(d)
        cmnd[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(cum, 1e-12)
        band = cmnd[:, min_lag : max_lag]
        nxt = cmnd[:, min_lag + 1 : max_lag + 1]
        dip = (band < threshold) & (band <= nxt)
        has = dip.any(axis=1)
        k = np.where(has, dip.argmax(axis=1), band.argmin(axis=1))
        tau = k + min_lag
        rows = np.arange(len(idx))
        b = cmnd[rows, tau]
        # parabolic refinement on the raw difference function (YIN step 5; less biased at short lags)
        a, m, c = d[rows, tau - 1], d[rows, tau], d[rows, np.minimum(tau + 1, max_lag)]
        den = a - 2 * m + c
        shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
        period = tau + np.clip(shift, -1, 1)
        rms = np.sqrt(energy_lag[:, 0] / window)
        voiced = (b < threshold) & (rms > silence_rms)
        f0[idx] = np.where(voiced, sample_rate / period, 0.0)
        conf[idx] = np.where(rms > silence_rms, np.clip(1.0 - b, 0.0, 1.0), 0.0)
    return f0.astype(np.float32), conf.astype(np.float32)


@F0_TRACKERS.register(
    "crepe",
    description="CREPE via torchcrepe (only where torchcrepe is installed); confidence = periodicity",
    requires="torchcrepe",
    min_confidence=0.8,
)
def crepe(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    hop: int = BLOCK_SIZE,
    *,
    fmin: float = F0_FMIN,
    fmax: float = F0_FMAX,
    model: str = "full",
    periodicity_threshold: float = 0.21,
    batch_size: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """CREPE (Kim et al. 2018) via ``torchcrepe``, as in the reference (model 'full', hop 64).

    torchcrepe is not a dependency of ddspbench (its import wants torchaudio, which would pull an
    older torch); install it yourself in an environment where that is acceptable.

    Args:
        audio: (N,) mono float signal.
        sample_rate: its sample rate (Hz).
        hop: output frame hop (samples).
        fmin: lowest f0 (Hz).
        fmax: highest f0 (Hz).
        model: torchcrepe capacity, 'full' (reference) or 'tiny'.
        periodicity_threshold: frames with a lower periodicity get f0 = 0.
        batch_size: frames per network call.

    Returns:
        (f0_hz, confidence), each (ceil(N / hop),) float32.
    """
    if importlib.util.find_spec("torchcrepe") is None:
        raise UserError("the crepe f0 tracker needs torchcrepe (pip install torchcrepe); or use --f0 pyin")
    try:
        import torch
        import torchcrepe
    except ImportError as exc:
        raise UserError(f"torchcrepe is installed but cannot be imported ({exc}); use --f0 pyin") from None

    x = np.asarray(audio, dtype=np.float32)
    frames = n_frames(x.shape[-1], hop)
    with torch.inference_mode():
        f0, per = torchcrepe.predict(
            torch.from_numpy(x)[None],
            sample_rate,
            hop,
            fmin,
            fmax,
            model,
            return_periodicity=True,
            batch_size=batch_size,
            device="cpu",
            pad=True,
        )
    f0_np = f0[0].numpy().astype(np.float64)[:frames]
    per_np = per[0].numpy().astype(np.float64)[:frames]
    if len(f0_np) < frames:  # pad=True gives 1 + N // hop frames; keep the grid exact either way
        f0_np = np.pad(f0_np, (0, frames - len(f0_np)), mode="edge")
        per_np = np.pad(per_np, (0, frames - len(per_np)), mode="edge")
    f0_np = np.where(per_np >= periodicity_threshold, f0_np, 0.0)
    return f0_np.astype(np.float32), per_np.astype(np.float32)


def track_f0(
    name: str, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop: int = BLOCK_SIZE, **options: object
) -> tuple[np.ndarray, np.ndarray]:
    """Run the registered tracker ``name`` (unknown names raise with the known ones)."""
    fn = F0_TRACKERS.get(name)
    return fn(audio, sample_rate, hop, **options)  # type: ignore[no-any-return]
