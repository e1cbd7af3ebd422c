"""The ``folder`` dataset end to end: real recordings, every kind of bad input, caching, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ddspbench.suite.cli import main
from ddspbench.suite.data import load_meta, load_split, prepare
from ddspbench.suite.data.folder import find_audio_files, instrument_name
from ddspbench.suite.errors import UserError

FAST = {"f0": "yin", "use_cache": False}


def _tone(seconds: float, sr: int = 16_000, hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.4 * np.sin(2 * np.pi * hz * t) + 0.15 * np.sin(2 * np.pi * 2 * hz * t) + 0.05 * np.sin(2 * np.pi * 3 * hz * t)
    env = np.minimum(1.0, np.minimum(t / 0.05, (t[-1] - t) / 0.05 + 1e-3))
    x = (x * env).astype(np.float32)
    return np.stack([x, 0.8 * x], axis=1) if channels == 2 else x


def _all(d: Path) -> dict[str, np.ndarray]:
    sets = [load_split(d, s) for s in ("train", "valid", "test")]
    return {k: np.concatenate([getattr(s, k) for s in sets]) for k in ("audio", "f0_hz", "loudness_db", "instruments", "f0_confidence")}


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    sf.write(d / "flute_good.wav", _tone(3.6), 16_000)
    sf.write(d / "sub" / "violin_stereo44k.wav", _tone(4.5, 44_100, 330.0, channels=2), 44_100)
    sf.write(d / "oboe_48k.flac", _tone(3.5, 48_000, 550.0), 48_000)
    sf.write(d / "silent.wav", np.zeros(16_000 * 5, np.float32), 16_000)
    sf.write(d / "short.wav", _tone(2.0), 16_000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(np.random.default_rng(0).integers(0, 255, 500, dtype=np.uint8)))
    (d / "text.wav").write_text("this is not audio\n")
    (d / "empty.ogg").write_bytes(b"")
    (d / "notes.txt").write_text("ignored: not an audio extension")
    return d


def test_bad_files_are_skipped_by_name_and_good_ones_kept(messy_folder: Path, tmp_path: Path) -> None:
    out = prepare("folder", tmp_path / "out", path=messy_folder, **FAST)
    meta = load_meta(out)
    skipped = {s["file"]: s["reason"] for s in meta["skipped"]}
    assert set(skipped) == {"silent.wav", "short.wav", "corrupt.wav", "text.wav", "empty.ogg"}
    assert "silent" in skipped["silent.wav"]
    assert "too short" in skipped["short.wav"] and "2.00 s" in skipped["short.wav"]
    assert "not a readable audio file" in skipped["text.wav"]
    assert "not a readable audio file" in skipped["corrupt.wav"]
    arr = _all(out)
    assert arr["audio"].shape == (3, 64_000) and arr["f0_hz"].shape == (3, 1000)
    assert sorted(arr["instruments"].tolist()) == ["flute", "oboe", "violin"]
    assert np.abs(arr["audio"]).max() <= 1.0 + 1e-6
    assert arr["loudness_db"].min() >= -80 and arr["loudness_db"].max() <= 0
    # stereo 44.1 kHz and 48 kHz inputs were downmixed and resampled: their pitch survives exactly
    for inst, hz in (("violin", 330.0), ("oboe", 550.0), ("flute", 440.0)):
        f = arr["f0_hz"][arr["instruments"] == inst][0]
        assert np.median(f[f > 0]) == pytest.approx(hz, rel=0.01)
    assert any("44100 Hz" in n for n in meta["converted"]) and any("48000 Hz" in n for n in meta["converted"])
    # 3.6 s of tone -> one chunk, zero-padded after the sound
    flute = arr["audio"][arr["instruments"] == "flute"][0]
    assert np.all(flute[int(3.62 * 16_000) :] == 0)


def test_cli_warns_by_name_and_succeeds(messy_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["data", "--dataset", "folder", "--path", str(messy_folder), "--out", str(tmp_path / "o"),
               "--f0", "yin", "--no-cache"])
    assert rc == 0
    cap = capsys.readouterr()
    for name in ("silent.wav", "short.wav", "corrupt.wav", "text.wav", "empty.ogg"):
        assert f"warning: skipping {name}:" in cap.err
    assert "clips: 3" in cap.out and "skipped 5 file(s)" in cap.out


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:")
    return err[-1]


def test_missing_and_empty_folders_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["data", "--dataset", "folder", "--out", str(tmp_path / "o"), "--f0", "yin"]
    assert "folder not found" in _cli_error([*base, "--path", str(tmp_path / "missing")], capsys)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio here")
    assert "no audio files" in _cli_error([*base, "--path", str(tmp_path / "empty")], capsys)
    assert "needs --path" in _cli_error(base, capsys)
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_only_bad_files_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.wav").write_text("text")
    sf.write(d / "b.wav", np.zeros(80_000, np.float32), 16_000)
    sf.write(d / "c.wav", _tone(1.0), 16_000)
    line = _cli_error(["data", "--dataset", "folder", "--path", str(d), "--out", str(tmp_path / "o"), "--f0", "yin", "--no-cache"], capsys)
    assert "no usable audio" in line and "3 file(s) skipped" in line
    assert "a.wav" in line and "b.wav" in line
    with pytest.raises(UserError, match="no usable audio"):
        prepare("folder", tmp_path / "o2", path=d, **FAST)


def test_noise_is_dropped_by_the_confidence_threshold(tmp_path: Path) -> None:
    d = tmp_path / "n"
    d.mkdir()
    sf.write(d / "noise.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 16_000 * 5).astype(np.float32), 16_000)
    sf.write(d / "flute.wav", _tone(3.8), 16_000)
    meta = load_meta(prepare("folder", tmp_path / "o", path=d, **FAST))
    assert [s["file"] for s in meta["skipped"]] == ["noise.wav"]
    assert "confidence" in meta["skipped"][0]["reason"]
    assert meta["chunks_dropped_low_confidence"] == 1
    # with the threshold at 0, the noise chunk is kept
    meta0 = load_meta(prepare("folder", tmp_path / "o0", path=d, min_confidence=0.0, **FAST))
    assert meta0["clips"] == 2 and not meta0["skipped"]


def test_crepe_without_torchcrepe_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    if importlib.util.find_spec("torchcrepe") is not None:
        pytest.skip("torchcrepe is installed here")
    d = tmp_path / "in"
    d.mkdir()
    sf.write(d / "flute.wav", _tone(3.8), 16_000)
    line = _cli_error(["data", "--dataset", "folder", "--path", str(d), "--out", str(tmp_path / "o"), "--f0", "crepe"], capsys)
    assert "torchcrepe" in line and "pip install" in line


def test_instrument_names_and_discovery(tmp_path: Path) -> None:
    assert instrument_name(Path("AuSep_2_vn_03_Dance.wav")) == "violin"
    assert instrument_name(Path("AuSep_1_tpt_11_Maria.wav")) == "trumpet"
    assert instrument_name(Path("flute_1_reference.wav")) == "flute"
    assert instrument_name(Path("Trumpet-take2.flac")) == "trumpet"
    assert instrument_name(Path("0042.wav")) == "unknown"
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for p in ("a/b/x.WAV", "a/y.ogg", "z.flac", ".hidden/h.wav", "a/n.mp4"):
        (tmp_path / p).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)] == ["a/b/x.WAV", "a/y.ogg", "z.flac"]


def test_split_by_recording_and_by_chunk(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for i in range(4):  # 4 recordings of 8.5 s -> 2 chunks each
        sf.write(d / f"flute_{i}.wav", _tone(8.5, hz=300.0 + 40 * i), 16_000)
    opts = {"f0": "yin", "cache_dir": tmp_path / "cache"}
    by_rec = prepare("folder", tmp_path / "r", path=d, **opts)
    recs = {s: set(load_split(by_rec, s).recording_ids.tolist()) for s in ("train", "valid", "test")}
    assert [len(recs[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    assert not (recs["train"] & recs["test"]) and not (recs["train"] & recs["valid"])
    assert len(load_split(by_rec, "train")) == 4
    by_chunk = prepare("folder", tmp_path / "c", path=d, split="chunk", **opts)
    meta = load_meta(by_chunk)
    assert meta["split_unit"] == "chunk" and meta["cache"]["hits"] == 4  # the split is not a feature setting
    sizes = [len(load_split(by_chunk, s)) for s in ("train", "valid", "test")]
    assert sizes == [6, 1, 1]


def test_real_recordings_fast_tracker_and_cache(real_recordings: Path, tmp_path: Path) -> None:
    opts = {"f0": "yin", "cache_dir": tmp_path / "cache"}
    first = prepare("folder", tmp_path / "a", path=real_recordings, **opts)
    second = prepare("folder", tmp_path / "b", path=real_recordings, **opts)
    assert load_meta(first)["cache"]["misses"] == 4
    assert load_meta(second)["cache"]["hits"] == 4 and load_meta(second)["cache"]["misses"] == 0
    a, b = _all(first), _all(second)
    for k in a:
        assert np.array_equal(a[k], b[k])
    _check_real(a)


# median voiced f0 ranges that each instrument can plausibly play (Hz)
PLAUSIBLE = {"flute": (250, 2100), "trumpet": (150, 1000), "violin": (190, 3000), "piano": (27, 4200)}


def _check_real(arr: dict[str, np.ndarray]) -> None:
    assert sorted(arr["instruments"].tolist()) == sorted(PLAUSIBLE)
    assert arr["audio"].shape == (4, 64_000)
    for inst, (lo, hi) in PLAUSIBLE.items():
        f = arr["f0_hz"][arr["instruments"] == inst][0]
        assert (f > 0).mean() > 0.5, inst
        assert lo <= np.median(f[f > 0]) <= hi, inst


@pytest.mark.slow
def test_real_recordings_default_pyin(real_recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["data", "--dataset", "folder", "--path", str(real_recordings), "--out", str(tmp_path / "o"),
               "--no-cache", "--jobs", "2"])
    assert rc == 0
    assert "clips: 4" in capsys.readouterr().out
    arr = _all(tmp_path / "o")
    _check_real(arr)
    meta = load_meta(tmp_path / "o")
    assert meta["settings"]["f0"] == "pyin" and meta["splits"] == {"train": 2, "valid": 1, "test": 1}


def test_single_file_goes_to_train_and_empty_splits_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sf.write(tmp_path / "violin_solo.wav", _tone(4.5, hz=392.0), 16_000)
    with caplog.at_level("WARNING", logger="ddspbench.data"):
        out = prepare("folder", tmp_path / "o", path=tmp_path / "violin_solo.wav", **FAST)
    assert [len(load_split(out, s)) for s in ("train", "valid", "test")] == [1, 0, 0]
    assert load_split(out, "test").audio.shape == (0, 64_000)
    assert "test split is empty" in caplog.text


def test_urmp_layout_uses_stems_and_filters_instruments(tmp_path: Path) -> None:
    piece = tmp_path / "urmp" / "01_Jupiter_vn_vc"
    piece.mkdir(parents=True)
    sf.write(piece / "AuSep_1_vn_01_Jupiter.wav", _tone(3.6, 48_000, 440.0), 48_000)
    sf.write(piece / "AuSep_2_vc_01_Jupiter.wav", _tone(3.6, 48_000, 130.8), 48_000)
    sf.write(piece / "AuMix_01_Jupiter_vn_vc.wav", _tone(3.6, 48_000, 440.0) + _tone(3.6, 48_000, 130.8), 48_000)
    out = prepare("folder", tmp_path / "o", path=tmp_path / "urmp", **FAST)
    meta = load_meta(out)
    assert meta["instruments"] == ["cello", "violin"]
    assert [s["file"] for s in meta["skipped"]] == ["01_Jupiter_vn_vc/AuMix_01_Jupiter_vn_vc.wav"]
    arr = _all(out)
    cello = arr["f0_hz"][arr["instruments"] == "cello"][0]
    assert np.median(cello[cello > 0]) == pytest.approx(130.8, rel=0.01)
    only = load_meta(prepare("folder", tmp_path / "v", path=tmp_path / "urmp", instruments="violin", **FAST))
    assert only["instruments"] == ["violin"] and only["clips"] == 1
    with pytest.raises(UserError, match="found: cello, violin"):
        prepare("folder", tmp_path / "x", path=tmp_path / "urmp", instruments="tuba", **FAST)
