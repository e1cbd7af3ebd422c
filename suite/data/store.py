"""The on-disk form of a prepared dataset, shared by every dataset builder and every consumer.

A prepared dataset is a directory::

    DIR/meta.json          {"format": "ddspbench.dataset/1", "name", "sample_rate", "block_size",
                            "clip_samples", "settings": {...}, "splits": {"train": n, ...}, ...}
    DIR/train.npz          arrays of one split (see ClipSet)
    DIR/valid.npz
    DIR/test.npz

Splits are made by recording (all chunks of one source recording land in one split).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddspbench.suite.errors import UserError
from ddspbench.suite.features import (
    BLOCK_SIZE,
    CLIP_FRAMES,
    CLIP_SAMPLES,
    SAMPLE_RATE,
    scale_f0,
    scale_loudness,
)

__all__ = ["ClipSet", "DATASET_FORMAT", "SPLITS", "build_estimate", "save_dataset", "load_split", "load_meta"]

DATASET_FORMAT = "ddspbench.dataset/1"
SPLITS = ("train", "valid", "test")


@dataclass
class ClipSet:
    """Clips of one split.

    Attributes:
        audio: (N, S) float32, 16 kHz mono, S = T * 64.
        f0_hz: (N, T) float32, fundamental frequency per frame (0 where unvoiced).
        loudness_db: (N, T) float32, A-weighted loudness per frame, in [-80, 0].
        clip_ids: (N,) str, unique per clip.
        recording_ids: (N,) str, the source recording of each clip (splits never share one).
        instruments: (N,) str, instrument or timbre name per clip.
        f0_confidence: (N, T) float32 or None, tracker confidence (1 where f0 is known exactly).
    """

    audio: np.ndarray
    f0_hz: np.ndarray
    loudness_db: np.ndarray
    clip_ids: np.ndarray
    recording_ids: np.ndarray
    instruments: np.ndarray
    f0_confidence: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, s = self.audio.shape
        if self.f0_hz.shape != self.loudness_db.shape or self.f0_hz.shape[0] != n:
            raise ValueError(f"feature shapes {self.f0_hz.shape}/{self.loudness_db.shape} do not match audio {self.audio.shape}")
        if s != self.f0_hz.shape[1] * BLOCK_SIZE:
            raise ValueError(f"audio length {s} != frames {self.f0_hz.shape[1]} x {BLOCK_SIZE}")

    def __len__(self) -> int:
        return int(self.audio.shape[0])

    @property
    def f0_scaled(self) -> np.ndarray:
        return scale_f0(self.f0_hz)

    @property
    def loudness_scaled(self) -> np.ndarray:
        return scale_loudness(self.loudness_db).astype(np.float32)

    def subset(self, index: np.ndarray | list[int] | slice) -> ClipSet:
        """The clips at ``index`` (a new ClipSet)."""
        return ClipSet(
            audio=self.audio[index],
            f0_hz=self.f0_hz[index],
            loudness_db=self.loudness_db[index],
            clip_ids=self.clip_ids[index],
            recording_ids=self.recording_ids[index],
            instruments=self.instruments[index],
            f0_confidence=None if self.f0_confidence is None else self.f0_confidence[index],
            meta=dict(self.meta),
        )

    def crop(self, frames: int) -> ClipSet:
        """The first ``frames`` frames of every clip (smoke presets use shorter clips)."""
        return ClipSet(
            audio=self.audio[:, : frames * BLOCK_SIZE],
            f0_hz=self.f0_hz[:, :frames],
            loudness_db=self.loudness_db[:, :frames],
            clip_ids=self.clip_ids,
            recording_ids=self.recording_ids,
            instruments=self.instruments,
            f0_confidence=None if self.f0_confidence is None else self.f0_confidence[:, :frames],
            meta=dict(self.meta),
        )

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Dicts of numpy arrays with keys ``audio``, ``f0_hz``, ``loudness_db``."""
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for i in range(0, len(self), batch_size):
            idx = order[i : i + batch_size]
            yield {"audio": self.audio[idx], "f0_hz": self.f0_hz[idx], "loudness_db": self.loudness_db[idx]}

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "audio": self.audio.astype(np.float32),
            "f0_hz": self.f0_hz.astype(np.float32),
            "loudness_db": self.loudness_db.astype(np.float32),
            "clip_ids": self.clip_ids.astype(str),
            "recording_ids": self.recording_ids.astype(str),
            "instruments": self.instruments.astype(str),
        }
        if self.f0_confidence is not None:
            arrays["f0_confidence"] = self.f0_confidence.astype(np.float32)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)


