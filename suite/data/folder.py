"""The ``folder`` dataset: any folder of recordings (wav/flac/ogg/aiff, recursively; URMP ``AuSep_*`` stems).

Per file, as in the reference (REFERENCE §3): decode with soundfile, downmix to mono, resample to
16 kHz (soxr, as librosa does), peak-normalise, split on silence (top_db 40), cut each non-silent region into
4 s chunks (a last piece of 3 s or less is dropped, a longer one zero-padded), track f0 once per
region with a registered tracker (default ``pyin``), measure loudness per chunk, and drop chunks
whose mean f0 confidence (over their real, unpadded frames) is below ``min_confidence``.

Splits are made by recording (80/10/10 with the seed; see :func:`suite.data.splits.split_counts`
for small folders: 1 recording -> train only, 2 -> train + test, 3+ -> every split non-empty).
``split="chunk"`` splits chunks instead, as the reference did (chunks of one recording then leak
across splits); it is recorded in the metadata.

In the URMP layout (any ``AuSep_*`` file present) only the ``AuSep_*`` stems are used (the
``AuMix_*`` mixtures are polyphonic); ``instruments="violin"`` keeps one instrument.

A bad file never stops the others: it is skipped with a warning naming it and the reason (not
audio, unreadable, silent, nothing longer than 3 s, every chunk below the confidence threshold). If
nothing usable remains, a one-line :class:`UserError` says why. Per-file features are cached keyed
by the SHA-256 of the file's bytes and every setting that changes them.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import math
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from ddspbench.suite.bounds import JOBS, Bound, Choice, Flag, Names, Text
from ddspbench.suite.data import f0 as f0_module
from ddspbench.suite.data import features as features_module
from ddspbench.suite.data.build import BuildContext, SourceParts
from ddspbench.suite.data.cache import FeatureCache, code_hash, hash_key
from ddspbench.suite.data.f0 import to_frame_grid, track_f0
from ddspbench.suite.data.features import a_weighted_loudness, chunk_starts, peak_normalise, split_on_silence
from ddspbench.suite.data.splits import Clip
from ddspbench.suite.errors import UserError
from ddspbench.suite.features import BLOCK_SIZE, CLIP_FRAMES, CLIP_SAMPLES, SAMPLE_RATE
from ddspbench.suite.registry import DATASETS, F0_TRACKERS

__all__ = ["AUDIO_SUFFIXES", "URMP_INSTRUMENTS", "parts", "find_audio_files", "instrument_name", "process_file"]

log = logging.getLogger("ddspbench.data")

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
URMP_INSTRUMENTS = {
    "vn": "violin", "va": "viola", "vc": "cello", "db": "double_bass", "fl": "flute", "ob": "oboe",
    "cl": "clarinet", "sax": "saxophone", "bn": "bassoon", "tpt": "trumpet", "hn": "horn",
    "tbn": "trombone", "tba": "tuba",
}
"""URMP instrument abbreviations (``AuSep_<track>_<abbr>_<piece>_<title>``) -> names."""
_SILENT_PEAK = 1e-6
_CODE_HASH = code_hash(__file__, f0_module.__file__, features_module.__file__)  # cache key: pipeline code


def find_audio_files(root: Path) -> list[Path]:
    """Audio files under ``root`` (recursively; hidden files and folders skipped), sorted by relative path."""
    if root.is_file():
        return [root]
    files = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def instrument_name(path: Path) -> str:
    """The instrument of a file: from a URMP ``AuSep_*`` name, else the first word of the stem.

    ``AuSep_2_vn_03_Dance.wav`` -> ``violin``; ``flute_1_reference.wav`` -> ``flute``;
    ``Trumpet-take2.flac`` -> ``trumpet``; a stem without letters -> ``unknown``.
    """
    stem = path.stem
    m = re.match(r"AuSep_\d+_([a-z]+)_", stem)
    if m:
        return URMP_INSTRUMENTS.get(m.group(1), m.group(1))
    m = re.match(r"[^A-Za-z]*([A-Za-z]+)", stem)
    return m.group(1).lower() if m else "unknown"


def _resample(mono: np.ndarray, sr: int) -> np.ndarray:
    """Resample to 16 kHz: soxr (librosa's resampler, band-limited 'HQ') or scipy's polyphase filter."""
    try:
        import soxr
    except ImportError:  # pragma: no cover - soxr comes with librosa
        from scipy.signal import resample_poly

        g = math.gcd(sr, SAMPLE_RATE)
        return resample_poly(mono, SAMPLE_RATE // g, sr // g).astype(np.float32)
    return np.asarray(soxr.resample(mono, sr, SAMPLE_RATE, quality="HQ"), dtype=np.float32)


def _parse_names(names: str | list[str] | None) -> list[str]:
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else [str(n) for n in names]
    return [n.strip().lower() for n in items if n.strip()]


def _decode(data: bytes) -> tuple[np.ndarray, int, int]:
    """(mono float32 at 16 kHz, original sample rate, channels); raises ValueError with a reason."""
    import soundfile as sf

    try:
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile reports every bad file as some error
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        first = re.sub(r"Error opening <[^>]*>: ", "", first)  # the in-memory buffer's repr says nothing
        raise ValueError(f"not a readable audio file ({first})") from None
    if audio.shape[0] == 0:
        raise ValueError("holds no samples")
    if not np.all(np.isfinite(audio)):
        raise ValueError("holds NaN or infinite samples")
    channels = int(audio.shape[1])
    mono = audio.mean(axis=1) if channels > 1 else audio[:, 0]
    if sr != SAMPLE_RATE:
        mono = _resample(mono, int(sr))
    return mono.astype(np.float32), int(sr), channels


def _features(mono: np.ndarray, settings: dict[str, Any]) -> dict[str, np.ndarray]:
    """Chunks of a decoded file with f0, confidence, loudness and the number of real frames each."""
    audio = peak_normalise(mono)
    chunks, f0s, confs, real = [], [], [], []
    hop = BLOCK_SIZE * settings["f0_stride"]
    for start, end in split_on_silence(audio, top_db=settings["top_db"]):
        offsets = chunk_starts(end - start)
        if not offsets:
            continue
        used_end = min(end, start + offsets[-1] + CLIP_SAMPLES)
        region = audio[start:used_end]
        frames = math.ceil(region.shape[0] / BLOCK_SIZE)
        f0, conf = track_f0(settings["f0"], region, SAMPLE_RATE, hop)
        if settings["f0_stride"] > 1:
            f0, conf = to_frame_grid(f0.astype(np.float64), conf.astype(np.float64), f0 > 0, settings["f0_stride"], frames)
        f0 = np.pad(f0[:frames], (0, max(0, offsets[-1] // BLOCK_SIZE + CLIP_FRAMES - frames)))
        conf = np.pad(conf[:frames], (0, max(0, offsets[-1] // BLOCK_SIZE + CLIP_FRAMES - frames)))
        for off in offsets:
            piece = region[off : off + CLIP_SAMPLES]
            clip = np.zeros(CLIP_SAMPLES, np.float32)
            clip[: piece.shape[0]] = piece
            fr = off // BLOCK_SIZE
            n_real = math.ceil(piece.shape[0] / BLOCK_SIZE)
            f = f0[fr : fr + CLIP_FRAMES].copy()
            c = conf[fr : fr + CLIP_FRAMES].copy()
            f[n_real:] = 0.0
            c[n_real:] = 0.0
            chunks.append(clip)
            f0s.append(f)
            confs.append(c)
            real.append(n_real)
    if not chunks:
        return {"audio": np.zeros((0, CLIP_SAMPLES), np.float32), "f0_hz": np.zeros((0, CLIP_FRAMES), np.float32),
                "f0_confidence": np.zeros((0, CLIP_FRAMES), np.float32),
                "loudness_db": np.zeros((0, CLIP_FRAMES), np.float32), "real_frames": np.zeros(0, np.int64)}
    stack = np.stack(chunks)
    return {
        "audio": stack,
        "f0_hz": np.stack(f0s).astype(np.float32),
        "f0_confidence": np.stack(confs).astype(np.float32),
        "loudness_db": a_weighted_loudness(stack),
        "real_frames": np.array(real, np.int64),
    }


def process_file(path: Path, settings: dict[str, Any], cache_root: str | None, use_cache: bool) -> dict[str, Any]:
    """Decode, check and featurise one file (runs in a worker process).

    Returns:
        ``{"features": {...}, "cache_hit": bool, "seconds": float, "sample_rate": int, "channels": int}``
        or ``{"skip": reason}``.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {"skip": f"unreadable ({exc.strerror or exc})"}
    if not data:
        return {"skip": "empty file (0 bytes)"}
    try:
        mono, sr, channels = _decode(data)
    except ValueError as exc:
        return {"skip": str(exc)}
    seconds = mono.shape[0] / SAMPLE_RATE
    if float(np.max(np.abs(mono))) < _SILENT_PEAK:
        return {"skip": "silent (all samples are zero)"}
    if mono.shape[0] <= 3 * SAMPLE_RATE:
        return {"skip": f"too short ({seconds:.2f} s; clips need more than 3 s of sound)"}
    cache = FeatureCache(cache_root, "folder", enabled=use_cache)
    key = hash_key("folder", _CODE_HASH, data, settings)
    hits_before = cache.hits
    try:
        feats = cache.get_or_compute(key, lambda: _features(mono, settings))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
        return {"skip": f"feature extraction failed ({type(exc).__name__}: {str(exc)[:100]})"}
    if feats["audio"].shape[0] == 0:
        return {"skip": f"no sound longer than 3 s between silences (top_db {settings['top_db']}; file is {seconds:.2f} s)"}
    return {"features": feats, "cache_hit": cache.hits > hits_before, "seconds": seconds, "sample_rate": sr,
            "channels": channels}


def _progress(i: int, n: int, path: Path, res: dict[str, Any]) -> None:
    state = f"skipped ({res['skip']})" if "skip" in res else (
        f"{res['features']['audio'].shape[0]} chunk(s){' (cached)' if res['cache_hit'] else ''}"
    )
    log.info("[%d/%d] %s: %s", i, n, path.name, state)


def _run_all(
    files: list[Path], settings: dict[str, Any], cache_root: str | None, use_cache: bool, jobs: int
) -> list[dict[str, Any]]:
    """``process_file`` over ``files`` (in ``jobs`` processes), results in the order of ``files``."""
    n = len(files)
    if jobs <= 1 or n <= 1:
        out = []
        for i, f in enumerate(files, 1):
            out.append(process_file(f, settings, cache_root, use_cache))
            _progress(i, n, f, out[-1])
        return out
    # Compile the tracker's numba code once here: librosa's pyin kernels are cached on disk, and numba's cache
    # is not safe against several processes writing it at once (a corrupt entry later crashed a process).
    t = np.arange(SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
    track_f0(settings["f0"], (0.5 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32), SAMPLE_RATE,
             BLOCK_SIZE * settings["f0_stride"])
    with ProcessPoolExecutor(max_workers=min(jobs, n)) as pool:
        futures = {pool.submit(process_file, f, settings, cache_root, use_cache): f for f in files}
        for i, fut in enumerate(as_completed(futures), 1):
            _progress(i, n, futures[fut], fut.result())
        return [fut.result() for fut in futures]


@DATASETS.register(
    "folder",
    description="a folder of recordings (wav/flac/ogg, recursive; URMP AuSep_* stems): silence split, 4 s chunks, f0 tracked",
    needs_path=True,
    path_hint="a folder of wav/flac/ogg recordings",
    options={"f0": Text(), "min_confidence": Bound(float, 0.0, 1.0), "f0_stride": Bound(int, 1, 100),
             "top_db": Bound(float, 0.0, 200.0, low_open=True), "split": Choice(("recording", "chunk")),
             "instrument": Text(), "instruments": Names(), "cache_dir": Text(), "use_cache": Flag(), "jobs": JOBS},
)
def parts(ctx: BuildContext, *, f0: str = "pyin", min_confidence: float | None = None, f0_stride: int = 1,
          top_db: float = 40.0, split: str = "recording", instrument: str | None = None,
          instruments: str | list[str] | None = None) -> SourceParts:
    """The folder source's part of :func:`suite.data.build.build_dataset`: a folder of recordings, chunked and tracked.

    Args:
        ctx: ``path`` (the folder, or a single audio file), seed of the split, feature cache, worker processes
            (``jobs``: files are processed in parallel).
        f0: registered f0 tracker (``pyin`` default, ``yin`` fast, ``crepe`` if torchcrepe is installed).
        min_confidence: chunks whose mean f0 confidence is below this are dropped. Default: the
            tracker's own (pyin 0.5 voicing probability, yin 0.6, crepe 0.80 as in the reference).
        f0_stride: track f0 every ``64 * f0_stride`` samples and interpolate to the 64-sample grid
            (pyin's cost falls about linearly; 1 = exact).
        top_db: silence threshold below the file's loudest frame (dB).
        split: ``"recording"`` (default) or ``"chunk"`` (for tiny folders; chunks leak across splits).
        instrument: one instrument name for every file (default: from each file name).
        instruments: keep only files of these instruments (comma-separated), e.g. ``violin`` for a
            one-instrument model from URMP.
    """
    assert ctx.path is not None  # build_dataset: the folder source needs a path
    root, jobs, cache = ctx.path, ctx.jobs, ctx.cache
    if not root.exists():
        raise UserError(f"folder not found: {root}")
    if root.is_file() and root.suffix.lower() not in AUDIO_SUFFIXES:
        raise UserError(f"{root} is not a folder or an audio file ({', '.join(AUDIO_SUFFIXES)})")
    entry = F0_TRACKERS.entry(f0)
    threshold = float(entry.meta.get("min_confidence", 0.5) if min_confidence is None else min_confidence)
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"min_confidence must be in [0, 1], got {threshold}")
    if int(f0_stride) < 1:
        raise UserError(f"f0_stride must be >= 1 (got {f0_stride})")
    needs = entry.meta.get("requires")
    if needs and importlib.util.find_spec(str(needs)) is None:  # fail once, up front, not once per file
        raise UserError(f"the {f0} f0 tracker needs {needs} (pip install {needs}); or use --f0 pyin")
    files = find_audio_files(root)
    if not files:
        raise UserError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")
    base = root if root.is_dir() else root.parent
    skipped: list[dict[str, str]] = []
    if any(f.name.startswith("AuSep_") for f in files):  # URMP: only the separated mono stems
        mixes = [f for f in files if not f.name.startswith("AuSep_")]
        for f in mixes:
            skipped.append({"file": f.relative_to(base).as_posix(), "reason": "URMP layout: only AuSep_* stems are used"})
        if mixes:
            log.info("URMP layout: %d non-AuSep file(s) (mixtures) ignored", len(mixes))
        files = [f for f in files if f.name.startswith("AuSep_")]
    wanted = _parse_names(instruments)
    if wanted:
        found = sorted({instrument or instrument_name(f) for f in files})
        files = [f for f in files if (instrument or instrument_name(f)) in wanted]
        if not files:
            raise UserError(f"no files of instrument(s) {', '.join(wanted)} under {root}; found: {', '.join(found)}")
    settings = {"f0": f0, "f0_stride": int(f0_stride), "top_db": float(top_db), "sample_rate": SAMPLE_RATE}
    results = _run_all(files, settings, str(cache.root), cache.enabled, jobs)

    clips: list[Clip] = []
    dropped = 0
    notes: list[str] = []
    for file, res in zip(files, results):
        rel = file.relative_to(base).as_posix()
        if "skip" in res:
            skipped.append({"file": rel, "reason": res["skip"]})
            log.warning("skipping %s: %s", rel, res["skip"])
            continue
        cache.hits += int(res["cache_hit"])
        cache.misses += int(not res["cache_hit"])
        if res["channels"] > 1 or res["sample_rate"] != SAMPLE_RATE:
            notes.append(f"{rel}: {res['channels']} ch at {res['sample_rate']} Hz -> mono 16 kHz")
        feats = res["features"]
        inst = instrument or instrument_name(file)
        kept = 0
        means = []
        for k in range(feats["audio"].shape[0]):
            n_real = int(feats["real_frames"][k])
            mean_conf = float(feats["f0_confidence"][k, :n_real].mean())
            means.append(mean_conf)
            if mean_conf < threshold:
                dropped += 1
                continue
            kept += 1
            clips.append(Clip(feats["audio"][k], feats["f0_hz"][k], feats["loudness_db"][k],
                              feats["f0_confidence"][k], f"{rel}#{k}", rel, inst))
        if kept == 0:
            reason = (f"all {len(means)} chunk(s) below the f0 confidence threshold {threshold:.2f} "
                      f"(mean {max(means):.2f}; lower it with --set min_confidence=...)")
            skipped.append({"file": rel, "reason": reason})
            log.warning("skipping %s: %s", rel, reason)
    if not clips:
        detail = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:3])
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        raise UserError(f"no usable audio in {root}: {len(skipped)} file(s) skipped — {detail}{more}")
    return SourceParts(
        clips, {**settings, "min_confidence": threshold, "split": split, "instrument": instrument, "instruments": wanted},
        sorted({c.instrument for c in clips}), f"{f0} tracker (stride {settings['f0_stride']}, min confidence {threshold:.2f})",
        split=split, skipped=skipped,
        extra={"source": str(root.resolve()), "split_unit": split, "files": len(files),
               "chunks_dropped_low_confidence": dropped, "converted": notes})
