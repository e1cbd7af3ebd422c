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


# --- the GRU recurrence (HpN/Wavetable decoders) ----------------------------------------------------------------------
# torch's CPU GRU runs a few small ops per time step, forward and (through autograd) backward: at hidden 16, batch 8
# and 250 frames that is ~1,000 op calls a step and a third of an HpN reduced training step. The kernels below run the
# recurrence of one layer, unidirectional, with biases (gate order r, z, n as torch's), per clip in one compiled loop;
# the input projection ``x W_ih^T + b_ih`` for all frames stays one torch matmul. Gates in float64 (the matrix-vector
# sums reassociated, so LLVM vectorises them), stored float32.


@njit(cache=True, nogil=True, fastmath=_FM)
def _gru_fwd(gi: np.ndarray, h0: np.ndarray, w: np.ndarray, bias: np.ndarray, hid: np.ndarray, gates: np.ndarray,
             b0: int, b1: int) -> None:  # pragma: no cover
    """``gi (B, T, 3H)``, ``h0 (B, H)``, ``w (3H, H)``, ``bias (3H,)`` -> ``hid (B, T, H)``; ``gates (B, T, 4, H)``
    keeps r, z, n and ``W_hn h + b_hn`` for the backward."""
    _, n_t, _ = gi.shape
    hs = h0.shape[1]
    h = np.empty(hs)
    gh = np.empty(3 * hs)
    for b in range(b0, b1):
        for j in range(hs):
            h[j] = h0[b, j]
        for t in range(n_t):
            for i in range(3 * hs):
                acc = np.float64(bias[i])
                for j in range(hs):
                    acc += np.float64(w[i, j]) * h[j]
                gh[i] = np.float32(acc)
            for j in range(hs):
                r = np.float32(1.0 / (1.0 + math.exp(-(np.float64(gi[b, t, j]) + gh[j]))))
                z = np.float32(1.0 / (1.0 + math.exp(-(np.float64(gi[b, t, hs + j]) + gh[hs + j]))))
                n = np.float32(math.tanh(np.float64(gi[b, t, 2 * hs + j]) + np.float64(r) * gh[2 * hs + j]))
                hn = np.float32((1.0 - np.float64(z)) * n + np.float64(z) * h[j])
                gates[b, t, 0, j] = r
                gates[b, t, 1, j] = z
                gates[b, t, 2, j] = n
                gates[b, t, 3, j] = gh[2 * hs + j]
                hid[b, t, j] = hn
            for j in range(hs):
                h[j] = np.float64(hid[b, t, j])


@njit(cache=True, nogil=True, fastmath=_FM)
def _gru_bwd(dhid: np.ndarray, h0: np.ndarray, wt: np.ndarray, hid: np.ndarray, gates: np.ndarray, dgi: np.ndarray,
             dh0: np.ndarray, dw: np.ndarray, db: np.ndarray, b0: int, b1: int) -> None:  # pragma: no cover
    """The gradients of :func:`_gru_fwd` for ``dhid (B, T, H)``: ``dgi (B, T, 3H)``, ``dh0 (B, H)`` and per clip
    ``dw (B, 3H, H)``, ``db (B, 3H)`` (summed over clips by the caller); ``wt`` is ``W_hh`` transposed ``(H, 3H)``."""
    _, n_t, _ = dhid.shape
    hs = h0.shape[1]
    dh = np.empty(hs)
    dgh = np.empty(3 * hs)
    hp = np.empty(hs)
    for b in range(b0, b1):
        for j in range(hs):
            dh[j] = 0.0
        for t in range(n_t - 1, -1, -1):
            for j in range(hs):
                hp[j] = np.float64(hid[b, t - 1, j]) if t > 0 else np.float64(h0[b, j])
            for j in range(hs):
                g = dh[j] + np.float64(dhid[b, t, j])
                r = np.float64(gates[b, t, 0, j])
                z = np.float64(gates[b, t, 1, j])
                n = np.float64(gates[b, t, 2, j])
                ghn = np.float64(gates[b, t, 3, j])
                dn = g * (1.0 - z) * (1.0 - n * n)
                dz = g * (hp[j] - n) * z * (1.0 - z)
                dr = dn * ghn * r * (1.0 - r)
                dgi[b, t, j] = dr
                dgi[b, t, hs + j] = dz
                dgi[b, t, 2 * hs + j] = dn
                dgh[j] = dr
                dgh[hs + j] = dz
                dgh[2 * hs + j] = dn * r
                dh[j] = g * z  # the direct path; the recurrent one is added below
            for i in range(3 * hs):
                db[b, i] += dgh[i]
                for j in range(hs):
                    dw[b, i, j] += dgh[i] * hp[j]
            for j in range(hs):
                acc = 0.0
                for i in range(3 * hs):
                    acc += np.float64(wt[j, i]) * dgh[i]
                dh[j] += acc
        for j in range(hs):
            dh0[b, j] = dh[j]


class _GRURecurrence(torch.autograd.Function):
    """``hidden = GRU recurrence(gi, h0; W_hh, b_hh)`` with the compiled forward and backward."""

    @staticmethod
    def forward(ctx: Any, gi: Tensor, h0: Tensor, w: Tensor, bias: Tensor) -> Tensor:  # type: ignore[override]
        b, t, g3 = gi.shape
        hs = g3 // 3
        gi_ = gi.detach().contiguous()
        h0_ = h0.detach().contiguous()
        w_ = w.detach().contiguous()
        hid = torch.empty(b, t, hs, dtype=torch.float32)
        gates = torch.empty(b, t, 4, hs, dtype=torch.float32)
        run_batch_split(_gru_fwd, b, gi_.numpy(), h0_.numpy(), w_.numpy(), bias.detach().contiguous().numpy(),
                        hid.numpy(), gates.numpy())
        ctx.save_for_backward(h0_, w_, hid, gates)
        return hid

    @staticmethod
    def backward(ctx: Any, dhid: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # type: ignore[override]
        h0, w, hid, gates = ctx.saved_tensors
        b, t, hs = hid.shape
        d = dhid.detach().to(torch.float32).contiguous()
        dgi = torch.empty(b, t, 3 * hs, dtype=torch.float32)
        dh0 = torch.empty(b, hs, dtype=torch.float64)
        dw = torch.zeros(b, 3 * hs, hs, dtype=torch.float64)
        db = torch.zeros(b, 3 * hs, dtype=torch.float64)
        run_batch_split(_gru_bwd, b, d.numpy(), h0.numpy(), w.t().contiguous().numpy(), hid.numpy(), gates.numpy(), dgi.numpy(),
                        dh0.numpy(), dw.numpy(), db.numpy())
        return dgi, dh0.to(torch.float32), dw.sum(0).to(torch.float32), db.sum(0).to(torch.float32)


def gru_cpu(gru: torch.nn.GRU, x: Tensor, h0: Tensor | None) -> tuple[Tensor, Tensor]:
    """``gru(x, h0)`` for a one-layer, unidirectional, batch-first GRU with biases on CPU float32, by the kernels:
    ``(output (B, T, H), h_n (1, B, H))``, differentiable in ``x``, ``h0`` and the weights."""
    gi = torch.nn.functional.linear(x, gru.weight_ih_l0, gru.bias_ih_l0)
    if h0 is None:
        h0 = x.new_zeros(1, x.shape[0], gru.hidden_size)
    hid = _GRURecurrence.apply(gi, h0[0], gru.weight_hh_l0, gru.bias_hh_l0)
    return hid, hid[:, -1:].transpose(0, 1)
