"""The ``soundfont`` dataset: FluidSynth renders of seeded melodies, f0 from the MIDI notes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ddspbench.suite.data import load_meta, load_split, prepare
from ddspbench.suite.data import soundfont as sfmod
from ddspbench.suite.errors import UserError
from tests.conftest import require_system
from tests.unit.test_data_synthetic import _yin_pitch


def _font_available() -> bool:
    try:
        sfmod.find_soundfont()
    except UserError:
        return False
    return True


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_system("fluidsynth", shutil.which("fluidsynth") is not None)
    require_system("a GM soundfont (timgm6mb-soundfont)", _font_available())
    root = tmp_path_factory.mktemp("sf")
    return prepare("soundfont", root / "d", seed=1, cache_dir=root / "cache", recordings=1, clips_per_recording=1)


def _all(d: Path) -> dict[str, np.ndarray]:
    sets = [load_split(d, s) for s in ("train", "valid", "test")]
    keys = ("audio", "f0_hz", "loudness_db", "instruments", "f0_confidence")
    return {k: np.concatenate([getattr(s, k) for s in sets]) for k in keys}


def test_renders_three_gm_instruments(rendered: Path) -> None:
    arr = _all(rendered)
    assert sorted(arr["instruments"].tolist()) == ["flute", "trumpet", "violin"]
    assert arr["audio"].shape == (3, 64_000) and arr["f0_hz"].shape == (3, 1000)
    assert 0.1 < np.abs(arr["audio"]).max() <= 0.9 + 1e-6
    assert arr["loudness_db"].min() >= -80 and arr["loudness_db"].max() <= 0
    assert load_meta(rendered)["f0_source"].startswith("MIDI")


def test_midi_f0_matches_the_rendered_pitch(rendered: Path) -> None:
    arr = _all(rendered)
    rng = np.random.default_rng(0)
    for i in range(len(arr["audio"])):
        frames = np.flatnonzero((arr["f0_confidence"][i] == 1.0) & (arr["loudness_db"][i] > -40))
        assert len(frames) > 200, arr["instruments"][i]
        pick = np.sort(rng.choice(frames, 30, replace=False))
        est = _yin_pitch(arr["audio"][i].astype(np.float64), pick * 64, fmin=60.0)
        cents = 1200 * np.abs(np.log2(np.maximum(est, 1.0) / arr["f0_hz"][i][pick]))
        assert np.median(cents) < 25, arr["instruments"][i]
        assert (cents < 50).mean() >= 0.75, arr["instruments"][i]


def test_second_run_hits_the_render_cache(rendered: Path, tmp_path: Path) -> None:
    cache = Path(load_meta(rendered)["cache"]["dir"])
    again = prepare("soundfont", tmp_path / "d", seed=1, cache_dir=cache, recordings=1, clips_per_recording=1)
    assert load_meta(again)["cache"]["hits"] == 3 and load_meta(again)["cache"]["misses"] == 0
    a, b = _all(rendered), _all(again)
    assert np.array_equal(a["audio"], b["audio"]) and np.array_equal(a["f0_hz"], b["f0_hz"])


def test_note_f0_is_frame_accurate() -> None:
    notes = [(0.1, 0.5, 69, 100), (0.5, 0.9, 81, 90), (1.5, 1.7, 57, 80)]
    f0, conf = sfmod.note_f0(notes, 500)
    assert f0[24] == 0 and f0[25] == pytest.approx(440.0)  # 0.1 s = frame 25
    assert f0[124] == pytest.approx(440.0) and f0[125] == pytest.approx(880.0)  # legato switch at frame 125
    assert conf[200] == 1.0 and f0[200] == pytest.approx(880.0)  # 0.8 s: the second note is on
    assert conf[237] == 0.5 and f0[237] == pytest.approx(880.0)  # 0.95 s: its 150 ms release tail
    assert f0[263] == 0 and conf[263] == 0 and f0[300] == 0  # after 1.05 s: silence
    assert f0[375] == pytest.approx(220.0) and conf[375] == 1.0


def test_melodies_are_seeded_and_in_range() -> None:
    a = sfmod.make_melody(np.random.default_rng(3), 55, 88, 8.0)
    b = sfmod.make_melody(np.random.default_rng(3), 55, 88, 8.0)
    c = sfmod.make_melody(np.random.default_rng(4), 55, 88, 8.0)
    assert a == b and a != c
    assert all(55 <= n[2] <= 88 and 0 <= n[0] < n[1] <= 7.7 for n in a)
    assert all(a[i][1] <= a[i + 1][0] + 1e-9 for i in range(len(a) - 1))  # monophonic


def test_missing_fluidsynth_or_soundfont_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sfmod.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt-get install fluidsynth") as exc:
        prepare("soundfont", tmp_path / "a", recordings=1, clips_per_recording=1)
    assert "\n" not in str(exc.value)
    monkeypatch.undo()
    monkeypatch.setattr(sfmod.shutil, "which", lambda name: "/usr/bin/fluidsynth")
    monkeypatch.setattr(sfmod, "SOUNDFONT_CANDIDATES", (str(tmp_path / "none.sf2"),))
    monkeypatch.delenv("DDSPBENCH_SOUNDFONT", raising=False)
    with pytest.raises(UserError, match="timgm6mb-soundfont"):
        prepare("soundfont", tmp_path / "b", recordings=1, clips_per_recording=1)
    with pytest.raises(UserError, match="soundfont not found"):
        prepare("soundfont", tmp_path / "c", soundfont=tmp_path / "x.sf2")
    with pytest.raises(UserError, match="instrument"):
        prepare("soundfont", tmp_path / "d", instruments="kazoo")
