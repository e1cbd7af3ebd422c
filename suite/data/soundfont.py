"""The ``soundfont`` dataset: seeded melodies rendered by FluidSynth with a General MIDI soundfont.

Each recording is one melody of ``clips_per_recording`` x 4 s made with pretty_midi: notes of a
random major or minor scale within the instrument's range, steps mostly small, note lengths in
beats of a random tempo, rests, legato (the next note starts at the note-off) and detached notes,
velocities following a slow phrase-level swell. It is rendered at 16 kHz without reverb and chorus
(REFERENCE §6: ``fluidsynth -ni -q -g 1.0 -r 16000 -o synth.reverb.active=0 -o synth.chorus.active=0
-F out.wav -T wav FONT.sf2 melody.mid``), downmixed to mono, scaled to a peak of 0.9 (less if its loudest 62.5 ms would exceed an RMS
of 0.3), and cut into 4 s clips.

f0 comes from the MIDI notes, frame-accurately: frame ``i`` (time ``i / 250`` s) takes the pitch of
the note sounding then (confidence 1); after a note-off the pitch is held through a 150 ms release
tail unless the next note starts first (confidence 0.5); elsewhere f0 is 0. Loudness is measured
from the rendered audio. Renders are cached keyed by the MIDI bytes, the soundfont's hash, the
FluidSynth version and the settings.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ddspbench.suite.bounds import JOBS, Flag, Names, SoundFontFile, Text
from ddspbench.suite.data import build as common
from ddspbench.suite.data import features as features_module
from ddspbench.suite.data.build import BuildContext, SourceParts
from ddspbench.suite.data.cache import code_hash, hash_key
from ddspbench.suite.data.features import a_weighted_loudness
from ddspbench.suite.data.splits import Clip
from ddspbench.suite.data.synthetic import CLIPS_PER_RECORDING, RECORDINGS
from ddspbench.suite.errors import UserError
from ddspbench.suite.features import CLIP_FRAMES, CLIP_SAMPLES, FRAME_RATE, SAMPLE_RATE
from ddspbench.suite.registry import DATASETS

__all__ = ["GM_INSTRUMENTS", "SOUNDFONT_CANDIDATES", "parts", "find_soundfont", "make_melody", "note_f0", "render_midi"]

log = logging.getLogger("ddspbench.data")

GM_INSTRUMENTS: dict[str, tuple[int, int, int]] = {
    "violin": (40, 55, 88),
    "flute": (73, 60, 88),
    "trumpet": (56, 54, 80),
    "cello": (42, 36, 69),
    "clarinet": (71, 50, 84),
}
"""Instrument -> (General MIDI program, lowest and highest MIDI note of its melodies)."""
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
)
"""Where Debian's GM soundfont packages put their files: fluid-soundfont-gm (FluidR3_GM, 141 MB of sampled
instruments) first, then timgm6mb-soundfont (6 MB)."""
_RELEASE_S = 0.15
_CODE_HASH = code_hash(__file__, features_module.__file__)  # cache key: melody, f0 and loudness code
_PEAK = 0.9
_MAX_RMS = 0.3


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """The soundfont to use: ``explicit``, ``$DDSPBENCH_SOUNDFONT``, or the first Debian GM font found."""
    if explicit is not None:
        return SoundFontFile().check(explicit, "soundfont")
    env = os.environ.get("DDSPBENCH_SOUNDFONT")
    if env:
        return SoundFontFile().check(env, "$DDSPBENCH_SOUNDFONT")
    for cand in SOUNDFONT_CANDIDATES:
        if cand and Path(cand).is_file():
            return Path(cand)
    raise UserError(
        "no General MIDI soundfont found (looked in /usr/share/sounds/sf2); "
        "install one: apt-get install fluid-soundfont-gm (or timgm6mb-soundfont; or --set soundfont=FILE.sf2)"
    )


def _fluidsynth() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise UserError("the soundfont dataset needs FluidSynth: apt-get install fluidsynth timgm6mb-soundfont")
    return exe


def make_melody(rng: np.random.Generator, low: int, high: int, seconds: float) -> list[tuple[float, float, int, int]]:
    """A monophonic melody: ``[(start_s, end_s, midi_note, velocity), ...]`` ending before ``seconds - 0.3``."""
    root = int(rng.integers(0, 12))
    scale = (0, 2, 4, 5, 7, 9, 11) if rng.random() < 0.5 else (0, 2, 3, 5, 7, 8, 10)
    pool = [m for m in range(low, high + 1) if (m - root) % 12 in scale]
    cur = int(rng.integers(len(pool) // 4, 3 * len(pool) // 4 + 1))
    beat = 60.0 / rng.uniform(80, 140)
    swell_phase, swell_rate = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3)
    notes: list[tuple[float, float, int, int]] = []
    t = float(rng.uniform(0.05, 0.3))
    while True:
        dur = beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0, 3.0]))
        if t + dur > seconds - 0.3:
            break
        cur = int(np.clip(cur + rng.choice([-3, -2, -1, -1, 1, 1, 2, 3, 0, 4, -4]), 0, len(pool) - 1))
        swell = 0.5 + 0.5 * np.sin(swell_phase + 2 * np.pi * swell_rate * t)
        vel = int(np.clip(55 + 60 * swell + rng.normal(0, 8), 35, 127))
        r = rng.random()
        if r < 0.35:  # legato: the next note starts at this note-off
            notes.append((t, t + dur, pool[cur], vel))
            t += dur
        elif r < 0.55:  # followed by a rest
            notes.append((t, t + dur, pool[cur], vel))
            t += dur + float(rng.uniform(0.2, 0.8))
        else:  # detached
            gap = min(dur * 0.3, float(rng.uniform(0.03, 0.12)))
            notes.append((t, t + dur - gap, pool[cur], vel))
            t += dur
    return notes


def note_f0(notes: list[tuple[float, float, int, int]], frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (f0_hz, confidence) from a monophonic note list (see the module docstring)."""
    f0 = np.zeros(frames, np.float32)
    conf = np.zeros(frames, np.float32)
    times = np.arange(frames) / FRAME_RATE
    for i, (start, end, pitch, _) in enumerate(notes):
        hz = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
        nxt = notes[i + 1][0] if i + 1 < len(notes) else np.inf
        tail = (times >= end) & (times < min(end + _RELEASE_S, nxt))
        f0[tail], conf[tail] = hz, 0.5
        on = (times >= start) & (times < end)
        f0[on], conf[on] = hz, 1.0
    return f0, conf


