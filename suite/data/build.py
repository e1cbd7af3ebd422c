"""The one dataset builder: every source makes its part, :func:`build_dataset` does the rest.

A dataset source (``synthetic``, ``soundfont``, ``folder``) registers in ``DATASETS`` a *parts* function
``parts(ctx, **its options) -> SourceParts``: it checks its own options, produces or reads its recordings (cached in
``ctx.cache``, in ``ctx.jobs`` workers) and turns them into :class:`suite.data.splits.Clip` s, with what its
``meta.json`` should say about it. :func:`build_dataset` does everything else the same way for all of them: the
options every source takes (``path``, ``seed``, ``cache_dir``, ``use_cache``, ``jobs``: :class:`BuildContext`), the
train/valid/test split, the common ``meta.json`` entries, the log line, and the atomic write
(:func:`suite.data.store.save_dataset`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddspbench.suite.data.cache import FeatureCache
from ddspbench.suite.data.splits import Clip, assemble
from ddspbench.suite.data.store import build_estimate, save_dataset
from ddspbench.suite.errors import UserError
from ddspbench.suite.features import CLIP_FRAMES, CLIP_SAMPLES, SAMPLE_RATE

__all__ = ["BuildContext", "COMMON_OPTIONS", "SourceParts", "build_dataset", "recording_clips", "check_counts",
           "parse_names", "per_recording_estimate"]

COMMON_OPTIONS: dict[str, Any] = {"cache_dir": None, "use_cache": True, "jobs": 1}
"""The options every source takes through :func:`build_dataset` (with their defaults), besides ``path`` and ``seed``."""


@dataclass
class BuildContext:
    """What the builder gives every source's parts function.

    Attributes:
        path: the input folder or file (sources that need one; None for generated ones).
        seed: seed of generation and of the split.
        cache: the source's feature cache (``<cache_dir>/<source name>``; disabled with ``use_cache=False``).
        jobs: workers the source may run at once.
    """

    path: Path | None
    seed: int
    cache: FeatureCache
    jobs: int

log = logging.getLogger(__name__)


@dataclass
class SourceParts:
    """What a source contributes: its clips and what ``meta.json`` says about it.

    Attributes:
        clips: every clip, each with its recording and instrument.
        settings: the options that determine the data (``meta.json`` ``settings``).
        instruments: instrument (or timbre) names, in the source's order.
        f0_source: where the f0 curves come from, in words.
        split: ``recording`` (no recording in two splits) or ``chunk``.
        skipped: ``{"file", "reason"}`` per input the source passed over.
        extra: further source-specific ``meta.json`` entries.
    """

    clips: list[Clip]
    settings: dict[str, Any]
    instruments: list[str]
    f0_source: str
    split: str = "recording"
    skipped: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def build_dataset(name: str, out_dir: str | Path, *, path: str | Path | None = None, seed: int = 0,
                  cache_dir: str | Path | None = None, use_cache: bool = True, jobs: int = 1, **options: Any) -> Path:
    """Build the registered source ``name`` into ``out_dir``: its parts (``options`` are its own), then the split and
    the common ``meta.json``; returns ``out_dir``."""
    from ddspbench.suite.registry import DATASETS

    entry = DATASETS.entry(name)
    if path is None and entry.meta.get("needs_path"):
        raise UserError(f"the {name} dataset needs --path DIR ({entry.meta.get('path_hint', 'its input')})")
    if path is not None and not entry.meta.get("needs_path"):
        raise UserError(f"the {name} dataset is generated; it takes no --path{entry.meta.get('path_hint', '')}")
    if int(jobs) < 1:
        raise UserError(f"jobs must be >= 1 (got {jobs})")
    cache = FeatureCache(cache_dir, name, enabled=use_cache)
    ctx = BuildContext(None if path is None else Path(path).expanduser(), int(seed), cache, int(jobs))
    parts: SourceParts = entry.obj(ctx, **options)
    clips = parts.clips
    splits = assemble(clips, ctx.seed, split=parts.split)
    meta: dict[str, Any] = {
        "name": name,
        "seed": ctx.seed,
        "settings": parts.settings,
        "instruments": parts.instruments,
        "clips": len(clips),
        "seconds": len(clips) * CLIP_SAMPLES / SAMPLE_RATE,
        "recordings": {s: sorted(set(splits[s].recording_ids.tolist())) for s in splits},
        "f0_source": parts.f0_source,
        "cache": cache.summary(),
        "skipped": parts.skipped,
        **parts.extra,
    }
    log.info("%s: %d clips; cache %d hits, %d misses", name, len(clips), cache.hits, cache.misses)
    return save_dataset(out_dir, splits, meta)


def recording_clips(rec_id: str, instrument: str, entry: Mapping[str, np.ndarray], n_clips: int,
                    confidence: str) -> list[Clip]:
    """The ``n_clips`` consecutive 4 s clips of one generated recording (its cache ``entry``: ``audio``, ``f0_hz``,
    ``loudness_db`` per clip and the ``confidence`` curve), named ``<rec_id>-c<k>``."""
    audio = entry["audio"].reshape(n_clips, CLIP_SAMPLES)
    f0 = entry["f0_hz"].reshape(n_clips, CLIP_FRAMES)
    conf = entry[confidence].reshape(n_clips, CLIP_FRAMES)
    return [Clip(audio[c], f0[c], entry["loudness_db"][c], conf[c], f"{rec_id}-c{c}", rec_id, instrument)
            for c in range(n_clips)]


def check_counts(recordings: int, clips_per_recording: int) -> tuple[int, int]:
    """The counts of a generated source as ints, or a one-line :class:`UserError` for one below 1."""
    if int(recordings) < 1 or int(clips_per_recording) < 1:
        raise UserError(f"recordings and clips_per_recording must be >= 1 (got {recordings}, {clips_per_recording})")
    return int(recordings), int(clips_per_recording)


def parse_names(value: str | Sequence[str] | None, known: Sequence[str], what: str, default: Sequence[str]) -> list[str]:
    """Comma-separated names (or a list) checked against ``known``; ``default`` for None; a one-line
    :class:`UserError` naming the unknown ones (``what``: ``synthetic timbre``, ``soundfont instrument``)."""
    if value is None:
        return list(default)
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n) for n in value]
    names = [n for n in names if n]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise UserError(f"unknown {what}(s) {', '.join(bad) or '(none)'}; known: {', '.join(known)}")
    return names


def per_recording_estimate(names_option: str, parse: Callable[[Any], list[str]],
                           seconds_per_clip: float) -> Callable[..., tuple[int, float, float]]:
    """The ``estimate`` of a generated source: ``recordings`` per name (option ``names_option``) of
    ``clips_per_recording`` clips each, ``seconds_per_clip`` of work each (:func:`suite.data.store.build_estimate`)."""

    def estimate(*, recordings: int, clips_per_recording: int, jobs: int, **options: Any) -> tuple[int, float, float]:
        """``(clips, bytes, seconds)`` of a build with these options (see :func:`suite.data.store.build_estimate`)."""
        clips = recordings * len(parse(options.get(names_option))) * clips_per_recording
        return build_estimate(clips, clips_per_recording, jobs, seconds_per_clip)

    return estimate
