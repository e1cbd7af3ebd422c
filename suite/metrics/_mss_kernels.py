"""Compiled (numba) kernel for the MSS training loss on CPU: one pass per scale over both spectra.

Per STFT scale, :func:`suite.metrics.mss.mss_per_clip` with autograd costs about twenty elementwise
passes over the spectra (magnitudes, logs, differences, means, and in the backward ``sgn``, divisions,
fills and sums). :func:`spectral_distance` does the forward sums and the gradient with respect to
the predicted spectrum in one pass (float32 element maths as torch does it, float64 sums), and the
backward is one multiplication; the STFT and its backward stay torch's.

Gradient (torch's convention for a complex input: ``dL/dRe + i dL/dIm``), for ``S = |X|``::

    dL/dX_p = (sign(S_p - S_t) - sign(log(S_t + eps) - log(S_p + eps)) / (S_p + eps)) * X_p / S_p / count

(``0`` where ``S_p = 0``, like ``abs``' subgradient), ``count`` the bins of one clip.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numba import njit
from torch import Tensor

from ddspbench.suite.threads import run_batch_split

__all__ = ["spectral_distance", "use_kernel"]

_EPS = np.float32(1e-7)


@njit(cache=True, nogil=True)
def _distance(target: np.ndarray, pred: np.ndarray, grad: np.ndarray, sums: np.ndarray,
              b0: int, b1: int) -> None:  # pragma: no cover
    """``target``, ``pred`` ``(B, R, C, 2)`` float32 (re, im; any strides); fills ``grad (B, R, C, 2)`` and ``sums (B, 2)``."""
    _, rows, cols, _ = target.shape
    eps = _EPS
    for b in range(b0, b1):
        lin = 0.0
        lg = 0.0
        for r in range(rows):
            for j in range(cols):
                tr = target[b, r, j, 0]
                ti = target[b, r, j, 1]
                pr = pred[b, r, j, 0]
                pi = pred[b, r, j, 1]
                st = np.float32(math.sqrt(tr * tr + ti * ti))
                sp = np.float32(math.sqrt(pr * pr + pi * pi))
                d = st - sp
                ld = np.float32(math.log(st + eps)) - np.float32(math.log(sp + eps))
                lin += float(abs(d))
                lg += float(abs(ld))
                if sp > 0:
                    gs = (-np.sign(d) - np.sign(ld) / (sp + eps)) / sp
                    grad[b, r, j, 0] = gs * pr
                    grad[b, r, j, 1] = gs * pi
                else:
                    grad[b, r, j, 0] = 0.0
                    grad[b, r, j, 1] = 0.0
        sums[b, 0] = lin
        sums[b, 1] = lg


class _SpectralDistance(torch.autograd.Function):
    """Per-clip ``mean|S_t - S_p| + mean|log(S_t + eps) - log(S_p + eps)|``; gradient for the predicted spectrum."""

    @staticmethod
    def forward(ctx: Any, pred: Tensor, target: Tensor) -> Tensor:  # type: ignore[override]
        b = pred.shape[0]
        p, t = pred.detach(), target.detach()
        swap = p.stride(-1) > p.stride(-2)  # walk the bins in memory order (the sums do not depend on it)
        if swap:
            p, t = p.transpose(-1, -2), t.transpose(-1, -2)
        pa, ta = torch.view_as_real(p).numpy(), torch.view_as_real(t).numpy()
        grad = torch.empty(pa.shape, dtype=torch.float32)
        sums = np.empty((b, 2), dtype=np.float64)
        run_batch_split(_distance, b, ta, pa, grad.numpy(), sums)
        count = pa.shape[1] * pa.shape[2]
        g = torch.view_as_complex(grad)
        ctx.save_for_backward(g.transpose(-1, -2) if swap else g)
        ctx.count = count
        return torch.from_numpy((sums.sum(1) / count).astype(np.float32))

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        scale = (grad_out.to(torch.float32) / ctx.count).view(-1, *([1] * (grad.dim() - 1)))
        return grad * scale, None


def use_kernel(target: Tensor, pred: Tensor) -> bool:
    """The kernel serves training: CPU float32 audio, a gradient wanted for ``pred`` only."""
    return (torch.is_grad_enabled() and pred.requires_grad and not target.requires_grad
            and pred.device.type == "cpu" and target.device.type == "cpu"
            and pred.dtype == torch.float32 and target.dtype == torch.float32)


def spectral_distance(target_spec: Tensor, pred_spec: Tensor) -> Tensor:
    """Per-clip distance of two complex64 spectra ``(B, F, T)`` of the same layout (differentiable in ``pred_spec``)."""
    return _SpectralDistance.apply(pred_spec, target_spec)  # type: ignore[no-any-return]


@njit(cache=True, nogil=True)
def _stats(target: np.ndarray, mag: np.ndarray, logm: np.ndarray, b0: int, b1: int) -> None:  # pragma: no cover
    """``target`` ``(B, R, C, 2)`` float32 -> ``mag = |target|`` and ``logm = log(mag + eps)`` ``(B, R, C)`` float32, the
    same float32 element maths as :func:`_distance` does for its target."""
    _, rows, cols, _ = target.shape
    eps = _EPS
    for b in range(b0, b1):
        for r in range(rows):
            for j in range(cols):
                tr = target[b, r, j, 0]
                ti = target[b, r, j, 1]
                st = np.float32(math.sqrt(tr * tr + ti * ti))
                mag[b, r, j] = st
                logm[b, r, j] = np.float32(math.log(st + eps))


@njit(cache=True, nogil=True)
def _distance_stats(mag: np.ndarray, logm: np.ndarray, pred: np.ndarray, grad: np.ndarray, sums: np.ndarray,
                    b0: int, b1: int) -> None:  # pragma: no cover
    """:func:`_distance` with the target's magnitude and log-magnitude given (:func:`_stats`): the same sums and gradient."""
    _, rows, cols, _ = pred.shape
    eps = _EPS
    for b in range(b0, b1):
        lin = 0.0
        lg = 0.0
        for r in range(rows):
            for j in range(cols):
                pr = pred[b, r, j, 0]
                pi = pred[b, r, j, 1]
                st = mag[b, r, j]
                sp = np.float32(math.sqrt(pr * pr + pi * pi))
                d = st - sp
                ld = logm[b, r, j] - np.float32(math.log(sp + eps))
                lin += float(abs(d))
                lg += float(abs(ld))
                if sp > 0:
                    gs = (-np.sign(d) - np.sign(ld) / (sp + eps)) / sp
                    grad[b, r, j, 0] = gs * pr
                    grad[b, r, j, 1] = gs * pi
                else:
                    grad[b, r, j, 0] = 0.0
                    grad[b, r, j, 1] = 0.0
        sums[b, 0] = lin
        sums[b, 1] = lg


