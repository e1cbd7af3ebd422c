"""``ddspbench mss``, ``fad`` and ``evaluate`` end to end, on the real recordings where they are needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.data.store import save_dataset
from tests.unit.test_metrics_evaluate import _clips
from tests.unit.test_metrics_toys import ToyLinear, ToyNaN, toy_families  # noqa: F401


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DDSPBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _folder(tmp: Path, name: str, real: Path, instruments: list[str]) -> Path:
    d = tmp / name
    d.mkdir()
    for inst in instruments:
        (d / f"{inst}.wav").symlink_to(real / f"{inst}_1_reference.wav")
    return d


def test_mss_on_real_recordings(real_recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flute, violin = str(real_recordings / "flute_1_reference.wav"), str(real_recordings / "violin_1_reference.wav")
    out = _json(capsys, ["mss", flute, violin, "--json"])
    assert out["unit"] == "1" and out["length_policy"] == "equal" and 66000 < out["samples"] < 67000
    assert 1.0 < out["mss"] < 100.0
    assert _json(capsys, ["mss", flute, flute, "--json", "--scales", "1024,256"])["mss"] == 0.0
    assert _json(capsys, ["mss", violin, flute, "--json"])["mss"] == pytest.approx(out["mss"], rel=1e-6)
    # the same recording at 44.1 kHz, stereo, 3 % shorter: resampled, downmixed, truncated
    x, sr = sf.read(flute)
    from scipy.signal import resample_poly

    y = resample_poly(x, 441, 160, axis=0)[: int(0.97 * len(x) * 44100 / 16000)]
    sf.write(tmp_path / "flute44k.wav", y, 44100)
    near = _json(capsys, ["mss", flute, str(tmp_path / "flute44k.wav"), "--json", "--scales", "1024,256"])
    assert near["length_policy"].startswith("truncated") and near["scales"] == [1024, 256]
    far = _json(capsys, ["mss", str(tmp_path / "flute44k.wav"), violin, "--json", "--scales", "1024,256"])
    assert near["mss"] < 0.5 * far["mss"]


def test_mss_bad_input(real_recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flute = str(real_recordings / "flute_1_reference.wav")
    sf.write(tmp_path / "short.wav", np.zeros(8000, np.float32), 16000)
    (tmp_path / "junk.wav").write_text("junk")
    for argv, pattern in (
        (["mss", flute, str(tmp_path / "short.wav")], "lengths differ"),
        (["mss", flute, str(tmp_path / "junk.wav")], "not a readable audio file"),
        (["mss", flute, str(tmp_path / "none.wav")], "not found"),
        (["mss", flute, flute, "--scales", "100,x"], "--scales"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert pattern in err and len(err.splitlines()) == 1


def test_fad_on_real_recordings_logmel(real_recordings: Path, tmp_path: Path, cache: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    a = _folder(tmp_path, "a", real_recordings, ["flute", "trumpet"])
    b = _folder(tmp_path, "b", real_recordings, ["violin", "piano"])
    out = _json(capsys, ["fad", str(a), str(b), "--json", "--segment", "2", "--bootstrap", "30", "--inf", "--embedding", "logmel"])
    assert out["embedding"] == "logmel/1" and out["n_clips"] == [4, 4] and out["dim"] == 132
    assert out["fad"] > 0 and out["intervals"]["fad"][0] <= out["fad"] <= out["intervals"]["fad"][1]
    assert "kad" in out and "fad_inf" in out
    same = _json(capsys, ["fad", str(a), str(a), "--json", "--embedding", "logmel"])
    assert abs(same["fad"]) < 1e-3 * out["fad"]
    assert list(cache.rglob("*.npy"))  # embeddings were cached
    # .npy embeddings work too, and the table output is one line
    emb = np.random.default_rng(0).normal(size=(10, 5))
    np.save(tmp_path / "x.npy", emb)
    np.save(tmp_path / "y.npy", emb + 1.0)
    assert _json(capsys, ["fad", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--json"])["fad"] == pytest.approx(5.0, rel=1e-6)
    assert main(["fad", str(a), str(b), "--embedding", "logmel"]) == 0
    assert capsys.readouterr().out.startswith("FAD ")


def test_fad_bad_input(real_recordings: Path, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _folder(tmp_path, "a", real_recordings, ["flute", "trumpet"])
    one = _folder(tmp_path, "one", real_recordings, ["violin"])
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "row.npy", np.ones((1, 4)))
    for argv, pattern in (
        (["fad", str(a), str(one)], "at least 2"),
        (["fad", str(a), str(tmp_path / "empty")], "no audio files"),
        (["fad", str(a), str(tmp_path / "missing")], "not found"),
        (["fad", str(tmp_path / "row.npy"), str(tmp_path / "row.npy")], "at least 2"),
        (["fad", str(a), str(a), "--embedding", "vggish"], "fad-pretrained"),
        (["fad", str(a), str(a), "--embedding", "nope"], "unknown embedding"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert pattern in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_fad_on_real_recordings_aisfx(real_recordings: Path, tmp_path: Path, cache: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    a = _folder(tmp_path, "a", real_recordings, ["flute", "trumpet"])
    b = _folder(tmp_path, "b", real_recordings, ["violin", "piano"])
    out = _json(capsys, ["fad", str(a), str(b), "--json", "--segment", "2"])  # aisfx is the default
    assert out["embedding"].startswith("aisfx/") and out["dim"] == 512 and out["n_clips"] == [4, 4]
    assert out["fad"] > 0
    same = _json(capsys, ["fad", str(a), str(a), "--json", "--embedding", "aisfx", "--segment", "2"])
    assert abs(same["fad"]) < 1e-3 * out["fad"]


def _dataset(tmp: Path, n: int = 3) -> Path:
    clips = _clips(n, frames=250)
    return save_dataset(tmp / "ds", {"train": clips, "valid": clips, "test": clips}, {"name": "tones"})


def test_evaluate_nan_model_gives_a_failed_row(tmp_path: Path, toy_families: None,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path)
    ckpt = save_checkpoint(ToyNaN(width=4), tmp_path / "nan.pt", {"method": "kd_audio"})
    assert main(["evaluate", "--model", str(ckpt), "--data", str(data), "--metrics", "mss,size", "--json",
                 "--out", str(tmp_path / "res")]) == 1
    row = json.loads(capsys.readouterr().out)
    assert row["status"] == "failed" and "NaN in model output" in row["error"] and row["method"] == "kd_audio"
    lines = (tmp_path / "res" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["status"] == "failed"


def test_evaluate_writes_one_record(tmp_path: Path, toy_families: None,  # noqa: F811
                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path)
    ckpt = save_checkpoint(ToyLinear(width=8), tmp_path / "toy.pt")
    argv = ["evaluate", "--model", str(ckpt), "--data", str(data), "--metrics", "mss,fad,kad,rtf,stream,size,param_bytes,checkpoint_bytes",
            "--buffers", "64,256", "--json", "--out", str(tmp_path / "res"), "--n-audio", "2", "--speed-backend", "eager"]
    # the default speed backend is the native engine; a family that declares no engine support (suite.traits) is
    # timed eager, and the record says so
    native = [str(tmp_path / "res-native") if a == str(tmp_path / "res") else a for a in argv[:-2]]
    assert main(native) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["metric_defs"]["rtf_offline"].endswith(
        "backend=eager (native asked: family _toy_linear declares no native engine support)")
    assert main(argv) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and row["family"] == "_toy_linear" and row["method"] == "evaluate"
    for k in ("mss", "fad", "kad", "rtf_offline", "rtf_stream_64", "p99_ms_stream_256", "miss_rate_stream_64",
              "params", "flops_per_s", "param_bytes", "checkpoint_bytes"):
        assert row["metrics"][k] is not None and row["units"][k], k
    assert row["units"]["rtf_offline"] == "s/s" and len(row["per_clip"]["mss"]) == 3
    assert row["provenance"]["threads"] == 1 and row["provenance"]["torch_version"]
    assert row["provenance"]["speed_backend"] == "eager" and row["metric_defs"]["rtf_offline"].endswith("backend=eager")
    res = tmp_path / "res"
    assert len((res / "records.jsonl").read_text().splitlines()) == 1
    assert len(list((res / "candidates").glob("*/audio/*.wav"))) == 2 and len(list((res / "targets").glob("*.wav"))) == 2
    assert main(["evaluate", "--model", str(ckpt), "--data", str(data), "--metrics", "mss,bogus"]) == 2


@pytest.mark.slow
def test_evaluate_console_script_on_hpn(tmp_path: Path) -> None:
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES

    load_catalog()
    data = _dataset(tmp_path, n=2)
    ckpt = save_checkpoint(SIZES.get("hpn/reduced")(), tmp_path / "hpn.pt")
    exe = Path(sys.executable).with_name("ddspbench")
    proc = subprocess.run([str(exe), "evaluate", "--model", str(ckpt), "--data", str(data), "--buffers", "256",
                           "--out", str(tmp_path / "res")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "rtf_stream_256" in proc.stdout and "peak_mem_bytes" in proc.stdout
    row = json.loads((tmp_path / "res" / "records.jsonl").read_text())
    assert row["family"] == "hpn" and row["size"] == "reduced" and row["metrics"]["params"] == 23512
    assert row["provenance"]["speed_backend"] == "native"  # the default
    assert row["metric_defs"]["rtf_stream_256"].endswith("backend=native")
    assert row["metrics"]["engine_bytes"] > 0 and row["metrics"]["peak_rss_bytes"] > row["metrics"]["engine_bytes"]
    assert row["metrics"]["peak_mem_bytes"] > 0 and row["metric_defs"]["fad"] == "logmel/1"
