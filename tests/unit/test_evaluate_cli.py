"""`ddspbench evaluate --frames` scores the same cropped clips a sweep scores (its data.frames)."""

from __future__ import annotations

import json

import pytest

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.data.store import save_dataset
from tests.unit.test_train import make_clips

pytestmark = pytest.mark.usefixtures("one_thread")


def _mss(capsys: pytest.CaptureFixture[str], *args: str) -> float:
    assert main(["evaluate", *args, "--metrics", "mss", "--json"]) == 0
    return float(json.loads(capsys.readouterr().out)["metrics"]["mss"])


def test_frames_crops_clips_like_a_sweep(tmp_path, capsys):
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES

    load_catalog()
    full = make_clips(3, frames=64, seed=2)
    save_dataset(tmp_path / "full", {"train": make_clips(2), "valid": make_clips(2, seed=1), "test": full}, {"name": "t"})
    save_dataset(tmp_path / "cut", {"train": make_clips(2), "valid": make_clips(2, seed=1), "test": full.crop(40)},
                 {"name": "t"})
    ckpt = str(save_checkpoint(SIZES.get("hpn/reduced")(), tmp_path / "m.pt", {"candidate_id": "m"}))
    cropped = _mss(capsys, "--model", ckpt, "--data", str(tmp_path / "full"), "--frames", "40")
    assert cropped == pytest.approx(_mss(capsys, "--model", ckpt, "--data", str(tmp_path / "cut")), rel=1e-6)
    assert cropped != pytest.approx(_mss(capsys, "--model", ckpt, "--data", str(tmp_path / "full")), rel=1e-3)
    assert main(["evaluate", "--model", ckpt, "--data", str(tmp_path / "full"), "--frames", "0"]) == 2
    assert "argument --frames: must be an integer in [4, 1000]" in capsys.readouterr().err


def test_clips_too_short_for_mss_are_a_one_line_user_error(tmp_path, capsys):
    # 16 frames = 1,024 samples: the 2,048-sample MSS window cannot reflect-pad them (was exit 1, "a bug")
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES

    load_catalog()
    save_dataset(tmp_path / "d", {"train": make_clips(2), "valid": make_clips(2, seed=1), "test": make_clips(2, frames=16)},
                 {"name": "t"})
    ckpt = str(save_checkpoint(SIZES.get("hpn/reduced")(), tmp_path / "m.pt", {"candidate_id": "m"}))
    assert main(["evaluate", "--model", ckpt, "--data", str(tmp_path / "d"), "--metrics", "mss"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: audio too short for MSS scale 2048: 1024 samples") and err.count("\n") == 1


@pytest.mark.parametrize("backend", ["onnxruntime", "torchscript"])
def test_speed_backend_times_the_deployed_artifact_and_says_so(tmp_path, capsys, backend):
    """`evaluate --speed-backend onnxruntime|torchscript` times the export artifact of an int8 candidate, per buffer,
    with the backend in every speed metric's definition and in the record's provenance."""
    from ddspbench.baselines.export import onnxruntime_available
    from ddspbench.compressors import quantize_int8
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES
    from tests.conftest import require_system

    if backend == "onnxruntime":
        require_system("onnx + onnxruntime", onnxruntime_available())
    load_catalog()
    save_dataset(tmp_path / "d", {"train": make_clips(2), "valid": make_clips(2, seed=1), "test": make_clips(2, frames=40)},
                 {"name": "t"})
    ckpt = str(save_checkpoint(quantize_int8(SIZES.get("ddx7/reduced")()), tmp_path / "m.pt", {"candidate_id": "m"}))
    assert main(["evaluate", "--model", ckpt, "--data", str(tmp_path / "d"), "--metrics", "stream", "--buffers", "64,256",
                 "--speed-backend", backend, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["provenance"]["speed_backend"] == backend
    for name in ("rtf_stream_64", "p99_ms_stream_64", "miss_rate_stream_64", "rtf_stream_256"):
        assert rec["metrics"][name] is not None and rec["metric_defs"][name].endswith(f"backend={backend}")
