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

from suite.data.features import n_frames
from suite.errors import UserError
from suite.features import BLOCK_SIZE, SAMPLE_RATE
from suite.registry import F0_TRACKERS

__all__ = ["F0_FMIN", "F0_FMAX", "pyin", "crepe", "track_f0"]

F0_FMIN = 50.0
"""Lowest f0 searched (Hz), as in the reference."""
F0_FMAX = 2000.0
"""Highest f0 searched (Hz), as in the reference."""


def _to_frame_grid(
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
    "pyin", description="probabilistic YIN (librosa.pyin), fmin 50 Hz, fmax 2000 Hz; confidence = voicing probability"
)
def pyin(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    hop: int = BLOCK_SIZE,
    *,
    fmin: float = F0_FMIN,
    fmax: float = F0_FMAX,
    stride: int = 1,
    frame_length: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """pYIN (Mauch & Dixon 2014) via ``librosa.pyin``.

    Args:
        audio: (N,) mono float signal.
        sample_rate: its sample rate (Hz).
        hop: output frame hop (samples).
        fmin: lowest f0 searched (Hz).
        fmax: highest f0 searched (Hz).
        stride: analyse every ``stride * hop`` samples and interpolate to the ``hop`` grid. 1 is the
            exact analysis; its cost is proportional to the number of analysis frames (about 2 s of
            CPU per second of audio at stride 1 on the 2-core reference machine), so stride 2-4
            trades a few cents of accuracy for a 2-4x speed-up.
        frame_length: analysis window (samples).

    Returns:
        (f0_hz, confidence), each (ceil(N / hop),) float32; f0 is 0 where pYIN says unvoiced.
    """
    import librosa

    x = np.asarray(audio, dtype=np.float32)
    frames = n_frames(x.shape[-1], hop)
    if frames == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    stride = max(1, int(stride))
    f0, voiced, prob = librosa.pyin(
        x,
        fmin=fmin,
        fmax=fmax,
        sr=sample_rate,
        frame_length=frame_length,
        hop_length=hop * stride,
        center=True,
    )
    voiced = np.asarray(voiced, bool) & np.isfinite(f0)
    f0 = np.where(voiced, np.nan_to_num(f0), 0.0)
    return _to_frame_grid(f0, np.nan_to_num(np.asarray(prob, np.float64)), voiced, stride, frames)


@F0_TRACKERS.register(
    "crepe",
    description="CREPE via torchcrepe (only where torchcrepe is installed); confidence = periodicity",
    requires="torchcrepe",
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
