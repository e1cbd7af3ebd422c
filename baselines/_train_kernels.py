"""Compiled (numba) kernels for training on CPU: the harmonic bank and its gradient.

:func:`baselines.dsp.harmonic_bank` computes ``y[n] = sum_k a_k[t] sin(k phase[n])`` by building the
``(B, T, block, K)`` tensor of sines (400 MB for a batch of 16 x 4 s with 100 harmonics) and a batched
matmul; its backward builds it again for ``dL/da_k[t] = sum_{n in t} g[n] sin(k phase[n])``. On a CPU
that is most of a reduced model's training step. These kernels compute the same two sums without
the tensor: per sample, ``sin(k phase)`` for ``k = 1..K`` comes from rotating ``(cos phase, sin phase)``
``K - 1`` times (angle addition, in float64), so each harmonic costs a handful of multiply-adds
instead of a float32 ``sin`` and a store.

Accuracy: the rotation in float64 gives ``sin(k phase)`` to about ``k * 1e-16``; the torch path
rounds ``k * phase`` to float32 first (an argument error up to ``|k phase| * 2**-24``, about ``4e-5``
for ``k = 100``), so the kernels are the more accurate of the two and agree with it to float32
tolerance (``tests/unit/test_train_kernels.py``).

Work is split over the batch between ``torch.get_num_threads()`` Python threads
(:func:`suite.threads.run_batch_split`); the kernels release the GIL.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numba import njit
from torch import Tensor

from ddspbench.suite.threads import run_batch_split

__all__ = ["harmonic_bank_cpu", "harmonic_bank_f64", "bank_forward", "bank_grad_amps"]

# Reassociation lets LLVM vectorise the per-frame reductions; nothing that changes NaN/inf handling.
_FM = {"reassoc", "contract", "arcp", "nsz"}


@njit(cache=True, nogil=True, fastmath=_FM)
def _bank_fwd(phase: np.ndarray, amps: np.ndarray, out: np.ndarray, b0: int, b1: int) -> None:  # pragma: no cover
    """``out[b, t, n] = sum_k amps[b, t, k] sin((k + 1) phase[b, t, n])`` for ``b0 <= b < b1``."""
    _, n_frames, m = phase.shape
    n_k = amps.shape[2]
    s1 = np.empty(m)
    c1 = np.empty(m)
    s = np.empty(m)
    c = np.empty(m)
    acc = np.empty(m)
    for b in range(b0, b1):
        for t in range(n_frames):
            a0 = np.float64(amps[b, t, 0])
            for n in range(m):
                p = np.float64(phase[b, t, n])
                s1[n] = math.sin(p)
                c1[n] = math.cos(p)
                s[n] = s1[n]
                c[n] = c1[n]
                acc[n] = a0 * s1[n]
            for k in range(1, n_k):
                a = np.float64(amps[b, t, k])
                for n in range(m):
                    sn = s[n] * c1[n] + c[n] * s1[n]
                    c[n] = c[n] * c1[n] - s[n] * s1[n]
                    s[n] = sn
                    acc[n] += a * sn
            for n in range(m):
                out[b, t, n] = acc[n]


@njit(cache=True, nogil=True, fastmath=_FM)
def _bank_grad(phase: np.ndarray, grad: np.ndarray, out: np.ndarray, b0: int, b1: int) -> None:  # pragma: no cover
    """``out[b, t, k] = sum_n grad[b, t, n] sin((k + 1) phase[b, t, n])`` for ``b0 <= b < b1``."""
    _, n_frames, m = phase.shape
    n_k = out.shape[2]
    s1 = np.empty(m)
    c1 = np.empty(m)
    s = np.empty(m)
    c = np.empty(m)
    g = np.empty(m)
    for b in range(b0, b1):
        for t in range(n_frames):
            tot = 0.0
            for n in range(m):
                p = np.float64(phase[b, t, n])
                s1[n] = math.sin(p)
                c1[n] = math.cos(p)
                s[n] = s1[n]
                c[n] = c1[n]
                g[n] = grad[b, t, n]
                tot += g[n] * s1[n]
            out[b, t, 0] = tot
            for k in range(1, n_k):
                tot = 0.0
                for n in range(m):
                    sn = s[n] * c1[n] + c[n] * s1[n]
                    c[n] = c[n] * c1[n] - s[n] * s1[n]
                    s[n] = sn
                    tot += g[n] * sn
                out[b, t, k] = tot


def bank_forward(phase: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Numpy form of the forward sum: ``phase (B, T, block)``, ``amps (B, T, K)`` float32 -> ``(B, T, block)``."""
    out = np.empty(phase.shape, dtype=np.float32)
    run_batch_split(_bank_fwd, phase.shape[0], phase, amps, out)
    return out


def bank_grad_amps(phase: np.ndarray, grad: np.ndarray, n_harmonics: int) -> np.ndarray:
    """Numpy form of the amplitude gradient: ``phase``, ``grad (B, T, block)`` -> ``(B, T, K)`` float32."""
    out = np.empty((*phase.shape[:2], n_harmonics), dtype=np.float32)
    run_batch_split(_bank_grad, phase.shape[0], phase, grad, out)
    return out


class _HarmonicBank(torch.autograd.Function):
    """Autograd wrapper: the phase is a constant (it comes from the input f0); the amplitudes get a gradient."""

    @staticmethod
    def forward(ctx: Any, phase: Tensor, amplitudes: Tensor) -> Tensor:  # type: ignore[override]
        b, t, k = amplitudes.shape
        ph = phase.detach().contiguous().view(b, t, -1)
        ctx.save_for_backward(ph)
        ctx.n_harmonics = k
        y = bank_forward(ph.numpy(), amplitudes.detach().contiguous().numpy())
        return torch.from_numpy(y).view(b, -1)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        (ph,) = ctx.saved_tensors
        g = grad_out.detach().to(torch.float32).contiguous().view(ph.shape)
        return None, torch.from_numpy(bank_grad_amps(ph.numpy(), g.numpy(), ctx.n_harmonics))


def harmonic_bank_cpu(phase: Tensor, amplitudes: Tensor) -> Tensor:
    """:func:`baselines.dsp.harmonic_bank` with harmonics ``1..K`` by the compiled kernels (CPU float32 tensors).

    Differentiable in ``amplitudes`` only (``phase`` must not need a gradient).
    """
    return _HarmonicBank.apply(phase, amplitudes)  # type: ignore[no-any-return]


def harmonic_bank_f64(phase: Tensor, amplitudes: Tensor, harmonics: Tensor | None = None) -> Tensor:
    """The harmonic sum straight from its definition in float64 (from the given phase), cast back: the yardstick
    both float32 paths are measured against (``benchmarks/bench_train.py``). Memory-hungry; for checks only."""
    b, t, k = amplitudes.shape
    ph = phase.double().view(b, t, -1, 1) * torch.arange(1, k + 1, dtype=torch.float64, device=phase.device)
    return (torch.sin(ph) * amplitudes.double().unsqueeze(2)).sum(-1).reshape(b, -1).to(amplitudes.dtype)
