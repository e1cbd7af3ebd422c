"""``ddspbench compress`` end to end: a teacher checkpoint and a dataset in, a candidate and its description out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ddspbench.compressors import count_params
from ddspbench.suite.checkpoint import load_checkpoint, save_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.data.store import save_dataset
from tests.contract.test_compressors import tiny_clips, tiny_teacher

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from ddspbench.suite.catalog import load_catalog

    load_catalog()
    root = tmp_path_factory.mktemp("compress")
    clips = tiny_clips(n=6, frames=64)
    data = save_dataset(root / "data", {"train": clips.subset(slice(0, 4)), "valid": clips.subset(slice(4, 5)),
                                         "test": clips.subset(slice(5, 6))}, {"name": "tones"})
    teacher = save_checkpoint(tiny_teacher(), root / "teacher.pt")
    return data, teacher


def _run(*argv: str) -> int:
    return main(["compress", *argv, "--no-progress"])


def test_compress_chain_writes_candidate_and_description(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, teacher = setup
    out = tmp_path / "cand"
    rc = _run("--method", "prune+kd_audio+quantize", "--teacher", str(teacher), "--data", str(data), "--out", str(out),
              "--steps", "2", "--batch-size", "2", "--frames", "32", "--set", "prune.ratio=0.5",
              "--set", "quantize.measure_frames=16")
    assert rc == 0
    desc = json.loads((out / "description.json").read_text())
    assert desc["chain"] == ["prune", "kd_audio", "quantize"]
    assert [s["method"] for s in desc["steps"]] == ["prune", "kd_audio", "quantize"]
    assert desc["params"]["prune.ratio"] == 0.5
    model, meta = load_checkpoint(out / "model.pt")
    assert meta["compress"]["method"] == "prune+kd_audio+quantize"
    assert count_params(model) == desc["after"]["params"] < desc["before"]["params"]
    printed = capsys.readouterr().out
    assert "params" in printed and "bytes" in printed and "RTF" not in printed.split("params")[0]
    # `evaluate` on the candidate names it as a sweep record would: pruned size label, method and its settings
    assert main(["evaluate", "--model", str(out / "model.pt"), "--data", str(data), "--metrics", "mss,size",
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    teacher_size = load_checkpoint(teacher)[0].size_name
    assert row["size"] == f"{teacher_size}:pruned" and row["method"] == "prune+kd_audio+quantize"
    assert row["recipe"]["steps"][0]["params"]["ratio"] == 0.5 and row["steps"][0]["tags"] == ["pruning"]


def test_compress_quantize_needs_no_data(setup: tuple[Path, Path], tmp_path: Path) -> None:
    _, teacher = setup
    rc = _run("--method", "quantize", "--teacher", str(teacher), "--out", str(tmp_path / "q"), "--set", "measure_frames=16")
    assert rc == 0
    desc = json.loads((tmp_path / "q" / "description.json").read_text())
    assert desc["after"]["bytes"] < desc["before"]["bytes"] and desc["rtf"]["after"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "distill_magic"], "unknown compressor"),
        (["--method", "quantize+kd_audio"], "last step"),
        (["--method", "kd_audio", "--set", "temperature=2"], "unknown parameter"),
        (["--method", "kd_audio"], "needs a training set"),
    ],
)
def test_compress_user_errors_exit_2(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     argv: list[str], message: str) -> None:
    _, teacher = setup
    rc = _run(*argv, "--teacher", str(teacher), "--out", str(tmp_path / "x"), "--steps", "1")
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_console_script_help() -> None:
    out = subprocess.run([sys.executable, "-m", "ddspbench", "compress", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--method" in out.stdout
