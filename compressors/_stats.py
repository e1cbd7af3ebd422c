"""What a compressor reports about a model: parameters, serialized bytes, measured speed.

All figures are measured on the spot: ``serialized_bytes`` writes the real checkpoint to a temporary
file; ``measure_rtf`` times the real model on one thread (median of repeats). Dynamic-int8 layers keep
their weights outside ``parameters()``, so :func:`count_params` counts their packed weights too.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["count_params", "serialized_bytes", "measure_rtf", "model_stats", "random_features"]


def _packed_numel(module: nn.Module) -> int:
    """Elements of the weights and biases a dynamically quantized Linear/GRU keeps packed (else 0)."""
    qdyn = torch.ao.nn.quantized.dynamic
    if isinstance(module, qdyn.Linear):
        w, b = module._weight_bias()
        return int(w.numel() + (b.numel() if b is not None else 0))
    if isinstance(module, qdyn.GRU):
        got = module._weight_bias()
        return int(sum(t.numel() for part in got.values() for t in part.values() if t is not None))
    return 0


def count_params(model: nn.Module) -> int:
    """Parameters of a model, including the packed weights of dynamically quantized layers."""
    n = sum(p.numel() for p in model.parameters())
    for m in model.modules():
        n += _packed_numel(m)
        extra = getattr(m, "extra_param_count", None)  # e.g. a decoder held by an ONNX Runtime session
        if callable(extra):
            n += int(extra())
    return int(n)


def serialized_bytes(model: nn.Module) -> int:
    """Size in bytes of the model's real checkpoint file (:func:`suite.checkpoint.save_checkpoint`)."""
    from suite.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory(prefix="ddspbench-size-") as tmp:
        path = save_checkpoint(model, Path(tmp) / "model.pt")
        return int(os.path.getsize(path))


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
    from suite.features import FRAME_RATE

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
    out: dict[str, Any] = {"params": count_params(model)}
    if getattr(model, "family", None) and getattr(model, "config", None) is not None:
        out["bytes"] = serialized_bytes(model)
    return out
