"""What a compressor reports about a model: parameters, serialized bytes, measured speed.

All figures are measured on the spot. Parameters and bytes are the evaluation's own measurements
(:func:`suite.metrics.size.count_params`, which counts packed int8 and ONNX weights too, and
:func:`suite.metrics.size.serialized_bytes`, the real checkpoint file); ``measure_rtf`` times the real
model on one thread (median of repeats).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn

from ddspbench.suite.features import FRAME_RATE
from ddspbench.suite.metrics.size import serialized_bytes, total_params

__all__ = ["count_params", "serialized_bytes", "measure_rtf", "model_stats", "random_features"]

count_params = total_params
"""The total parameter count (an int): :func:`suite.metrics.size.total_params`."""


def random_features(batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Plausible random inputs: f0 in 100-800 Hz and loudness in -60..-10 dB, ``(batch, frames)``."""
    g = torch.Generator().manual_seed(seed)
    f0 = 100.0 + 700.0 * torch.rand(batch, frames, generator=g)
    loud = -60.0 + 50.0 * torch.rand(batch, frames, generator=g)
    return f0, loud


def measure_rtf(model: nn.Module, frames: int = 250, repeats: int = 5, threads: int = 1, warmup: int = 1) -> float:
    """Real-time factor (wall time / audio duration) of one offline call on ``frames`` frames.

    One clip, ``threads`` intra-op threads, fresh state per call; the median of ``repeats`` timed
    calls after ``warmup`` untimed ones.
    """
    f0, loud = random_features(1, frames)
    was_training = model.training
    model.eval()
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    times: list[float] = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                model(f0, loud)
                dt = time.perf_counter() - t0
                if i >= warmup:
                    times.append(dt)
    finally:
        torch.set_num_threads(old)
        model.train(was_training)
    return statistics.median(times) / (frames / FRAME_RATE)


def model_stats(model: nn.Module) -> dict[str, Any]:
    """``{"params", "bytes"}`` of a model (serialized bytes only for checkpointable models)."""
    out: dict[str, Any] = {"params": total_params(model)}
    if getattr(model, "family", None) and getattr(model, "config", None) is not None:
        out["bytes"] = serialized_bytes(model)
    return out
