"""Contract tests of the exported inference path (baselines/export.py): same audio as the eager forward."""

from __future__ import annotations

import pytest
import torch

from ddspbench import baselines  # noqa: F401  (registers the families)
from ddspbench.baselines import export as export_mod
from ddspbench.baselines.export import export_offline, export_streaming
from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import SIZES

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

FRAMES = 24
TOL = 1e-4  # max |exported - eager| relative to the peak of the eager offline audio
REDUCED = [name for name in SIZES.list() if name.endswith("/reduced")]
_MODELS: dict[str, torch.nn.Module] = {}


def _model(name: str) -> torch.nn.Module:
    if name not in _MODELS:
        torch.manual_seed(0)
        model = SIZES.get(name)().eval()
        with torch.no_grad():  # a non-zero wet mix, so the reverb's delay line shapes the output
            model.reverb.wet.fill_(-1.0)
        _MODELS[name] = model
    return _MODELS[name]


def _inputs(frames: int = FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(frames, dtype=torch.float32)
    f0 = (220.0 + 30.0 * torch.sin(t / 7.0))[None]
    f0[:, frames // 3: frames // 3 + 2] = 0.0  # unvoiced frames
    loud = (-40.0 + 10.0 * torch.cos(t / 5.0))[None]
    return f0, loud


def _eager(model: torch.nn.Module, f0: torch.Tensor, loud: torch.Tensor, seed: int = 0) -> torch.Tensor:
    with torch.no_grad():
        return model(f0, loud, model.init_state(f0.shape[0], seed=seed))["audio"]


def _stream(runner: export_mod.StreamingRunner, f0: torch.Tensor, loud: torch.Tensor) -> torch.Tensor:
    fb = runner.buffer_frames
    return torch.cat([runner(f0[:, i: i + fb], loud[:, i: i + fb]) for i in range(0, f0.shape[1], fb)], dim=-1)


def _rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("buffer_frames", [1, 4])
@pytest.mark.parametrize("name", REDUCED)
def test_torchscript_stream_equals_eager_offline(name: str, buffer_frames: int) -> None:
    model = _model(name)
    f0, loud = _inputs()
    ref = _eager(model, f0, loud)
    runner = export_streaming(model, buffer_frames, "torchscript", seed=0)
    out = _stream(runner, f0, loud)
    assert out.shape == ref.shape
    assert _rel_err(out, ref) < TOL
    # The state is carried: the stream's last buffer differs from the same buffer rendered from a fresh state.
    fb = buffer_frames
    fresh = export_streaming(model, fb, "torchscript", seed=0)
    last = fresh(f0[:, -fb:], loud[:, -fb:])
    assert float((last - out[:, -64 * fb:]).abs().max()) > 1e-3 * float(ref.abs().max())
    # A second runner, and a reset runner, restart from a fresh state.
    runner.reset()
    assert _rel_err(_stream(runner, f0, loud), ref) < TOL
    assert _rel_err(_stream(export_streaming(model, fb, "torchscript", seed=0), f0, loud), ref) < TOL


@pytest.mark.parametrize("name", REDUCED)
def test_offline_export_equals_eager(name: str) -> None:
    model = _model(name)
    f0, loud = _inputs()
    render = export_offline(model, FRAMES)
    ref = _eager(model, f0, loud)
    assert _rel_err(render(f0, loud), ref) < TOL
    assert _rel_err(render(f0, loud), ref) < TOL  # every call starts fresh


def test_seed_changes_the_noise_and_state_view() -> None:
    model = _model("hpn/reduced")
    f0, loud = _inputs()
    runner = export_streaming(model, 4, seed=3)
    out = _stream(runner, f0, loud)
    assert _rel_err(out, _eager(model, f0, loud, seed=3)) < TOL
    assert _rel_err(out, _eager(model, f0, loud, seed=0)) > 1e-3
    state = runner.state()
    assert int(state["frame"]) == FRAMES and state["gru"].shape == (1, 1, 16)


def test_wrong_buffer_shape_is_a_user_error() -> None:
    runner = export_streaming(_model("ddx7/reduced"), 2)
    f0, loud = _inputs(4)
    with pytest.raises(UserError, match=r"\(batch, frames\) = \(1, 2\)"):
        runner(f0, loud)


def test_unknown_backend_and_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model("hpn/reduced")
    with pytest.raises(UserError, match="unknown backend"):
        export_streaming(model, 1, "tensorrt")
    monkeypatch.setattr(export_mod, "onnxruntime_available", lambda: False)
    with pytest.raises(UserError, match="needs onnx and onnxruntime") as err:
        export_streaming(model, 1, "onnxruntime")
    assert "\n" not in str(err.value)


def test_quantized_model_is_refused() -> None:
    from ddspbench.compressors import quantize_int8

    model = quantize_int8(_model("hpn/reduced"))
    with pytest.raises(UserError, match="quantized") as err:
        export_streaming(model, 1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", REDUCED)
def test_onnxruntime_stream_equals_eager_offline(name: str) -> None:
    """The onnxruntime backend runs the portable step (baselines/portable.py): the eager audio, int8 too."""
    from ddspbench.compressors import quantize_int8
    from tests.conftest import require_system

    require_system("onnx + onnxruntime", export_mod.onnxruntime_available())
    f0, loud = _inputs()
    for model in (_model(name), quantize_int8(_model(name))):
        runner = export_streaming(model, 4, "onnxruntime", seed=0)
        assert _rel_err(_stream(runner, f0, loud), _eager(model, f0, loud)) < TOL


def test_speed_metric_backend_option() -> None:
    """``measure_speed(backend="torchscript")`` times the exported path; the default stays eager."""
    from ddspbench.suite.metrics.speed import measure_speed

    model = _model("hpn/reduced")
    kw = {"buffers": (64, 256), "frames": 16, "repeats": 2, "min_buffers": 4, "budget_s": 1.0}
    eager = measure_speed(model, **kw)  # type: ignore[arg-type]
    ts = measure_speed(model, backend="torchscript", **kw)  # type: ignore[arg-type]
    assert eager["provenance"]["backend"] == "eager" and ts["provenance"]["backend"] == "torchscript"
    for res in (eager, ts):
        assert res["offline"]["rtf"] > 0 and set(res["stream"]) == {64, 256}
        assert all(v["rtf"] > 0 and v["buffers"] >= 4 for v in res["stream"].values())
    with pytest.raises(UserError, match="unknown backend"):
        measure_speed(model, backend="tvm", **kw)  # type: ignore[arg-type]


def test_speed_backends_time_the_artifacts_of_int8_models() -> None:
    """torchscript and onnxruntime time the export command's artifacts, which run int8-stored weights."""
    from ddspbench.compressors import quantize_int8
    from ddspbench.suite.metrics.speed import measure_speed
    from tests.conftest import require_system

    require_system("onnx + onnxruntime", export_mod.onnxruntime_available())
    model = quantize_int8(_model("ddx7/reduced"))
    for backend in ("torchscript", "onnxruntime"):
        res = measure_speed(model, buffers=(64,), frames=16, repeats=2, min_buffers=4, budget_s=1.0, backend=backend)
        assert res["provenance"]["backend"] == backend and res["stream"][64]["rtf"] > 0
        assert 0 <= res["stream"][64]["miss_rate"] <= 1 and res["stream"][64]["p99_ms"] > 0


@pytest.mark.parametrize("name", REDUCED)
def test_native_backend_streams_the_eager_audio(name: str) -> None:
    model = _model(name)
    f0, loud = _inputs()
    ref = _eager(model, f0, loud)
    runner = export_streaming(model, 4, "native", seed=0)
    assert _rel_err(_stream(runner, f0, loud), ref) < TOL
    runner.reset()  # a fresh stream renders the same audio again
    assert _rel_err(_stream(runner, f0, loud), ref) < TOL
    render = export_offline(model, FRAMES, "native")
    assert _rel_err(render(f0, loud), ref) < TOL


def test_native_backend_in_the_speed_metric() -> None:
    from ddspbench.suite.metrics.speed import measure_speed

    model = _model("hpn/reduced")
    f0, loud = _inputs(40)
    res = measure_speed(model, buffers=[64, 256], inputs=(f0, loud), backend="native", repeats=2, min_buffers=20,
                        budget_s=5.0)
    assert res["provenance"]["backend"] == "native"
    assert 0 < res["offline"]["rtf"] < 10
    assert set(res["stream"]) == {64, 256} and all(0 < s["rtf"] < 10 for s in res["stream"].values())
