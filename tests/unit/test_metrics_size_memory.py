"""Size, FLOPs and memory metrics (suite.metrics.size, suite.metrics.memory)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.metrics.memory import checkpoint_bytes, param_bytes, peak_inference_memory
from ddspbench.suite.metrics.size import count_params, decoder_flops
from tests.unit.test_metrics_toys import ToyBigActivation, ToyLinear, toy_families  # noqa: F401


def _quantize(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.GRU}, torch.qint8)


def test_four_times_the_parameters_gives_four_times_the_bytes() -> None:
    small, big = nn.Linear(64, 64, bias=False), nn.Linear(128, 128, bias=False)
    assert count_params(big)["params"] == 4 * count_params(small)["params"]
    assert param_bytes(big) == 4 * param_bytes(small) == 4 * 64 * 64 * 4
    # buffers count, shared tensors once
    bn = nn.BatchNorm1d(10)
    assert param_bytes(bn) == (10 + 10 + 10 + 10) * 4 + 8  # weight, bias, running mean/var, num_batches_tracked
    tied = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    tied[1].weight = tied[0].weight
    assert param_bytes(tied) == (64 + 8 + 8) * 4


def test_quantized_model_keeps_its_count_and_shrinks_its_bytes() -> None:
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64))
    q = _quantize(model)
    assert count_params(q)["params"] == count_params(model)["params"]
    assert param_bytes(q) < 0.4 * param_bytes(model)


def test_flops_are_counted_by_the_counter_and_formula() -> None:
    model = ToyLinear(width=16)
    fl = decoder_flops(model, frames=250)  # one second
    per_frame = 2 * (2 * 16 + 16 * 16 + 16 * 1)
    assert fl["flops_per_s"] == pytest.approx(250 * per_frame)
    assert fl["scope"] == "decoder" and "synth" in fl["not_counted"]
    # int8 layers are counted as their float equivalents
    q = _quantize(ToyLinear(width=16))
    assert decoder_flops(q, frames=250)["flops_per_s"] == pytest.approx(250 * per_frame)


def test_gru_flops_equal_the_formula_float_and_quantized() -> None:
    class GRUDecoderModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = nn.GRU(8, 16, batch_first=True)

        def forward(self, f0: torch.Tensor, loud: torch.Tensor) -> dict[str, torch.Tensor]:
            x = torch.stack([f0, loud], -1).repeat(1, 1, 4)
            return {"audio": self.decoder(x)[0]}

    expected = 250 * 2 * 3 * 16 * (8 + 16)
    assert decoder_flops(GRUDecoderModel(), frames=250)["flops_per_s"] == pytest.approx(expected)
    assert decoder_flops(_quantize(GRUDecoderModel()), frames=250)["flops_per_s"] == pytest.approx(expected)


def test_checkpoint_bytes(tmp_path: Path, toy_families: None) -> None:  # noqa: F811
    small = save_checkpoint(ToyLinear(width=8), tmp_path / "s.pt")
    big = save_checkpoint(ToyLinear(width=128), tmp_path / "b.pt")
    assert checkpoint_bytes(big) > checkpoint_bytes(small) + 128 * 128 * 4 * 0.9
    assert checkpoint_bytes(small) == small.stat().st_size


@pytest.mark.slow
def test_peak_memory_of_a_big_activation_exceeds_a_small_one(tmp_path: Path, toy_families: None) -> None:  # noqa: F811
    small = save_checkpoint(ToyBigActivation(act_mb=2), tmp_path / "small.pt")
    big = save_checkpoint(ToyBigActivation(act_mb=200), tmp_path / "big.pt")
    plugins = ["tests.unit.test_metrics_toys"]
    m_small = peak_inference_memory(small, frames=50, plugins=plugins)
    m_big = peak_inference_memory(big, frames=50, plugins=plugins)
    assert m_big["peak_mem_bytes"] > m_small["peak_mem_bytes"] + 150 * 1024 * 1024
    # The toy holds two 200 MiB tensors at once (torch.ones and its product): the activation, not the process.
    assert m_big["peak_mem_bytes"] <= 2 * 200 * 1024 * 1024 + 64 * 1024 * 1024
    assert m_small["baseline_bytes"] > 0


@pytest.mark.slow
def test_peak_memory_reports_a_bad_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(RuntimeError, match="not a loadable checkpoint"):
        peak_inference_memory(bad)


# -- memory as deployed on the native engine ----------------------------------------------------------


def _tiny_hpn() -> nn.Module:
    from ddspbench.baselines.hpn import HarmonicPlusNoise

    torch.manual_seed(0)
    return HarmonicPlusNoise(hidden=4, n_harmonics=3, n_bands=2).eval()


def test_engine_bytes_equals_a_hand_count_on_a_tiny_model() -> None:
    """HpN hidden=4, 3 harmonics, 2 noise bands, one stream, 64-sample buffers (1 frame), counted by hand."""
    from ddspbench.compressors import quantize_int8
    from ddspbench.suite.metrics.memory import engine_bytes

    # weight matrices: f0 and loudness MLPs 1->4->4->4 (36 each), GRU ih 12x8 + hh 12x4 (144),
    # output MLP 6->4->4->4 (56), heads 6x4 (24): 296 weights
    matrices = 2 * (4 + 16 + 16) + 12 * 8 + 12 * 4 + (24 + 16 + 16) + 6 * 4
    # float32 rest: 9 MLP layers x (bias, LayerNorm gain and bias) of 4, GRU biases 2 x 12, head biases 6
    rest = 9 * 3 * 4 + 2 * 12 + 6
    table = (3 + 3 + 1 + 3 + 1) * 8 * 8  # 11 layer-table rows of 8 int64
    constants = 250 * 144 * 4 + 16000 * 4 + 6 * 8 + 2 * 64 * 4 + 1 * 4  # reverb spectra, impulse, meta, noise FIR, tables
    state = 4 * 4 + 4 + 8 + 8 + 8 + 64 * 4 + 250 * 144 * 4 + 8  # GRU h, f0, phase, noise key, frame, reverb prev/ring/pos
    io = 2 * 4 + 64 * 4  # f0 and loudness in, audio out
    reverb = 2 * 128 * 8 + 144 * 4  # FFT re/im (float64), spectral sum
    synth = (2 + 6 * 64 + 1 + 2 * 3 + 2 + 1) * 4 + 256 * 4 + 64 * 8  # frame buffers, controls; noise FIR; harmonic sum
    decoder = (2 + 9 * 4 + 8 + 12 + 4 + 2 + 6) * 4 + 12 * 4  # inputs, MLP outputs, concat, GI, GRU out, heads; gates
    scratch = io + reverb + synth + decoder

    got = engine_bytes(_tiny_hpn(), 64)
    assert got == {"weights": matrices * 4 + rest * 4 + table, "constants": constants, "state": state,
                   "scratch": scratch, "total": matrices * 4 + rest * 4 + table + constants + state + scratch}
    q = engine_bytes(quantize_int8(_tiny_hpn()), 64)
    scales = 9 * 4 + 2 * 12 + 6  # one float32 scale per output row
    assert q["weights"] == matrices * 1 + (rest + scales) * 4 + table
    assert q["state"] == state and q["constants"] == constants
    assert engine_bytes(_tiny_hpn(), 256)["scratch"] > scratch  # scratch grows with the buffer


def test_engine_bytes_int8_hpn_full_is_a_quarter_of_the_weights() -> None:
    from ddspbench.compressors import quantize_int8
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.metrics.memory import engine_bytes
    from ddspbench.suite.registry import SIZES

    load_catalog()
    model = SIZES.get("hpn/full")().eval()
    fp, q = engine_bytes(model), engine_bytes(quantize_int8(model))
    assert 17.0e6 < fp["weights"] < 17.4e6  # the 17.2 MB a float32 frame reads
    assert 0.25 <= q["weights"] / fp["weights"] < 0.26


def test_engine_bytes_refuses_what_the_engine_cannot_run() -> None:
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.metrics.memory import engine_bytes

    with pytest.raises(UserError, match="is not a family model"):
        engine_bytes(nn.Linear(2, 2))


@pytest.mark.slow
def test_peak_rss_of_engine_streaming_counts_everything(tmp_path: Path) -> None:
    """No baseline subtracted: a fresh Python process with torch and numba is hundreds of MB."""
    from ddspbench.suite.metrics.memory import peak_engine_rss

    path = save_checkpoint(_tiny_hpn(), tmp_path / "tiny.pt")
    res = peak_engine_rss(path, frames=100)
    assert res["peak_rss_bytes"] > 100e6 and res["buffer"] == 64 and res["peak_source"] in ("memory_profiler", "VmHWM")
