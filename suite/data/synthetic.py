"""The ``synthetic`` dataset: generated monophonic phrases whose f0 and loudness are known.

Each recording is one phrase of ``clips_per_recording`` x 4 s: scale-based melodies with rests,
detached and legato notes (legato notes glide and are not re-attacked), attack/decay/release
envelopes, delayed vibrato and phrase-level dynamics. The sound is additive: harmonics up to 7.5 kHz
whose spectral slope depends on the momentary level (louder is brighter), a timbre-specific
resonance curve, plus filtered breath/bow noise that follows the envelope and bursts at attacks.

The ground truth is exact: ``f0_hz[i]`` is the instantaneous frequency the oscillator plays at sample
``64 i`` (0 where the level is below -60 dB of full scale, i.e. in rests), and ``loudness_db`` is
measured from the generated clip with the same function as every other dataset. Everything is drawn
from ``numpy.random.default_rng((seed, timbre, recording))``, so the data are deterministic by seed,
and adding recordings does not change the existing ones.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ddspbench.suite.bounds import JOBS, Bound, Flag, Names, Text
from ddspbench.suite.data import build as common
from ddspbench.suite.data import features as features_module
from ddspbench.suite.data.build import BuildContext, SourceParts
from ddspbench.suite.data.cache import FeatureCache, code_hash, hash_key
from ddspbench.suite.data.features import a_weighted_loudness
from ddspbench.suite.data.splits import Clip
from ddspbench.suite.features import BLOCK_SIZE, CLIP_FRAMES, CLIP_SAMPLES, FRAME_RATE, SAMPLE_RATE
from ddspbench.suite.registry import DATASETS

__all__ = ["Timbre", "TIMBRES", "parts", "generate_recording"]

log = logging.getLogger("ddspbench.data")

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_MAX_HARMONIC_HZ = 7500.0
_MAX_HARMONICS = 48
_VOICED_LEVEL = 1e-3  # envelope level below which a frame counts as a rest (f0 = 0)
_PEAK = 0.9
_MAX_RMS = 0.3
_CODE_HASH = code_hash(__file__, features_module.__file__)  # cache key: generator and loudness code


@dataclass(frozen=True)
class Timbre:
    """How one synthetic instrument sounds."""

    name: str
    midi_low: int  # lowest and highest note of its melodies
    midi_high: int
    attack_s: float
    decay_s: float
    release_s: float
    overshoot: float  # attack peak above the sustain level (fraction)
    slope_quiet: float  # harmonic amplitude ~ k ** -slope, at the quietest and loudest level
    slope_loud: float
    even_gain: float  # gain of even harmonics (a flute/clarinet-like hollowness below 1)
    resonances_hz: tuple[float, ...]  # fixed body resonances (log-Gaussian bumps on the spectrum)
    resonance_gain: float
    noise_level: float  # noise amplitude relative to the harmonic envelope
    noise_band_hz: tuple[float, float]
    attack_noise: float  # extra noise at note onsets (multiplier, decays in 60 ms)
    vibrato_cents: float
    vibrato_hz: float
    scoop_cents: float  # pitch approaches each detached note from below by this much
    legato_prob: float


TIMBRES: dict[str, Timbre] = {
    t.name: t
    for t in (
        Timbre("flute-like", 60, 88, 0.07, 0.15, 0.10, 0.15, 3.2, 1.7, 0.55, (900.0, 2600.0), 0.3,
               0.06, (1200.0, 6000.0), 2.0, 18.0, 5.0, 0.0, 0.45),
        Timbre("string-like", 55, 84, 0.12, 0.20, 0.18, 0.05, 1.8, 0.9, 1.0, (280.0, 520.0, 2400.0, 3600.0), 0.8,
               0.025, (2000.0, 7000.0), 1.0, 30.0, 6.0, 0.0, 0.35),
        Timbre("brass-like", 52, 80, 0.04, 0.10, 0.08, 0.25, 4.0, 0.8, 0.9, (1200.0,), 0.5,
               0.012, (500.0, 4000.0), 3.0, 10.0, 5.5, 45.0, 0.25),
    )
}
"""The synthetic timbres by name."""


def _notes(rng: np.random.Generator, timbre: Timbre, frames: int) -> list[dict[str, Any]]:
    """A random but musical note list: onset/off frames, pitch, velocity, legato flag."""
    root = int(rng.integers(0, 12))
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    pool = [m for m in range(timbre.midi_low, timbre.midi_high + 1) if (m - root) % 12 in scale]
    cur = int(rng.integers(len(pool) // 4, 3 * len(pool) // 4 + 1))
    beat = rng.uniform(0.3, 0.6) * FRAME_RATE
    dyn_phase, dyn_rate = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.35)  # slow crescendi/diminuendi
    notes: list[dict[str, Any]] = []
    t = int(rng.uniform(0.05, 0.3) * FRAME_RATE)
    legato = False
    while t < frames - 5:
        dur = max(8, int(beat * rng.choice([0.5, 1.0, 1.0, 1.5, 2.0, 3.0])))
        cur = int(np.clip(cur + rng.choice([-4, -3, -2, -1, -1, 1, 1, 2, 3, 4, 0]), 0, len(pool) - 1))
        dyn = 0.6 + 0.35 * np.sin(dyn_phase + 2 * np.pi * dyn_rate * t / FRAME_RATE)
        vel = float(np.clip(dyn + rng.normal(0.0, 0.08), 0.2, 1.0))
        notes.append({"on": t, "off": t + dur, "midi": pool[cur], "vel": vel, "legato": legato})
        t += dur
        r = rng.random()
        if r < timbre.legato_prob:
            legato = True  # the next note starts right at this note-off, without a new attack
        elif r < timbre.legato_prob + 0.2:
            legato = False
            t += int(rng.uniform(0.15, 0.8) * FRAME_RATE)  # a rest
        else:
            legato = False
            t += int(rng.uniform(0.02, 0.08) * FRAME_RATE)  # detached
    return notes


def _controls(rng: np.random.Generator, timbre: Timbre, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (f0 played (Hz, never 0), envelope (0..~1.25), attack-noise multiplier)."""
    pitch = np.zeros(frames)
    env = np.zeros(frames)
    burst = np.ones(frames)
    notes = _notes(rng, timbre, frames)
    for i, n in enumerate(notes):
        a = n["on"]
        end = notes[i + 1]["on"] if i + 1 < len(notes) else frames
        end = min(end, frames)
        if end <= a:
            continue
        u = (np.arange(a, end) - a) / FRAME_RATE  # seconds since onset
        hz = 440.0 * 2.0 ** ((n["midi"] - 69) / 12.0)
        cents = np.zeros_like(u)
        start_level = env[a - 1] if (n["legato"] and a > 0) else 0.0
        if n["legato"] and i > 0:
            prev_hz = 440.0 * 2.0 ** ((notes[i - 1]["midi"] - 69) / 12.0)
            cents += 1200.0 * np.log2(prev_hz / hz) * np.exp(-u / 0.03)  # glide
        else:
            cents -= timbre.scoop_cents * np.exp(-u / 0.04)
        depth = timbre.vibrato_cents * rng.uniform(0.6, 1.2)
        rate = timbre.vibrato_hz * rng.uniform(0.9, 1.1)
        ramp = np.clip((u - 0.2) / 0.3, 0.0, 1.0)
        cents += depth * ramp * np.sin(2 * np.pi * rate * u + rng.uniform(0, 2 * np.pi))
        pitch[a:end] = hz * 2.0 ** (cents / 1200.0)
        # envelope: attack to peak, decay to sustain (with a gentle swell), release after note-off
        sus = n["vel"] * (1.0 + rng.uniform(-0.15, 0.15) * u / max(u[-1], 1e-3))
        peak = n["vel"] * (1.0 + (0.0 if n["legato"] else timbre.overshoot))
        att = np.clip(u / timbre.attack_s, 0.0, 1.0)
        level = np.where(
            u < timbre.attack_s,
            start_level + (peak - start_level) * att,
            sus + (peak - sus) * np.exp(-(u - timbre.attack_s) / timbre.decay_s),
        )
        off = n["off"] - a
        if off < len(u):
            level[off:] = level[off] * np.exp(-(u[off:] - u[off]) / timbre.release_s)
        env[a:end] = level
        if not n["legato"]:
            burst[a:end] += timbre.attack_noise * np.exp(-u / 0.06)
    first = notes[0]["on"] if notes else frames
    pitch[:first] = pitch[first] if first < frames else 440.0
    return pitch, env, burst


