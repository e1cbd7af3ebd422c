"""Size, FLOPs and memory metrics (suite.metrics.size, suite.metrics.memory)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from suite.checkpoint import save_checkpoint
from suite.metrics.memory import checkpoint_bytes, param_bytes, peak_inference_memory
from suite.metrics.size import count_params, decoder_flops
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
