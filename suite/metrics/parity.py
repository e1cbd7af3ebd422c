"""Parity of an exported model with its eager reference: does the deployed artifact sound the same?

Pure functions on rendered audio: ``out`` (the artifact, rendered buffer by buffer with its state
carried) and ``ref`` (the eager model, or the engine, on the same controls and noise seed), both
``(clips, samples)``. Measured (:func:`parity_stats`):

- ``max_err``: ``max |out - ref|`` relative to ``max |ref|`` (the peak);
- ``snr_db``: ``10 log10(sum ref^2 / sum (out - ref)^2)`` over all clips (``inf`` when equal);
- ``mss_diff``: the multi-scale spectral distance (:func:`suite.metrics.mss.mss`) between ``out`` and
  ``ref`` (0 when equal; clips shorter than 2048 samples use the scales that fit);
- ``click_ratio``: a click detector at the buffer boundaries. With ``d`` the first difference of the
  audio, the mean ``d^2`` across the boundaries between buffers (``out[k b] - out[k b - 1]``) over
  the mean ``d^2`` everywhere else, for ``out`` divided by the same ratio for ``ref`` (the reference
  has no buffers; a carried state that breaks makes jumps at exactly those samples; 1 when equal).

:data:`TOLERANCES` is what an export must meet (docs/CONTRACTS.md): float rounding passes with two
or more orders of magnitude to spare, a wrong sample, a dropped or reset state, a different noise
seed or a wrong weight fails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ddspbench.suite.metrics.mss import DEFAULT_SCALES, mss

__all__ = ["TOLERANCES", "parity_stats", "parity_failures", "parity_line"]

TOLERANCES: dict[str, tuple[str, float]] = {
    "max_err": ("<=", 1e-4),
    "snr_db": (">=", 60.0),
    "mss_diff": ("<=", 0.05),
    "click_ratio": ("<=", 1.5),
}
"""Measured on every family, fp32/int8/bf16 and pruned, ONNX Runtime, TorchScript and the engine:
max_err 2e-7..1.3e-6, SNR above 115 dB, MSS difference below 1e-3, click ratio 1.00 (tests/contract/test_deploy.py)."""


def _click(audio: np.ndarray, buffer: int) -> float:
    d = np.diff(audio.astype(np.float64), axis=-1)  # d[i] = x[i+1] - x[i]
    at = np.zeros(d.shape[-1], dtype=bool)
    at[buffer - 1:: buffer] = True  # x[k b] - x[k b - 1]
    if not at.any() or at.all():
        return 1.0
    inside = float(np.mean(d[..., ~at] ** 2))
    return float(np.mean(d[..., at] ** 2)) / inside if inside > 0 else math.inf


def parity_stats(out: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, buffer: int) -> dict[str, float]:
    """``max_err``, ``snr_db``, ``mss_diff``, ``click_ratio`` (see the module docstring) and ``peak``.

    Args:
        out: the artifact's audio ``(clips, samples)``, rendered in buffers of ``buffer`` samples.
        ref: the reference audio, same shape.
        buffer: samples per buffer.
    """
    a = np.asarray(out, dtype=np.float64).reshape(-1, np.shape(out)[-1])
    r = np.asarray(ref, dtype=np.float64).reshape(-1, np.shape(ref)[-1])
    if a.shape != r.shape:
        raise ValueError(f"parity: output {a.shape} and reference {r.shape} differ in shape")
    peak = float(np.abs(r).max())
    err = a - r
    noise = float(np.sum(err**2))
    snr = math.inf if noise == 0 else 10.0 * math.log10(float(np.sum(r**2)) / noise) if np.any(r) else -math.inf
    scales = tuple(s for s in DEFAULT_SCALES if s // 2 < a.shape[-1])  # short clips: the scales that fit
    with torch.no_grad():
        mss_diff = float(mss(torch.from_numpy(a).float(), torch.from_numpy(r).float(), scales)) if scales else 0.0
    ref_click = _click(r, buffer)
    return {
        "max_err": float(np.abs(err).max()) / peak if peak > 0 else (0.0 if not err.any() else math.inf),
        "snr_db": snr,
        "mss_diff": mss_diff,
        "click_ratio": _click(a, buffer) / ref_click if ref_click > 0 else 1.0,
        "peak": peak,
    }


def parity_failures(stats: dict[str, Any], tolerances: dict[str, tuple[str, float]] = TOLERANCES) -> list[str]:
    """The measures outside their tolerance, as ``"name value (limit <op> x)"`` (empty: parity holds)."""
    bad = []
    for name, (op, limit) in tolerances.items():
        value = float(stats[name])
        ok = value <= limit if op == "<=" else value >= limit
        if not ok or math.isnan(value):
            bad.append(f"{name} {value:.3g} (must be {op} {limit:g})")
    return bad


def parity_line(stats: dict[str, Any]) -> str:
    """The four measures in one line."""
    return (f"max err {stats['max_err']:.2g} of peak, SNR {stats['snr_db']:.1f} dB, MSS diff {stats['mss_diff']:.2g}, "
            f"boundary clicks {stats['click_ratio']:.2f}x")
