"""The ``train`` and ``synth`` commands: errors exit 2 with one line; train -> synth writes wav files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ddspbench.suite.checkpoint import load_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.commands.synth import safe_name
from ddspbench.suite.commands.train import build_model, parse_sets
from ddspbench.suite.data.store import save_dataset
from ddspbench.suite.errors import UserError
from tests.unit.test_train import DOUBLE, TinySynth, double_family, make_clips  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("double_family", "one_thread")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    splits = {"train": make_clips(8), "valid": make_clips(3, seed=1, prefix="v"), "test": make_clips(3, seed=2, prefix="t/")}
    save_dataset(d, splits, {"name": "tones"})
    return d


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and match in err, err


def _train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--family", DOUBLE, "--size", "tiny", "--data", str(data), "--steps", "4", "--out", str(out),
            "--batch-size", "4", "--valid-every", "2", "--checkpoint-every", "2", "--no-progress", *extra]


def test_train_then_synth_writes_wavs(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(_train_argv(dataset, out)) == 0
    stdout = capsys.readouterr().out
    assert f"checkpoint: {out / 'last.pt'}" in stdout and "final valid MSS: " in stdout
    model, meta = load_checkpoint(out / "last.pt")
    assert isinstance(model, TinySynth) and model.size_name == "tiny" and meta["train"]["step"] == 4

    wavs = tmp_path / "wavs"
    assert main(["synth", "--model", str(out / "best.pt"), "--data", str(dataset), "--out", str(wavs), "--limit", "2"]) == 0
    files = sorted(p.name for p in wavs.glob("*.wav"))
    assert files == ["t_000.wav", "t_001.wav"]
    audio, sr = sf.read(wavs / "t_000.wav")
    assert sr == 16_000 and audio.shape == (48 * 64,) and np.abs(audio).max() > 0


def test_resume_through_cli(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(_train_argv(dataset, out)) == 0
    _one_line_error(capsys, _train_argv(dataset, out), "already holds a training run")
    argv = _train_argv(dataset, out, "--resume")
    argv[argv.index("--steps") + 1] = "6"
    assert main(argv) == 0
    assert "steps: 6 (2 in" in capsys.readouterr().out
    _one_line_error(capsys, _train_argv(dataset, tmp_path / "empty", "--resume"), "no last.pt")


def test_custom_widths_with_set(tmp_path: Path, dataset: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--family", DOUBLE, "--set", "hidden=5", "--set", "n_harmonics=2", "--data", str(dataset),
                 "--steps", "2", "--out", str(out), "--batch-size", "4", "--no-progress"]) == 0
    model, _ = load_checkpoint(out / "last.pt")
    assert model.config == {"hidden": 5, "n_harmonics": 2} and model.size_name == "custom"


def test_build_model_and_sets() -> None:
    assert parse_sets(["hidden=64", "widths={gru: 32}", "name=x"]) == {"hidden": 64, "widths": {"gru": 32}, "name": "x"}
    m = build_model(DOUBLE, "tiny", {"hidden": 3})
    assert m.config == {"hidden": 3, "n_harmonics": 3} and m.size_name == "custom"
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_sets(["hidden"])
    with pytest.raises(UserError, match="cannot build"):
        build_model(DOUBLE, None, {"bogus": 1})


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--family", "nope", "--size", "tiny"], "known: "),
        (["--family", DOUBLE, "--size", "huge"], "known: tiny"),
        (["--family", DOUBLE], "give --size (tiny)"),
        (["--family", DOUBLE, "--size", "tiny", "--device", "quantum"], "unknown device"),
    ],
)
def test_train_errors_exit_2(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str) -> None:
    argv = ["train", *args, "--data", str(dataset), "--steps", "2", "--out", str(tmp_path / "o"), "--no-progress"]
    _one_line_error(capsys, argv, match)


def test_train_missing_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, _train_argv(tmp_path / "nodata", tmp_path / "o"), "dataset directory not found")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_train_cuda_unavailable_exits_2(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, _train_argv(dataset, tmp_path / "o", "--device", "cuda"), "CUDA is not available")


def test_synth_errors_exit_2(tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wavs"
    _one_line_error(capsys, ["synth", "--model", str(tmp_path / "none.pt"), "--data", str(dataset), "--out", str(out)], "checkpoint not found")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    _one_line_error(capsys, ["synth", "--model", str(bad), "--data", str(dataset), "--out", str(out)], "not a loadable checkpoint")
    assert main(_train_argv(dataset, tmp_path / "run")) == 0
    capsys.readouterr()
    ckpt = str(tmp_path / "run" / "last.pt")
    _one_line_error(capsys, ["synth", "--model", ckpt, "--data", str(tmp_path / "nodata"), "--out", str(out)], "not found")
    (dataset / "test.npz").write_bytes(b"garbage")
    _one_line_error(capsys, ["synth", "--model", ckpt, "--data", str(dataset), "--out", str(out)], "corrupt split file")


def test_safe_name() -> None:
    assert safe_name("a/b c.1") == "a_b_c.1" and safe_name("../..") == "clip"


def test_same_seed_same_weights(tmp_path: Path, dataset: Path) -> None:
    outs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for out, seed in zip(outs, ["1", "1", "2"]):
        assert main(_train_argv(dataset, out, "--seed", seed, "--steps", "2")) == 0
    sd = [load_checkpoint(o / "last.pt")[0].state_dict() for o in outs]
    assert all(torch.equal(sd[0][k], sd[1][k]) for k in sd[0])
    assert not all(torch.equal(sd[0][k], sd[2][k]) for k in sd[0])


def test_synth_noise_does_not_depend_on_the_batch_size(tmp_path: Path, dataset: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--family", "hpn", "--size", "reduced", "--data", str(dataset), "--steps", "1", "--out",
                 str(out), "--batch-size", "4", "--no-progress"]) == 0
    renders = {}
    for bs in ("1", "2", "3"):
        wavs = tmp_path / f"wavs{bs}"
        assert main(["synth", "--model", str(out / "last.pt"), "--data", str(dataset), "--out", str(wavs),
                     "--batch-size", bs, "--subtype", "FLOAT"]) == 0
        renders[bs] = {p.name: sf.read(p)[0] for p in sorted(wavs.glob("*.wav"))}
    assert list(renders["1"]) == ["t_000.wav", "t_001.wav", "t_002.wav"]
    for bs in ("2", "3"):  # every clip keeps its own noise stream however the clips are batched
        for name, audio in renders["1"].items():
            np.testing.assert_allclose(renders[bs][name], audio, atol=1e-5)  # batched matmul rounding
    # ... and the clips' noise streams differ from one another (not one stream reused)
    a, b = renders["1"]["t_000.wav"], renders["1"]["t_001.wav"]
    assert not np.allclose(a, b)
