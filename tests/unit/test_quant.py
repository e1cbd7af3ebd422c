"""Quantization: real serialized size, fidelity to the float model, checkpoint round trips, chain order."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddspbench.compressors import count_params, parse_chain, quantize_bf16, quantize_int8, serialized_bytes
from ddspbench.compressors._base import CompressContext
from ddspbench.compressors.chain import get_compressor
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.checkpoint import load_checkpoint, save_checkpoint
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics.mss import mss
from ddspbench.suite.registry import FAMILIES, SIZES

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hpn_full() -> torch.nn.Module:
    load_catalog()
    torch.manual_seed(0)
    return SIZES.get("hpn/full")().eval()


@pytest.fixture(scope="module")
def hpn_int8(hpn_full: torch.nn.Module) -> torch.nn.Module:
    return quantize_int8(hpn_full)


def _inputs(frames: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.linspace(0, 1, frames)
    f0 = (220.0 * (1 + 0.5 * t))[None]
    loud = (-40.0 + 25.0 * torch.sin(6.28 * t))[None]
    return f0, loud


def _audio(model: torch.nn.Module, frames: int = 50) -> torch.Tensor:
    f0, loud = _inputs(frames)
    with torch.no_grad():
        return model(f0, loud, state=model.init_state(1, seed=7))["audio"]


def test_int8_hpn_full_is_at_most_a_third_of_fp32(hpn_full: torch.nn.Module, hpn_int8: torch.nn.Module) -> None:
    q = hpn_int8
    fp32, int8 = serialized_bytes(hpn_full), serialized_bytes(q)
    assert int8 <= fp32 / 3, f"int8 {int8} B vs fp32 {fp32} B"
    assert count_params(q) == count_params(hpn_full)  # the same weights, stored in int8


def test_int8_audio_is_close_to_fp32(hpn_full: torch.nn.Module, hpn_int8: torch.nn.Module) -> None:
    """MSS(int8 audio, fp32 audio) < 0.5 and under a tenth of the MSS between two differently seeded
    fp32 models of the same size (the scale of "a different model"); measured about 0.1 vs 5+."""
    q = hpn_int8
    ref = _audio(hpn_full)
    d_q = float(mss(ref, _audio(q)))
    torch.manual_seed(1)
    other = FAMILIES.get("hpn")(**hpn_full.config).eval()
    d_other = float(mss(ref, _audio(other)))
    assert d_q < 0.5, d_q
    assert d_q < 0.1 * d_other, (d_q, d_other)


def test_int8_round_trip_with_weights_only(hpn_int8: torch.nn.Module, tmp_path: Path) -> None:
    q = hpn_int8
    path = save_checkpoint(q, tmp_path / "q.pt")
    payload = torch.load(path, weights_only=True)  # plain tensors only
    stored = {k: v for k, v in payload["state_dict"].items() if k.endswith("_q")}
    assert stored and all(v.dtype == torch.int8 for v in stored.values())
    assert "decoder.gru.weight_hh_l0_q" in stored and "decoder.gru.weight_ih_l0_scale" in payload["state_dict"]
    loaded, _ = load_checkpoint(path)
    torch.testing.assert_close(_audio(loaded), _audio(q), rtol=0, atol=0)
    assert loaded.ddsp_transforms == [{"name": "int8_weights", "params": {}}]


def test_int8_is_symmetric_per_output_channel() -> None:
    """``q = round(w / s)``, ``s = max|w_row| / 127`` per output row; an all-zero row gets scale 1."""
    from ddspbench.baselines.stored import StoredLinear, quantize_rows

    torch.manual_seed(0)
    w = torch.randn(5, 7) * torch.tensor([1.0, 10.0, 0.01, 3.0, 0.0])[:, None]
    q, s = quantize_rows(w)
    assert q.dtype == torch.int8 and s.dtype == torch.float32 and s.shape == (5,)
    torch.testing.assert_close(s[:4], w[:4].abs().amax(1) / 127)
    assert s[4] == 1 and not q[4].any()
    assert (q[:4].abs().amax(1) == 127).all() and q.min() >= -127
    assert ((q.float() * s[:, None] - w).abs() <= s[:, None] / 2 + 1e-7).all()  # half a step at most
    lin = torch.nn.Linear(7, 5)
    with torch.no_grad():
        lin.weight.copy_(w)
    st = StoredLinear(lin, "int8")
    x = torch.randn(3, 7)
    torch.testing.assert_close(st(x), x @ (q.float() * s[:, None]).T + lin.bias)  # float32 compute


@pytest.mark.parametrize("name", ["ddx7/reduced", "wavetable/reduced"])
@pytest.mark.parametrize("method", ["int8", "bf16"])
def test_every_family_quantizes_and_round_trips(name: str, method: str, tmp_path: Path) -> None:
    """DDX7's convolutions are stored too (int8 used to be refused for DDX7: no Linear/GRU)."""
    load_catalog()
    torch.manual_seed(0)
    model = SIZES.get(name)().eval()
    res = get_compressor("quantize").compress(model, CompressContext(), method=method, measure_frames=0)
    q = res.model
    stored = [(k, p) for k, p in q.named_parameters() if k.endswith("_q")]
    want = torch.int8 if method == "int8" else torch.bfloat16
    assert stored and all(p.dtype == want and not p.requires_grad for _, p in stored)
    if name.startswith("ddx7"):
        assert any(".conv1." in k for k, _ in stored) and any(".residual." in k for k, _ in stored)
    # weight norm is folded into the stored weight: its per-channel gains are no longer separate parameters
    gains = sum(p.numel() for k, p in model.named_parameters() if k.endswith("weight.original0"))
    assert serialized_bytes(q) < serialized_bytes(model) and count_params(q) == count_params(model) - gains
    loaded, _ = load_checkpoint(save_checkpoint(q, tmp_path / "q.pt"))
    torch.testing.assert_close(_audio(loaded), _audio(q), rtol=0, atol=0)
    assert float(mss(_audio(model), _audio(q))) < 0.5