def walk_order(spec: Tensor) -> tuple[Tensor, bool]:
    """``spec`` ``(B, F, T)`` as the kernels walk it (transposed when its last axis is not the faster one) and whether
    it was transposed."""
    swap = spec.stride(-1) > spec.stride(-2)
    return (spec.transpose(-1, -2) if swap else spec), swap


def target_stats(target_spec: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude and log-magnitude ``(B, R, C)`` float32 of a complex64 target spectrum ``(B, F, T)``, in the kernels'
    walk order (:func:`walk_order`): what :func:`spectral_distance_stats` takes, computed once per target."""
    t, _ = walk_order(target_spec.detach())
    ta = torch.view_as_real(t).numpy()
    mag = np.empty(ta.shape[:3], dtype=np.float32)
    logm = np.empty(ta.shape[:3], dtype=np.float32)
    run_batch_split(_stats, ta.shape[0], ta, mag, logm)
    return mag, logm


class _SpectralDistanceStats(torch.autograd.Function):
    """:class:`_SpectralDistance` against a target given by its :func:`target_stats`."""

    @staticmethod
    def forward(ctx: Any, pred: Tensor, mag: np.ndarray, logm: np.ndarray) -> Tensor:  # type: ignore[override]
        b = pred.shape[0]
        p, swap = walk_order(pred.detach())
        pa = torch.view_as_real(p).numpy()
        if mag.shape != pa.shape[:3]:
            raise ValueError(f"target statistics {mag.shape} do not match the spectrum {pa.shape[:3]}")
        grad = torch.empty(pa.shape, dtype=torch.float32)
        sums = np.empty((b, 2), dtype=np.float64)
        run_batch_split(_distance_stats, b, mag, logm, pa, grad.numpy(), sums)
        count = pa.shape[1] * pa.shape[2]
        g = torch.view_as_complex(grad)
        ctx.save_for_backward(g.transpose(-1, -2) if swap else g)
        ctx.count = count
        return torch.from_numpy((sums.sum(1) / count).astype(np.float32))

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        scale = (grad_out.to(torch.float32) / ctx.count).view(-1, *([1] * (grad.dim() - 1)))
        return grad * scale, None, None


def spectral_distance_stats(stats: tuple[np.ndarray, np.ndarray], pred_spec: Tensor) -> Tensor:
    """Per-clip distance (as :func:`spectral_distance`) of a predicted spectrum to a target given by its
    :func:`target_stats`; differentiable in ``pred_spec``."""
    return _SpectralDistanceStats.apply(pred_spec, stats[0], stats[1])  # type: ignore[no-any-return]