_BUILD_BASE_BYTES = 300e6  # the interpreter, numpy and the builders' modules (a 3-recording build peaks at ~370 MB)
_CLIP_BYTES = 3 * 4 * (CLIP_SAMPLES + 4 * CLIP_FRAMES)  # float32 audio + 4 frame arrays, held ~3 times (entries, splits, npz)
_GENERATE_BYTES_PER_SAMPLE = 100  # a recording being made: phasors, interpolation indices, its noise spectrum


def build_estimate(clips: int, clips_per_recording: int, jobs: int, seconds_per_clip: float) -> tuple[int, float, float]:
    """``(clips, bytes, seconds)`` a generated dataset's build is expected to take: every clip held while the splits
    are assembled and written, plus ``jobs`` recordings of ``clips_per_recording`` clips being made at once."""
    nbytes = _BUILD_BASE_BYTES + clips * _CLIP_BYTES
    nbytes += jobs * clips_per_recording * CLIP_SAMPLES * _GENERATE_BYTES_PER_SAMPLE
    return clips, nbytes, clips * seconds_per_clip / jobs


def save_dataset(out_dir: str | Path, splits: dict[str, ClipSet], meta: dict[str, Any]) -> Path:
    """Write a prepared dataset directory (split files first, ``meta.json`` last, so a crash leaves no valid-looking half)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, clips in splits.items():
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}")
        clips.save(out / f"{name}.npz")
    full_meta = {
        "format": DATASET_FORMAT,
        "sample_rate": SAMPLE_RATE,
        "block_size": BLOCK_SIZE,
        **meta,
        "splits": {k: len(v) for k, v in splits.items()},
    }
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(full_meta, indent=2, sort_keys=True))
    tmp.replace(out / "meta.json")
    return out


def load_meta(data_dir: str | Path) -> dict[str, Any]:
    """The ``meta.json`` of a prepared dataset; a one-line :class:`UserError` if it is not one."""
    d = Path(data_dir)
    if not d.is_dir():
        raise UserError(f"dataset directory not found: {d}")
    mp = d / "meta.json"
    if not mp.is_file():
        raise UserError(f"{d} is not a prepared dataset (no meta.json); make one with `ddspbench data`")
    try:
        meta = json.loads(mp.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{mp}: unreadable dataset metadata ({exc})") from None
    if meta.get("format") != DATASET_FORMAT:
        raise UserError(f"{mp}: unknown dataset format {meta.get('format')!r}")
    return dict(meta)


def load_split(data_dir: str | Path, split: str) -> ClipSet:
    """Load one split of a prepared dataset."""
    meta = load_meta(data_dir)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    path = Path(data_dir) / f"{split}.npz"
    if not path.is_file():
        raise UserError(f"{path}: split file missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: corrupt split file ({exc})") from None
    return ClipSet(
        audio=arrays["audio"],
        f0_hz=arrays["f0_hz"],
        loudness_db=arrays["loudness_db"],
        clip_ids=arrays["clip_ids"],
        recording_ids=arrays["recording_ids"],
        instruments=arrays["instruments"],
        f0_confidence=arrays.get("f0_confidence"),
        meta=meta,
    )