def test_loaded_int8_checkpoint_runs_on_the_native_engine(hpn_int8: torch.nn.Module, tmp_path: Path) -> None:
    from ddspbench.baselines.native import NativeEngine

    loaded, _ = load_checkpoint(save_checkpoint(hpn_int8, tmp_path / "q.pt"))
    f0, loud = _inputs(20)
    engine = NativeEngine(loaded, seed=7)
    assert engine.storage == "int8"
    ref = _audio(loaded, 20).numpy()
    assert abs(engine(f0, loud) - ref).max() <= 1e-5 * abs(ref).max()


def test_bf16_round_trip_and_fidelity(tmp_path: Path) -> None:
    load_catalog()
    torch.manual_seed(0)
    model = FAMILIES.get("hpn")(hidden=64).eval()
    b = quantize_bf16(model)
    assert serialized_bytes(b) < serialized_bytes(model)
    assert b.decoder.gru.weight_ih_l0_q.dtype == torch.bfloat16
    assert b.decoder.gru.weight_ih_l0.dtype == torch.float32  # computed in float32
    assert b.reverb.noise.dtype == torch.float32  # the synth stays float32
    loaded, _ = load_checkpoint(save_checkpoint(b, tmp_path / "b.pt"))
    torch.testing.assert_close(_audio(loaded), _audio(b), rtol=0, atol=0)
    assert float(mss(_audio(model), _audio(b))) < 0.5


def test_quantize_must_be_last_in_a_chain() -> None:
    with pytest.raises(UserError, match="last step"):
        parse_chain("quantize+kd_audio")
    with pytest.raises(UserError, match="unknown compressor"):
        parse_chain("prune+nonsense")
    assert [n for n, _ in parse_chain("prune+kd_audio+quantize")] == ["prune", "kd_audio", "quantize"]


def test_quantizing_twice_is_refused() -> None:
    load_catalog()
    model = FAMILIES.get("hpn")(hidden=8).eval()
    q = quantize_int8(model)
    ctx = CompressContext(candidate=q)
    with pytest.raises(UserError, match="already quantized"):
        get_compressor("quantize").compress(model, ctx, measure_frames=0)


def test_quantize_reports_measured_speed() -> None:
    load_catalog()
    model = FAMILIES.get("hpn")(hidden=16).eval()
    res = get_compressor("quantize").compress(model, CompressContext(), measure_frames=20, measure_repeats=1)
    rtf = res.description["rtf"]
    assert rtf["before"] > 0 and rtf["after"] > 0 and rtf["threads"] == 1
    assert res.description["after"]["bytes"] < res.description["before"]["bytes"]


def test_onnx_int8_round_trip_and_fidelity(tmp_path: Path) -> None:
    from ddspbench.compressors import onnx_available, quantize_onnx_int8
    from tests.conftest import require_system

    require_system("onnx + onnxruntime (pip install 'ddspbench[onnx]')", onnx_available())
    load_catalog()
    torch.manual_seed(0)
    model = FAMILIES.get("hpn")(hidden=32).eval()
    o = quantize_onnx_int8(model)
    assert type(o.decoder).__name__ == "OrtDecoder"
    assert abs(count_params(o) - count_params(model)) < 0.02 * count_params(model)
    loaded, _ = load_checkpoint(save_checkpoint(o, tmp_path / "o.pt"))
    torch.testing.assert_close(_audio(loaded), _audio(o), rtol=0, atol=0)
    assert float(mss(_audio(model), _audio(o))) < 1.0
    res = get_compressor("quantize").compress(model, CompressContext(), method="onnx_int8", measure_frames=16, measure_repeats=1)
    assert res.description["transform"] == "onnx_int8_decoder" and res.description["rtf"]["after"] > 0
