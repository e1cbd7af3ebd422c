"""Constructed results directories for the report tests (and checks that they are what the sweep writes).

``write_results_dir`` lays out a results directory exactly as docs/CONTRACTS.md describes it
(records.jsonl, candidates/<id>/audio/*.wav, targets/*.wav), with a teacher and several methods per
(family, instrument) study, per-clip MSS lists, intervals, provenance and one failed candidate. The
numbers are drawn from a seeded generator with method-dependent means, so the expected orderings are
known: in the ``hpn``/``violin`` study the ``kd_audio`` student of size ``reduced`` is made worse than the
``scratch`` student of that size (the case the reference paper saw); everywhere else KD helps.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

from ddspbench.suite.records import ResultRecord, append_record, read_records

SR = 16_000
CLIP_S = 0.5
N_CLIPS = 8
N_AUDIO = 2
HOSTILE = "<script>alert(1)</script>"

# size -> parameter count (HpN-like numbers; DDX7 scaled down)
_SIZES = {"full": 4_314_408, "reduced": 23_512, "hidden=64": 180_000}
# method -> (mean MSS offset over the teacher for the reduced size, param scale, byte/param, rtf scale)
_METHODS = {
    "scratch": (2.0, 1.0, 4, 1.0),
    "kd_audio": (1.4, 1.0, 4, 1.0),
    "kd_control": (1.6, 1.0, 4, 1.0),
    "prune": (2.4, 0.3, 4, 0.6),
    "quantize": (0.4, 1.0, 1, 0.45),
    "prune+kd_audio+quantize": (1.8, 0.3, 1, 0.3),
}


def _tone(f0: float, brightness: float, seed: int) -> np.ndarray:
    t = np.arange(int(SR * CLIP_S)) / SR
    x = sum((brightness**k) * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(6))
    x = x + 0.02 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _write_audio(folder: Path, clip_ids: list[str], f0: float, brightness: float, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, cid in enumerate(clip_ids[:N_AUDIO]):
        sf.write(folder / f"{cid}.wav", _tone(f0 * (1 + 0.1 * i), brightness, seed + i), SR)


def _bootstrap_ci(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    means = values[rng.integers(0, values.size, size=(400, values.size))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def make_records(
    root: Path,
    *,
    machine: str = "m-test-1",
    threads: int = 1,
    families: tuple[str, ...] = ("hpn", "ddx7"),
    instruments: tuple[str, ...] = ("violin", "flute"),
    hostile: bool = False,
    audio: bool = True,
    mss_def: str = "mss/2048-64/1",
    study_prefix: str = "",
) -> list[ResultRecord]:
    """Records (and their audio files under ``root``) for one results directory."""
    rng = np.random.default_rng(zlib.crc32(f"{machine}|{study_prefix}".encode()))
    prov = {"machine": machine, "threads": threads, "device": "cpu", "cpu_model": "test cpu",
            "torch_version": "2.13.0", "git_commit": "abc123"}
    clip_ids = [f"clip{i:03d}" for i in range(N_CLIPS)]
    if audio:
        _write_audio(root / "targets", clip_ids, 220.0, 0.5, 1)
    recs: list[ResultRecord] = []
    n = 0
    for family in families:
        for instrument in instruments:
            study = f"{study_prefix}{family}-{instrument}"
            dataset = f"synthetic-{instrument}"
            teacher_mss = 4.5 + rng.uniform(-0.3, 0.3, N_CLIPS)

            def add(cid: str, method: str, size: str, per_clip: np.ndarray, params: int, nbytes: int,
                    rtf: float, mparams: dict, brightness: float, instrument: str = instrument,
                    family: str = family, study: str = study, dataset: str = dataset) -> None:
                metrics = {
                    "mss": float(per_clip.mean()), "fad": float(per_clip.mean() * 0.8),
                    "params": float(params), "param_bytes": float(nbytes), "peak_mem_bytes": float(nbytes * 3 + 2e6),
                    "rtf_stream_64": rtf, "rtf_offline": rtf / 8, "train_seconds": 12.0,
                }
                art: dict[str, str] = {"checkpoint": f"candidates/{cid}/model.pt"}
                if audio:
                    _write_audio(root / "candidates" / cid / "audio", clip_ids, 220.0, brightness, len(recs))
                    art.update(audio=f"candidates/{cid}/audio", target_audio="targets")
                recs.append(ResultRecord.with_units(
                    candidate_id=cid, study=study, trial=len(recs), family=family, size=size, method=method,
                    method_params=mparams, dataset=dataset, instrument=instrument, seed=0, metrics=metrics,
                    per_clip={"mss": per_clip.tolist()}, intervals={"mss": _bootstrap_ci(per_clip, rng)},
                    metric_defs={"mss": mss_def, "fad": "logmel/1"}, artifacts=art, provenance=prov,
                ))

            tid = f"{study_prefix}{family}-{instrument}-teacher"
            if hostile and family == families[0] and instrument == instruments[0]:
                instrument_name = HOSTILE
            else:
                instrument_name = instrument
            add(tid, "teacher", "full", teacher_mss, _SIZES["full"], _SIZES["full"] * 4, 0.5, {}, 0.5,
                instrument=instrument_name)
            for size, size_pen in (("reduced", 0.0), ("hidden=64", -0.8)):
                for method, (off, pscale, bpp, rscale) in _METHODS.items():
                    penalty = off + size_pen
                    if family == "hpn" and instrument == "violin" and method == "kd_audio" and size == "reduced":
                        penalty = _METHODS["scratch"][0] + 1.5  # KD made this student clearly worse
                    per_clip = teacher_mss + penalty + rng.normal(0, 0.15, N_CLIPS)
                    params = int(_SIZES[size] * pscale)
                    n += 1
                    cid = f"{study_prefix}t{n:04d}"
                    mparams: dict = {"size": size}
                    if hostile and n == 1:
                        cid = f"t{n:04d}{HOSTILE}"
                        mparams = {"note": HOSTILE}
                    add(cid, method, size, per_clip, params, params * bpp, 0.2 * rscale * (params / 23_512) ** 0.2,
                        mparams, 0.3 + 0.05 * (n % 5))
            n += 1
            recs.append(ResultRecord.with_units(
                candidate_id=f"{study_prefix}t{n:04d}", study=study, trial=n, family=family, size="hidden=8",
                method="prune", method_params={"ratio": 0.99}, dataset=dataset, instrument=instrument, seed=0,
                status="failed", error="CandidateFailed: NaN in model output", provenance=prov,
            ))
    return recs


def write_results_dir(root: Path, **kw) -> Path:
    """Write a results directory at ``root`` (see :func:`make_records` for the keyword arguments)."""
    root.mkdir(parents=True, exist_ok=True)
    for rec in make_records(root, **kw):
        append_record(root / "records.jsonl", rec)
    return root


def test_constructed_dir_follows_the_results_layout(tmp_path):
    root = write_results_dir(tmp_path / "res", families=("hpn",), instruments=("violin",))
    recs = list(read_records([root]))
    methods = {r.method for r in recs}
    assert methods == {"teacher", *_METHODS}
    ok = [r for r in recs if r.status == "ok"]
    assert all(len(r.per_clip["mss"]) == N_CLIPS for r in ok)
    assert all((root / r.artifacts["audio"] / "clip000.wav").is_file() for r in ok)
    assert sum(r.status == "failed" for r in recs) == 1
    info = sf.info(str(root / "targets" / "clip001.wav"))
    assert info.samplerate == SR and info.frames == int(SR * CLIP_S)