def _midi_bytes(notes: list[tuple[float, float, int, int]], program: int) -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=program)
    for start, end, pitch, vel in notes:
        inst.notes.append(pretty_midi.Note(velocity=vel, pitch=pitch, start=start, end=end))
    pm.instruments.append(inst)
    with tempfile.TemporaryDirectory(prefix="ddspbench-midi-") as tmp:
        path = Path(tmp) / "melody.mid"
        pm.write(str(path))
        return path.read_bytes()


def render_midi(midi: bytes, soundfont: Path, n_samples: int) -> np.ndarray:
    """Render MIDI bytes with FluidSynth at 16 kHz (no reverb, no chorus); mono float32 of ``n_samples``."""
    import soundfile as sf

    exe = _fluidsynth()
    with tempfile.TemporaryDirectory(prefix="ddspbench-fs-") as tmp:
        mid, wav = Path(tmp) / "melody.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi)
        cmd = [exe, "-ni", "-q", "-g", "1.0", "-r", str(SAMPLE_RATE), "-o", "synth.reverb.active=0",
               "-o", "synth.chorus.active=0", "-F", str(wav), "-T", "wav", str(soundfont), str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0 or not wav.is_file():
            msg = (proc.stderr or proc.stdout or "no output").strip().splitlines()
            raise UserError(f"fluidsynth failed on {soundfont.name}: {msg[-1] if msg else proc.returncode}")
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise UserError(f"fluidsynth rendered at {sr} Hz instead of {SAMPLE_RATE}")
    mono = audio.mean(axis=1)
    out = np.zeros(n_samples, np.float32)
    out[: min(n_samples, mono.shape[0])] = mono[:n_samples]
    return out


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _parse_instruments(instruments: str | list[str] | None) -> list[str]:
    return common.parse_names(instruments, list(GM_INSTRUMENTS), "soundfont instrument", ("violin", "flute", "trumpet"))


_SECONDS_PER_CLIP = 0.2  # FluidSynth renders a 4 s clip in a small fraction of that; MIDI and loudness add the rest


estimate = common.per_recording_estimate("instruments", _parse_instruments, _SECONDS_PER_CLIP)


@DATASETS.register(
    "soundfont",
    description="pretty_midi melodies rendered by FluidSynth with a GM soundfont (violin, flute, trumpet); f0 from MIDI",
    needs_path=False,
    requires="fluidsynth, fluid-soundfont-gm or timgm6mb-soundfont (Debian)",
    path_hint=" (use --set soundfont=FILE.sf2)",
    options={"recordings": RECORDINGS, "clips_per_recording": CLIPS_PER_RECORDING,
             "instruments": Names(tuple(GM_INSTRUMENTS)), "soundfont": SoundFontFile(), "cache_dir": Text(),
             "use_cache": Flag(), "jobs": JOBS},
    estimate=estimate,
)
def parts(ctx: BuildContext, *, recordings: int = 8, clips_per_recording: int = 3,
          instruments: str | list[str] | None = None, soundfont: str | Path | None = None) -> SourceParts:
    """The soundfont source's part of :func:`suite.data.build.build_dataset`: melodies rendered by FluidSynth.

    Args:
        ctx: seed (of the melodies and the split), render cache, FluidSynth processes run at once (``jobs``).
        recordings: melodies (recordings) per instrument.
        clips_per_recording: 4 s clips per melody.
        instruments: comma-separated names of :data:`GM_INSTRUMENTS` (default violin, flute, trumpet).
        soundfont: a .sf2 file (default: ``$DDSPBENCH_SOUNDFONT`` or the Debian GM font).
    """
    names = _parse_instruments(instruments)
    recordings, n_clips = common.check_counts(recordings, clips_per_recording)
    seed, cache = ctx.seed, ctx.cache
    _fluidsynth()
    font = find_soundfont(soundfont)
    version = subprocess.run([_fluidsynth(), "--version"], capture_output=True, text=True, check=False).stdout
    version = (version.splitlines() or ["?"])[0]
    font_hash = _file_hash(font)
    n_samples = n_clips * CLIP_SAMPLES

    jobs_list: list[tuple[str, int, list[tuple[float, float, int, int]], bytes, str]] = []
    for name in names:
        program, low, high = GM_INSTRUMENTS[name]
        for r in range(recordings):
            rng = np.random.default_rng((int(seed), list(GM_INSTRUMENTS).index(name), r))
            notes = make_melody(rng, low, high, n_clips * CLIP_SAMPLES / SAMPLE_RATE)
            midi = _midi_bytes(notes, program)
            key = hash_key("soundfont", _CODE_HASH, midi, font_hash, version, {"n_samples": n_samples})
            jobs_list.append((name, r, notes, midi, key))

    def work(item: tuple[str, int, list[tuple[float, float, int, int]], bytes, str]) -> dict[str, np.ndarray]:
        _, _, notes, midi, key = item

        def compute() -> dict[str, np.ndarray]:
            audio = render_midi(midi, font, n_samples)
            peak = float(np.max(np.abs(audio)))
            if peak <= 0:
                raise UserError(f"fluidsynth rendered silence with {font.name}; is it a General MIDI soundfont?")
            # peak 0.9, unless the loudest 62.5 ms would then exceed an RMS of 0.3 (as in ``synthetic``),
            # so sustained loud notes stay below the 0 dB clip of the loudness feature
            block_rms = float(np.sqrt(np.mean(audio.reshape(-1, 1000) ** 2, axis=1)).max())
            audio = (audio * min(_PEAK / peak, _MAX_RMS / max(block_rms, 1e-12))).astype(np.float32)
            f0, conf = note_f0(notes, n_clips * CLIP_FRAMES)
            return {"audio": audio, "f0_hz": f0, "f0_confidence": conf,
                    "loudness_db": a_weighted_loudness(audio.reshape(n_clips, CLIP_SAMPLES))}

        return cache.get_or_compute(key, compute)

    with ThreadPoolExecutor(max_workers=ctx.jobs) as pool:
        entries = list(pool.map(work, jobs_list))

    clips: list[Clip] = []
    for (name, r, _, _, _), e in zip(jobs_list, entries):
        clips += common.recording_clips(f"{name}-{seed}-{r:03d}", name, e, n_clips, "f0_confidence")
    settings = {"recordings": recordings, "clips_per_recording": n_clips, "instruments": names,
                "soundfont": str(font), "fluidsynth": version}
    return SourceParts(clips, settings, names, "MIDI notes (frame-accurate)")