def _spectrum(timbre: Timbre, pitch: np.ndarray, env: np.ndarray, n_harm: int) -> np.ndarray:
    """(T, K) harmonic amplitudes at frame rate: louder frames have a flatter (brighter) slope."""
    k = np.arange(1, n_harm + 1, dtype=np.float64)[None, :]
    freq = pitch[:, None] * k
    norm_level = np.clip(env / 1.0, 0.0, 1.0)[:, None]
    slope = timbre.slope_quiet + (timbre.slope_loud - timbre.slope_quiet) * norm_level
    amp = k ** (-slope)
    amp = amp * np.where(k % 2 == 0, timbre.even_gain, 1.0)
    logf = np.log2(np.maximum(freq, 1.0))
    body = sum(np.exp(-0.5 * ((logf - np.log2(r)) / 0.35) ** 2) for r in timbre.resonances_hz)
    amp = amp * (1.0 + timbre.resonance_gain * body)
    amp = np.where(freq < _MAX_HARMONIC_HZ, amp, 0.0)
    amp /= np.sqrt(np.sum(amp**2, axis=1, keepdims=True)) + 1e-12  # unit power: env sets the level
    return amp * env[:, None]


def _upsample(x: np.ndarray, n_samples: int) -> np.ndarray:
    """Frame-rate values (frame i at sample 64 i) -> sample rate, linear; (T,) or (T, K)."""
    pos = np.arange(n_samples, dtype=np.float64) / BLOCK_SIZE
    lo = np.minimum(pos.astype(np.int64), x.shape[0] - 1)
    hi = np.minimum(lo + 1, x.shape[0] - 1)
    w = pos - lo
    if x.ndim == 2:
        w = w[:, None]
    return (1.0 - w) * x[lo] + w * x[hi]


