"""Train/valid/test splits by recording, and assembling clips into :class:`ClipSet` splits.

Every builder produces a list of :class:`Clip` (one 4 s clip with its features and the recording it
came from) and hands it to :func:`assemble`, which splits by recording, so that chunks of one
recording never land in two splits (the reference split by chunk: a leak).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddspbench.suite.data.store import SPLITS, ClipSet
from ddspbench.suite.features import BLOCK_SIZE, CLIP_FRAMES

__all__ = ["Clip", "split_counts", "split_recordings", "assemble", "SPLIT_FRACTIONS"]

log = logging.getLogger("ddspbench.data")

SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
"""Share of recordings in train, valid and test."""


@dataclass
class Clip:
    """One clip and its per-frame features."""

    audio: np.ndarray  # (S,) float32
    f0_hz: np.ndarray  # (T,) float32
    loudness_db: np.ndarray  # (T,) float32
    f0_confidence: np.ndarray  # (T,) float32
    clip_id: str
    recording_id: str
    instrument: str


def split_counts(n: int, fractions: Sequence[float] = SPLIT_FRACTIONS) -> tuple[int, int, int]:
    """How many of ``n`` recordings go to (train, valid, test).

    With 3 or more, every split gets at least one (valid and test take ``round(n * share)``, at
    least 1, and train keeps the rest, at least 1). With 2: one train, one test (no valid). With 1:
    train only. ``4 -> (2, 1, 1)``, ``10 -> (8, 1, 1)``, ``30 -> (24, 3, 3)``.
    """
    if n <= 0:
        return 0, 0, 0
    if n == 1:
        return 1, 0, 0
    if n == 2:
        return 1, 0, 1
    n_valid = max(1, round(n * fractions[1]))
    n_test = max(1, round(n * fractions[2]))
    while n - n_valid - n_test < 1:
        if n_valid >= n_test:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def split_recordings(
    recordings: Sequence[str], instruments: Sequence[str], seed: int = 0, *, stratify: bool = True
) -> dict[str, str]:
    """Recording id -> split name, shuffled with ``seed``.

    With ``stratify`` and at least 3 recordings of every instrument, each instrument is split on
    its own (every split gets every instrument); otherwise all recordings are split together.
    """
    rng = np.random.default_rng(seed)
    by_inst: dict[str, list[str]] = {}
    for rec, inst in zip(recordings, instruments):
        lst = by_inst.setdefault(inst, [])
        if rec not in lst:
            lst.append(rec)
    groups: list[list[str]]
    if stratify and by_inst and all(len(v) >= 3 for v in by_inst.values()):
        groups = [sorted(by_inst[k]) for k in sorted(by_inst)]
    else:
        groups = [sorted({r for v in by_inst.values() for r in v})]
    out: dict[str, str] = {}
    for group in groups:
        order = [group[i] for i in rng.permutation(len(group))]
        n_train, n_valid, _ = split_counts(len(order))
        for i, rec in enumerate(order):
            out[rec] = "train" if i < n_train else "valid" if i < n_train + n_valid else "test"
    return out


def _clipset(clips: list[Clip], frames: int) -> ClipSet:
    n = len(clips)
    if n == 0:
        return ClipSet(
            audio=np.zeros((0, frames * BLOCK_SIZE), np.float32),
            f0_hz=np.zeros((0, frames), np.float32),
            loudness_db=np.zeros((0, frames), np.float32),
            clip_ids=np.zeros(0, dtype=str),
            recording_ids=np.zeros(0, dtype=str),
            instruments=np.zeros(0, dtype=str),
            f0_confidence=np.zeros((0, frames), np.float32),
        )
    return ClipSet(
        audio=np.stack([c.audio for c in clips]).astype(np.float32),
        f0_hz=np.stack([c.f0_hz for c in clips]).astype(np.float32),
        loudness_db=np.stack([c.loudness_db for c in clips]).astype(np.float32),
        clip_ids=np.array([c.clip_id for c in clips]),
        recording_ids=np.array([c.recording_id for c in clips]),
        instruments=np.array([c.instrument for c in clips]),
        f0_confidence=np.stack([c.f0_confidence for c in clips]).astype(np.float32),
    )


def assemble(
    clips: list[Clip], seed: int = 0, *, split: str = "recording", frames: int = CLIP_FRAMES
) -> dict[str, ClipSet]:
    """Split clips into train/valid/test.

    Args:
        clips: every clip of the dataset, in a deterministic order.
        seed: shuffling seed.
        split: ``"recording"`` (default: all clips of a recording in one split) or ``"chunk"``
            (each clip on its own, as the reference did; chunks of one recording then leak across
            splits — only for folders with too few recordings, and recorded in the metadata).
        frames: frames per clip (for empty splits).
    """
    if split not in ("recording", "chunk"):
        from ddspbench.suite.errors import UserError

        raise UserError(f"unknown split mode {split!r}; known: recording, chunk")
    unit = [c.recording_id if split == "recording" else c.clip_id for c in clips]
    assignment = split_recordings(unit, [c.instrument for c in clips], seed)
    by_split: dict[str, list[Clip]] = {s: [] for s in SPLITS}
    for c, u in zip(clips, unit):
        by_split[assignment[u]].append(c)
    for name in ("valid", "test"):
        if not by_split[name] and clips:
            log.warning("the %s split is empty (%d %ss in all)", name, len(set(unit)), split)
    return {s: _clipset(by_split[s], frames) for s in SPLITS}
