"""Contract tests of the deployable artifacts (baselines/deploy.py, ``ddspbench export``): the written file
renders the eager model's audio buffer by buffer, for every family, fp32 / int8 / pruned, in every format;
a broken export (a dropped state, another noise seed) fails the parity check."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ddspbench import baselines  # noqa: F401  (registers the families)
from ddspbench.baselines import deploy
from ddspbench.baselines.export import onnxruntime_available
from ddspbench.baselines.native import native_available
from ddspbench.compressors import quantize_int8, structured_prune
from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.metrics.parity import parity_failures
from ddspbench.suite.registry import SIZES
from tests.conftest import require_system

pytestmark = pytest.mark.usefixtures("one_thread")

FAMILIES = ("hpn", "wavetable", "ddx7")
VARIANTS = ("fp32", "int8", "pruned")
FRAMES = 24
_MODELS: dict[tuple[str, str], nn.Module] = {}


def _need(fmt: str) -> None:
    if fmt == "onnx":
        require_system("onnx + onnxruntime", onnxruntime_available())
    if fmt == "engine":
        require_system("numba", native_available())


def _base(family: str) -> nn.Module:
    torch.manual_seed(0)
    model = SIZES.get(f"{family}/reduced")().eval()
    with torch.no_grad():
        model.reverb.wet.fill_(-1.0)  # a wet mix, so the reverb's delay line shapes the output
        for mod in model.decoder.modules():  # heads that vary with the input (the default init is nearly flat)
            if isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, std=0.2)
            elif isinstance(mod, nn.Conv1d):
                w = mod.parametrizations.weight.original1 if hasattr(mod, "parametrizations") else mod.weight
                nn.init.normal_(w, std=0.2)
    return model


def _model(family: str, variant: str) -> nn.Module:
    key = (family, variant)
    if key not in _MODELS:
        model = _base(family)
        if variant == "int8":
            model = quantize_int8(model)
        elif variant == "pruned":
            model = structured_prune(copy.deepcopy(model), 0.5).eval()
        _MODELS[key] = model
    return _MODELS[key]


def _controls(clips: int = 2, frames: int = FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(frames, dtype=torch.float32)
    f0 = torch.stack([220.0 * (k + 1) + 30.0 * torch.sin(t / 7.0) for k in range(clips)])
    f0[:, frames // 3: frames // 3 + 2] = 0.0  # unvoiced frames
    loud = torch.stack([-40.0 + 10.0 * torch.cos(t / (5.0 + k)) for k in range(clips)])
    return f0, loud


@pytest.mark.parametrize("fmt", deploy.FORMATS)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_export_passes_parity(tmp_path: Path, family: str, variant: str, fmt: str) -> None:
    _need(fmt)
    model = _model(family, variant)
    if variant == "pruned":
        assert model.size_name.endswith("pruned") or model.size_name == "custom"
    path = tmp_path / f"model.{fmt}"
    deploy.export_artifact(model, fmt, 1, path)
    stats = deploy.check_parity(model, deploy.open_artifact(path, fmt, 1), *_controls())
    assert stats["peak"] > 1e-2  # loud enough for the equality to mean something
    assert parity_failures(stats) == [], stats
    assert stats["max_err"] < 1e-5 and stats["snr_db"] > 90


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ("onnx", "torchscript"))
@pytest.mark.parametrize("family", FAMILIES)
def test_export_parity_at_longer_buffers(tmp_path: Path, family: str, fmt: str) -> None:
    _need(fmt)
    for fb in (4, 16):
        model = _model(family, "int8")
        path = tmp_path / f"model{fb}.{fmt}"
        deploy.export_artifact(model, fmt, fb, path)
        stats = deploy.check_parity(model, deploy.open_artifact(path, fmt), *_controls(frames=64))
        assert parity_failures(stats) == [], stats


class _DropsState:
    """A broken deployment: the runner's state is reset before every buffer (as a host that forgets it)."""

    def __init__(self, runner: object) -> None:
        self.runner = runner
        self.buffer_frames = runner.buffer_frames  # type: ignore[attr-defined]

    def reset(self, seed: object = None) -> None:
        self.runner.reset()  # type: ignore[attr-defined]

    def __call__(self, f0: torch.Tensor, loud: torch.Tensor) -> torch.Tensor:
        self.runner.reset()  # type: ignore[attr-defined]
        return self.runner(f0, loud)  # type: ignore[attr-defined,operator]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_dropped_state_fails_parity(tmp_path: Path, family: str) -> None:
    model = _model(family, "fp32")
    path = tmp_path / "model.torchscript"
    deploy.export_artifact(model, "torchscript", 1, path)
    stats = deploy.check_parity(model, _DropsState(deploy.open_artifact(path, "torchscript")), *_controls())
    failures = parity_failures(stats)
    assert failures and any(f.startswith("max_err") for f in failures), stats