def generate_recording(
    timbre: Timbre, rng: np.random.Generator, n_clips: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One phrase of ``n_clips`` x 4 s.

    Returns:
        audio (n_clips * 64000,) float32 with peak <= 0.9, f0_hz (n_clips * 1000,) float32 (0 in
        rests), voiced (same shape) float32 in {0, 1}.
    """
    frames = n_clips * CLIP_FRAMES
    n = frames * BLOCK_SIZE
    pitch, env, burst = _controls(rng, timbre, frames)
    n_harm = int(min(_MAX_HARMONICS, _MAX_HARMONIC_HZ // max(pitch.min(), 20.0) + 1))
    amps = _spectrum(timbre, pitch, env, n_harm)
    f0_s = _upsample(pitch, n)
    phase = np.cumsum(2.0 * np.pi * f0_s / SAMPLE_RATE) + rng.uniform(0, 2 * np.pi)
    phase = np.mod(phase, 2.0 * np.pi)
    # sin(k phase) by rotating a unit phasor k times (complex multiply instead of k sines per sample)
    rot = np.exp(1j * phase).astype(np.complex64)
    z = np.ones(n, dtype=np.complex64)
    pos = np.arange(n, dtype=np.float64) / BLOCK_SIZE
    lo = np.minimum(pos.astype(np.int64), frames - 1)
    hi = np.minimum(lo + 1, frames - 1)
    w = (pos - lo).astype(np.float32)
    audio = np.zeros(n, dtype=np.float32)
    amps32 = amps.astype(np.float32)
    for k in range(n_harm):
        z *= rot
        a = amps32[:, k]
        if not np.any(a):
            continue
        audio += (a[lo] + w * (a[hi] - a[lo])) * z.imag
    audio = audio.astype(np.float64)
    # band-limited noise: white noise shaped in the frequency domain by a smooth band-pass
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    lo_hz, hi_hz = timbre.noise_band_hz
    band = 1.0 / np.sqrt((1.0 + (lo_hz / np.maximum(freqs, 1.0)) ** 4) * (1.0 + (freqs / hi_hz) ** 4))
    noise = np.fft.irfft(spec * band, n)
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    audio += timbre.noise_level * _upsample(env * burst, n) * noise
    # level: peak 0.9, unless the loudest 62.5 ms would then exceed an RMS of 0.3 (about -1.5 dB of
    # A-weighted loudness for a pure tone at 2.5 kHz), so near-sine timbres do not hit the 0 dB clip
    block_rms = np.sqrt(np.mean(audio.reshape(-1, 1000) ** 2, axis=1)).max()
    audio *= min(_PEAK / (np.max(np.abs(audio)) + 1e-12), _MAX_RMS / (block_rms + 1e-12))
    voiced = env >= _VOICED_LEVEL
    f0 = np.where(voiced, pitch, 0.0)
    return audio.astype(np.float32), f0.astype(np.float32), voiced.astype(np.float32)


def _recording_entry(
    name: str, seed: int, index: int, n_clips: int, cache_root: str, use_cache: bool
) -> tuple[dict[str, np.ndarray], bool]:
    """One recording's arrays (from the cache or generated) and whether it was a cache hit."""
    timbre = TIMBRES[name]
    cache = FeatureCache(cache_root, "synthetic", enabled=use_cache)
    settings = {"timbre": asdict(timbre), "seed": seed, "index": index, "clips": n_clips}

    def compute() -> dict[str, np.ndarray]:
        rng = np.random.default_rng((seed, list(TIMBRES).index(name), index))
        audio, f0, voiced = generate_recording(timbre, rng, n_clips)
        chunks = audio.reshape(n_clips, CLIP_SAMPLES)
        return {"audio": audio, "f0_hz": f0, "voiced": voiced, "loudness_db": a_weighted_loudness(chunks)}

    entry = cache.get_or_compute(hash_key("synthetic", _CODE_HASH, settings), compute)
    return entry, cache.hits == 1


def _parse_timbres(timbres: str | list[str] | tuple[str, ...] | None) -> list[str]:
    return common.parse_names(timbres, list(TIMBRES), "synthetic timbre", list(TIMBRES))


RECORDINGS = Bound(int, 1, 100_000)
CLIPS_PER_RECORDING = Bound(int, 1, 1000)
_SECONDS_PER_CLIP = 0.07  # measured: 54 clips in 3.8 s on one core, imports excluded


estimate = common.per_recording_estimate("timbres", _parse_timbres, _SECONDS_PER_CLIP)


@DATASETS.register(
    "synthetic",
    description="generated phrases with known f0 and loudness, three timbres (default, no files needed)",
    needs_path=False,
    options={"recordings": RECORDINGS, "clips_per_recording": CLIPS_PER_RECORDING, "timbres": Names(tuple(TIMBRES)),
             "cache_dir": Text(), "use_cache": Flag(), "jobs": JOBS},
    estimate=estimate,
)
def parts(ctx: BuildContext, *, recordings: int = 10, clips_per_recording: int = 3,
          timbres: str | list[str] | None = None) -> SourceParts:
    """The synthetic source's part of :func:`suite.data.build.build_dataset`: generated phrases, cut into clips.

    Args:
        ctx: seed (every recording is drawn from it), feature cache, worker processes (``jobs``).
        recordings: phrases (recordings) per timbre.
        clips_per_recording: 4 s clips per phrase.
        timbres: comma-separated names or a list (default: all of :data:`TIMBRES`).
    """
    names = _parse_timbres(timbres)
    recordings, clips_per_recording = common.check_counts(recordings, clips_per_recording)
    cache, seed, jobs = ctx.cache, ctx.seed, ctx.jobs
    tasks = [(name, r) for name in names for r in range(recordings)]
    args = [(name, seed, r, clips_per_recording, str(cache.root), cache.enabled) for name, r in tasks]
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            results = list(pool.map(_recording_entry, *zip(*args)))
    else:
        results = [_recording_entry(*a) for a in args]
    clips: list[Clip] = []
    for (name, r), (entry, hit) in zip(tasks, results):
        cache.hits += int(hit)
        cache.misses += int(not hit)
        clips += common.recording_clips(f"{name}-{seed}-{r:03d}", name, entry, clips_per_recording, "voiced")
    settings = {"recordings": recordings, "clips_per_recording": clips_per_recording, "timbres": names}
    return SourceParts(clips, settings, names, "generator (exact)")
