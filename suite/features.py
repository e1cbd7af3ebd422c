"""Shared conventions of the reference models (REFERENCE §1): rates, sizes and input scaling."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "SAMPLE_RATE",
    "BLOCK_SIZE",
    "FRAME_RATE",
    "CLIP_SECONDS",
    "CLIP_SAMPLES",
    "CLIP_FRAMES",
    "LOUDNESS_FLOOR_DB",
    "hz_to_midi",
    "scale_f0",
    "scale_loudness",
]

SAMPLE_RATE = 16_000
"""Audio sample rate (Hz)."""
BLOCK_SIZE = 64
"""Samples per control frame (hop)."""
FRAME_RATE = SAMPLE_RATE // BLOCK_SIZE
"""Control frames per second (250)."""
CLIP_SECONDS = 4.0
CLIP_SAMPLES = int(CLIP_SECONDS * SAMPLE_RATE)
"""64,000 samples per clip."""
CLIP_FRAMES = CLIP_SAMPLES // BLOCK_SIZE
"""1,000 frames per clip."""
LOUDNESS_FLOOR_DB = -80.0


def hz_to_midi(f0_hz: float) -> float:
    """MIDI note number of a frequency; 0 for f0 <= 0."""
    return 12.0 * math.log2(f0_hz / 440.0) + 69.0 if f0_hz > 0 else 0.0


@overload
def scale_f0(f0_hz: torch.Tensor) -> torch.Tensor: ...
@overload
def scale_f0(f0_hz: np.ndarray) -> np.ndarray: ...
def scale_f0(f0_hz):  # type: ignore[no-untyped-def]
    """``midi(f0_hz) / 127`` with f0 <= 0 mapped to 0 (torch tensors or numpy arrays)."""
    try:
        import torch

        if isinstance(f0_hz, torch.Tensor):
            safe = torch.clamp(f0_hz, min=1e-7)
            midi = 12.0 * torch.log2(safe / 440.0) + 69.0
            return torch.where(f0_hz > 0, midi, torch.zeros_like(midi)) / 127.0
    except ImportError:  # pragma: no cover
        pass
    import numpy as np

    arr = np.asarray(f0_hz, dtype=np.float32)
    safe = np.maximum(arr, 1e-7)
    midi = 12.0 * np.log2(safe / 440.0) + 69.0
    return (np.where(arr > 0, midi, 0.0) / 127.0).astype(np.float32)


@overload
def scale_loudness(loudness_db: torch.Tensor) -> torch.Tensor: ...
@overload
def scale_loudness(loudness_db: np.ndarray) -> np.ndarray: ...
def scale_loudness(loudness_db):  # type: ignore[no-untyped-def]
    """``loudness_db / 80 + 1``: [-80, 0] dB -> [0, 1]."""
    return loudness_db / 80.0 + 1.0