def test_another_noise_seed_fails_parity(tmp_path: Path) -> None:
    model = _model("hpn", "fp32")
    path = tmp_path / "model.pt"
    deploy.export_artifact(model, "torchscript", 1, path, seed=5)  # the reference renders seed 0
    assert parity_failures(deploy.check_parity(model, deploy.open_artifact(path, "torchscript"), *_controls()))


def test_onnx_interface_file(tmp_path: Path) -> None:
    _need("onnx")
    path = tmp_path / "m.onnx"
    info = deploy.export_artifact(_model("ddx7", "int8"), "onnx", 2, path)
    saved = json.loads(Path(str(path) + ".json").read_text())
    assert saved == json.loads(json.dumps(info))
    assert saved["buffer_samples"] == 128 and saved["inputs"][0]["name"] == "f0_hz"
    assert saved["outputs"][0] == "audio" and len(saved["outputs"]) == len(saved["inputs"]) - 1
    import onnx

    int8 = [t for t in onnx.load(str(path)).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8, "the int8 candidate's weights stay int8 in the ONNX file"


def test_cli_export_and_its_broken_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from ddspbench.suite.cli import main

    ckpt = tmp_path / "m.pt"
    save_checkpoint(_model("ddx7", "fp32"), ckpt, {})
    out = tmp_path / "m.ts"
    args = ["export", "--model", str(ckpt), "--format", "torchscript", "--out", str(out), "--clips", "2", "--frames", "16"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("parity ok: torchscript ddx7/reduced float32 at 64 samples") and "\n" not in line
    assert json.loads(Path(str(out) + ".parity.json").read_text())["ok"] is True
    opened = deploy.open_artifact
    monkeypatch.setattr(deploy, "open_artifact", lambda *a, **k: _DropsState(opened(*a, **k)))
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("parity FAILED: torchscript ddx7/reduced") and "\n" not in err


def test_an_onnx_runtime_quantized_decoder_is_refused_in_one_line(tmp_path: Path) -> None:
    """The `onnx_int8` candidates (an ONNX Runtime session inside the decoder) have no portable step: refused, one line."""
    from ddspbench.compressors import quantize_onnx_int8
    from ddspbench.suite.errors import UserError

    _need("onnx")
    model = quantize_onnx_int8(_model("hpn", "fp32"))
    for fmt in ("onnx", "torchscript", "engine"):
        with pytest.raises(UserError) as err:
            deploy.export_artifact(model, fmt, 1, tmp_path / f"m.{fmt}")
        assert "\n" not in str(err.value) and "decoder" in str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", deploy.FORMATS)
@pytest.mark.parametrize("name", ["hpn/full", "wavetable/full", "ddx7/full"])
def test_full_sizes_int8_pass_parity(tmp_path: Path, name: str, fmt: str) -> None:
    _need(fmt)
    torch.manual_seed(0)
    model = quantize_int8(SIZES.get(name)().eval())
    path = tmp_path / f"model.{fmt}"
    deploy.export_artifact(model, fmt, 1, path)
    stats = deploy.check_parity(model, deploy.open_artifact(path, fmt, 1), *_controls(clips=1, frames=16))
    assert parity_failures(stats) == [], stats


def test_export_of_a_candidate_shows_in_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`export --results DIR --candidate ID` finds the checkpoint and the study's clips, and the report links the file."""
    from ddspbench import build_report, load_results
    from ddspbench.suite.cli import main
    from ddspbench.suite.data.store import save_dataset
    from tests.unit.test_train import make_clips

    results = tmp_path / "res"
    data = results / "cache" / "data" / "t-0123"  # where a sweep caches its dataset: found without --data
    save_dataset(data, {"train": make_clips(2), "valid": make_clips(2, seed=1), "test": make_clips(3, frames=40)},
                 {"name": "t"})
    ckpt = save_checkpoint(_model("hpn", "int8"), tmp_path / "m.pt", {"candidate_id": "m"})
    assert main(["evaluate", "--model", str(ckpt), "--data", str(data), "--metrics", "mss,size", "--out", str(results),
                 "--json"]) == 0
    capsys.readouterr()
    art = results / "m.ts"
    assert main(["export", "--results", str(results), "--candidate", "m", "--format", "torchscript", "--out", str(art),
                 "--clips", "2"]) == 0
    line = capsys.readouterr().out
    assert "hpn/reduced int8" in line and "2 test clips of t-0123" in line
    df = load_results(results)
    assert list(df["export"]) == [f"torchscript: {art.resolve()}"]
    md = build_report(results, tmp_path / "report", formats=("md",))["md"].read_text()
    assert "| export |" in md and str(art.resolve()) in md
