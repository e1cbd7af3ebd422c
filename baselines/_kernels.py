"""Compiled (numba) kernels of the native streaming engine (:mod:`ddspbench.baselines.native`).

numba caches these kernels on disk beside this file, keyed by its size and time stamp; a cache written
while the package had another import name would not load, so any change to this file renews it.

One call renders one buffer of one family model for every stream of a batch: decoder, synth and
reverb in native code, so a 64-sample buffer costs one dispatch instead of a couple of hundred
tensor ops. The maths is the float32 maths of the torch modules, step for step (the same causal
upsampling, float64 phase accumulation, counter-based noise, per-block noise filtering and uniformly
partitioned reverb); where an operation's rounding cannot be the same (summation order, a sine
evaluated in float64 then rounded, accumulators in float64), the result is at least as accurate.

Weight matrices live in one flat array ``Q`` in their stored type (float32; int8 with per-row float32
scales; bfloat16 as its uint16 bit pattern), everything else (biases, norms, scales) in one flat
float32 array ``P``, both addressed by a layer table ``LT`` (int64 rows: ``weight offset (Q), rows,
cols, bias offset, norm-gain offset, norm-bias offset, scale offset, second scale offset``; ``-1``
where a layer has no such part; a GRU row holds ``W_hh``'s ``Q`` offset and ``b_hh``'s in columns 4-5
and its two scale offsets in 6-7). numba compiles one specialisation per ``Q`` type: int8 and bf16
weights are read as stored and widened to float32 in the dot-product loops (``y_o = s_o sum_i q_oi
x_i + b_o``), so a frame reads 1 or 2 bytes per weight. Every kernel works in place on the state
arrays it is given.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = ["decoder_family_process", "ddx7_process", "BLOCK", "N_FFT", "SPEC_PAD", "LT_COLS"]

LT_COLS = 8

BLOCK = 64
N_FFT = 2 * BLOCK
_BINS = BLOCK + 1
SPEC_PAD = 72  # spectrum bins (65) padded to a multiple of 8 float32 lanes
_TWO_PI = 2.0 * math.pi
_TWO_PI_F32 = np.float32(_TWO_PI)
_MASK32 = 0xFFFFFFFF
_HASH_MUL = 0x45D9F3B
_LN10 = math.log(10.0)

# Reassociation lets LLVM vectorise dot-product reductions; no flag that changes NaN/inf handling.
_FM = {"reassoc", "contract", "arcp", "nsz"}
# Layers with at least this many weights go through BLAS even for one frame (its gemv streams memory faster).
BLAS_MIN = 16384
# Up to this many frames, large layers use a row-at-a-time loop instead of a BLAS gemm.
_FEW_FRAMES = 16


def _fft_tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bits = n.bit_length() - 1
    rev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)], dtype=np.int64)
    m = np.arange(n // 2)
    return rev, np.cos(2.0 * np.pi * m / n), -np.sin(2.0 * np.pi * m / n)


_BITREV, _TW_RE, _TW_IM = _fft_tables(N_FFT)


@njit(cache=True, inline="always")
def _fft(re: np.ndarray, im: np.ndarray) -> None:
    """In-place forward radix-2 DFT of length ``N_FFT`` (``X_k = sum_n x_n e^{-2 pi i k n / N}``)."""
    n = N_FFT
    for i in range(n):
        j = _BITREV[i]
        if j > i:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    size = 2
    while size <= n:
        half = size // 2
        step = n // size
        for start in range(0, n, size):
            for k in range(half):
                wr = _TW_RE[k * step]
                wi = _TW_IM[k * step]
                a = start + k
                b = a + half
                tr = wr * re[b] - wi * im[b]
                ti = wr * im[b] + wi * re[b]
                re[b] = re[a] - tr
                im[b] = im[a] - ti
                re[a] += tr
                im[a] += ti
        size *= 2


_ROUND_MAGIC = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds a double to an integer


@njit(cache=True, inline="always")
def _sin(x: float) -> float:
    """sin of a float64 argument of moderate size (|x| < 1e6), vectorisable (no libm call, no branch).

    ``r = x - 2 pi round(x / 2 pi)`` folded into ``[-pi/2, pi/2]``, then the Taylor series to ``r^15``
    (truncation error below 1e-11, far under float32 rounding; the reduction loses about ``|x| 1e-16``).
    Callers must not enable the ``reassoc`` fast-math flag, which would cancel the rounding trick.
    """
    q = (x * (1.0 / _TWO_PI) + _ROUND_MAGIC) - _ROUND_MAGIC
    r = x - q * _TWO_PI
    r = math.pi - r if r > 0.5 * math.pi else r
    r = -math.pi - r if r < -0.5 * math.pi else r
    r2 = r * r
    p = -1.0 / 1307674368000.0
    p = 1.0 / 6227020800.0 + r2 * p
    p = -1.0 / 39916800.0 + r2 * p
    p = 1.0 / 362880.0 + r2 * p
    p = -1.0 / 5040.0 + r2 * p
    p = 1.0 / 120.0 + r2 * p
    p = -1.0 / 6.0 + r2 * p
    return r + r * r2 * p


@intrinsic
def _bf16_to_f32(typingctx, x):  # type: ignore[no-untyped-def]
    """A bfloat16 held as its uint16 bit pattern, widened exactly to float32 (the bits shifted up 16)."""
    if x != types.uint16:
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        wide = builder.shl(builder.zext(args[0], ir.IntType(32)), ir.Constant(ir.IntType(32), 16))
        return builder.bitcast(wide, ir.FloatType())

    return types.float32(types.uint16), codegen


def _wf(w: object) -> np.float32:
    """A stored weight widened to float32 (float32 as is, int8 by value, bf16 bits shifted into a float32)."""
    raise NotImplementedError  # compiled through the overload below


@overload(_wf, inline="always")
def _ov_wf(w):  # type: ignore[no-untyped-def]
    if isinstance(w, types.Integer) and not w.signed and w.bitwidth == 16:
        return lambda w: _bf16_to_f32(w)
    return lambda w: np.float32(w)


def _is_f32(w: object) -> bool:
    """Whether a weight array is float32 (a compile-time constant in the kernels)."""
    raise NotImplementedError


@overload(_is_f32, inline="always")
def _ov_is_f32(w):  # type: ignore[no-untyped-def]
    is_f32 = w.dtype == types.float32
    return lambda w: is_f32


def _blas_rows(W: np.ndarray, X: np.ndarray, Y: np.ndarray) -> None:
    """``Y = X W^T`` through BLAS (stored weights widened to a float32 copy first)."""
    raise NotImplementedError


@overload(_blas_rows)
def _ov_blas_rows(W, X, Y):  # type: ignore[no-untyped-def]
    if W.dtype == types.float32:
        def impl(W, X, Y):  # type: ignore[no-untyped-def]
            if X.shape[0] == 1:
                Y[0, :] = np.dot(W, X[0])
            else:
                Y[:, :] = np.dot(X, W.T)
        return impl

    def impl_stored(W, X, Y):  # type: ignore[no-untyped-def]
        Wf = np.empty(W.shape, dtype=np.float32)
        for o in range(W.shape[0]):
            for i in range(W.shape[1]):
                Wf[o, i] = _wf(W[o, i])
        Y[:, :] = np.dot(X, Wf.T)
    return impl_stored


@njit(cache=True, inline="always")
def _out(acc: np.float32, P: np.ndarray, s_off: int, b_off: int, o: int) -> np.float32:
    """A row's accumulated dot product times its scale (if any) plus its bias (if any)."""
    v = acc * P[s_off + o] if s_off >= 0 else acc
    return v + P[b_off + o] if b_off >= 0 else v


@njit(cache=True, inline="always")
def _sigmoid32(x: np.float32) -> np.float32:
    return np.float32(1.0) / (np.float32(1.0) + np.float32(math.exp(-np.float64(x))))


@njit(cache=True, inline="always")
def _exp_sigmoid(x: np.float32) -> np.float32:
    """``2 sigmoid(x) ** ln(10) + 1e-7`` in float32 (REFERENCE §1)."""
    return np.float32(2.0) * np.float32(np.float64(_sigmoid32(x)) ** _LN10) + np.float32(1e-7)


@njit(cache=True, fastmath=_FM)
def _linear(P: np.ndarray, Q: np.ndarray, row: np.ndarray, X: np.ndarray, Y: np.ndarray) -> None:
    """``Y = X W^T (* s) + b`` for a layer-table row: BLAS gemv for one frame of a large float32 layer,
    BLAS gemm for many frames, a loop reading each stored weight row once otherwise."""
    n_out = row[1]
    n_in = row[2]
    W = Q[row[0]: row[0] + n_out * n_in].reshape((n_out, n_in))
    b_off = row[3]
    s_off = row[6]
    t_len = X.shape[0]
    big = n_out * n_in >= BLAS_MIN
    if (big and t_len == 1 and _is_f32(W)) or (t_len > _FEW_FRAMES and n_out * n_in >= 1024):
        _blas_rows(W, X, Y)
        for t in range(t_len):
            for o in range(n_out):
                Y[t, o] = _out(Y[t, o], P, s_off, b_off, o)
        return
    # One weight row at a time against every frame: the weights are read once (no packing copy,
    # which is what a BLAS gemm spends its time on for a handful of frames).
    t4 = t_len - t_len % 4
    for o in range(n_out):
        for t in range(0, t4, 4):  # four frames per pass over the row: each weight loaded once for four products
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
            for i in range(n_in):
                w = _wf(W[o, i])
                a0 += w * X[t, i]
                a1 += w * X[t + 1, i]
                a2 += w * X[t + 2, i]
                a3 += w * X[t + 3, i]
            Y[t, o] = _out(a0, P, s_off, b_off, o)
            Y[t + 1, o] = _out(a1, P, s_off, b_off, o)
            Y[t + 2, o] = _out(a2, P, s_off, b_off, o)
            Y[t + 3, o] = _out(a3, P, s_off, b_off, o)
        for t in range(t4, t_len):
            acc = np.float32(0.0)
            for i in range(n_in):
                acc += _wf(W[o, i]) * X[t, i]
            Y[t, o] = _out(acc, P, s_off, b_off, o)


@njit(cache=True)
def _layer_norm_lrelu(P: np.ndarray, row: np.ndarray, Y: np.ndarray, eps: float, slope: np.float32) -> None:
    """In place: LayerNorm over the last axis (biased variance) then LeakyReLU."""
    n = row[1]
    g = P[row[4]: row[4] + n]
    be = P[row[5]: row[5] + n]
    for t in range(Y.shape[0]):
        mean = 0.0
        for i in range(n):
            mean += Y[t, i]
        mean /= n
        var = 0.0
        for i in range(n):
            d = Y[t, i] - mean
            var += d * d
        inv = 1.0 / math.sqrt(var / n + eps)
        for i in range(n):
            v = np.float32((Y[t, i] - mean) * inv) * g[i] + be[i]
            Y[t, i] = v if v >= 0 else v * slope


@njit(cache=True)
def _mlp(P: np.ndarray, Q: np.ndarray, LT: np.ndarray, first: int, count: int, X: np.ndarray, eps: float,
         slope: np.float32) -> np.ndarray:
    for li in range(first, first + count):
        Y = np.empty((X.shape[0], LT[li, 1]), dtype=np.float32)
        _linear(P, Q, LT[li], X, Y)
        _layer_norm_lrelu(P, LT[li], Y, eps, slope)
        X = Y
    return X


def _widened(W: np.ndarray) -> np.ndarray:
    """Stored weights as a float32 array (the array itself when it already is one)."""
    raise NotImplementedError


@overload(_widened)
def _ov_widened(W):  # type: ignore[no-untyped-def]
    if W.dtype == types.float32:
        return lambda W: W

    def impl(W):  # type: ignore[no-untyped-def]
        out = np.empty(W.shape, dtype=np.float32)
        for o in range(W.shape[0]):
            for i in range(W.shape[1]):
                out[o, i] = _wf(W[o, i])
        return out
    return impl


@njit(cache=True, fastmath=_FM)
def _gru(P: np.ndarray, Q: np.ndarray, row: np.ndarray, GI: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
    """PyTorch's GRU recurrence (gates r, z, n) over the frames of ``GI = x W_ih^T + b_ih``; ``h`` updated in place.

    Long buffers widen stored (int8/bf16) ``W_hh`` to float32 once per call (the same values, so the same sums)
    instead of once per frame.
    """
    g = h.shape[0]
    Whh = Q[row[4]: row[4] + 3 * g * g].reshape((3 * g, g))
    if GI.shape[0] > _FEW_FRAMES:
        _gru_frames(P, _widened(Whh), row, GI, h, out)
    else:
        _gru_frames(P, Whh, row, GI, h, out)


@njit(cache=True, fastmath=_FM)
def _gru_frames(P: np.ndarray, Whh: np.ndarray, row: np.ndarray, GI: np.ndarray, h: np.ndarray,
                out: np.ndarray) -> None:
    g = h.shape[0]
    b_off = row[5]
    s_off = row[7]
    gh = np.empty(3 * g, dtype=np.float32)
    hm = h.reshape((1, g))
    ghm = gh.reshape((1, 3 * g))
    for t in range(GI.shape[0]):
        if 3 * g * g >= BLAS_MIN and _is_f32(Whh):
            _blas_rows(Whh, hm, ghm)
            for o in range(3 * g):
                gh[o] = _out(gh[o], P, s_off, b_off, o)
        else:
            for o in range(3 * g):
                acc = np.float32(0.0)
                for i in range(g):
                    acc += _wf(Whh[o, i]) * h[i]
                gh[o] = _out(acc, P, s_off, b_off, o)
        for j in range(g):
            r = _sigmoid32(GI[t, j] + gh[j])
            z = _sigmoid32(GI[t, g + j] + gh[g + j])
            n = np.float32(math.tanh(np.float64(GI[t, 2 * g + j] + r * gh[2 * g + j])))
            h[j] = n + z * (h[j] - n)
            out[t, j] = h[j]


@njit(cache=True)
def _decoder(P: np.ndarray, Q: np.ndarray, LT: np.ndarray, meta: np.ndarray, f0s: np.ndarray, ls: np.ndarray, h: np.ndarray,
             eps: float, slope: np.float32) -> np.ndarray:
    """The HpN/Wavetable decoder on ``T`` frames of one stream -> raw heads ``(T, n_heads)``."""
    n_f0, n_ld, n_out = meta[0], meta[1], meta[2]
    t_len = f0s.shape[0]
    x = np.empty((t_len, 1), dtype=np.float32)
    x[:, 0] = f0s
    a = _mlp(P, Q, LT, 0, n_f0, x, eps, slope)
    x2 = np.empty((t_len, 1), dtype=np.float32)
    x2[:, 0] = ls
    b = _mlp(P, Q, LT, n_f0, n_ld, x2, eps, slope)
    cat = np.empty((t_len, a.shape[1] + b.shape[1]), dtype=np.float32)
    cat[:, : a.shape[1]] = a
    cat[:, a.shape[1]:] = b
    gru_row = LT[n_f0 + n_ld]
    GI = np.empty((t_len, gru_row[1]), dtype=np.float32)
    _linear(P, Q, gru_row, cat, GI)
    g = h.shape[0]
    hid = np.empty((t_len, g + 2), dtype=np.float32)
    _gru(P, Q, gru_row, GI, h, hid)
    hid[:, g] = f0s
    hid[:, g + 1] = ls
    y = _mlp(P, Q, LT, n_f0 + n_ld + 1, n_out, hid, eps, slope)
    head_row = LT[n_f0 + n_ld + 1 + n_out]
    heads = np.empty((t_len, head_row[1]), dtype=np.float32)
    _linear(P, Q, head_row, y, heads)
    return heads


@njit(cache=True, inline="always")
def _scaled_inputs(f0: np.float32, loud: np.float32) -> tuple[np.float32, np.float32]:
    """``midi(f0)/127`` (0 for f0 <= 0) and ``loudness/80 + 1`` in float32, as :func:`baselines._base.scaled_inputs`."""
    if f0 > 0:
        midi = np.float32(math.log2(max(np.float64(f0), 1e-7))) * np.float32(12.0) \
            + np.float32(69.0 - 12.0 * math.log2(440.0))
        f0s = midi / np.float32(127.0)
    else:
        f0s = np.float32(0.0)
    return f0s, (loud + np.float32(80.0)) / np.float32(80.0)


@njit(cache=True, fastmath={"contract"})
def _reverb_block(x: np.ndarray, prev: np.ndarray, ring: np.ndarray, pos: int, parts: np.ndarray, y: np.ndarray) -> int:
    """One 64-sample block of uniformly partitioned overlap-save convolution; returns the new ring position.

    ``ring (P, 2 SPEC_PAD)`` holds the spectra of the last ``P`` input pairs ``[prev, x]`` (``pos`` the
    newest), ``parts`` the spectra of the impulse's ``P`` partitions (partition 0 first), both as
    ``[real bins | imaginary bins]`` rows padded to ``SPEC_PAD`` bins (zeros) so the product vectorises.
    Products and sums in float32, as the torch model's complex64 ones.
    """
    re = np.empty(N_FFT)
    im = np.zeros(N_FFT)
    for i in range(BLOCK):
        re[i] = prev[i]
        re[BLOCK + i] = x[i]
    _fft(re, im)
    n_parts = ring.shape[0]
    pos = pos + 1
    if pos == n_parts:
        pos = 0
    for k in range(_BINS):
        ring[pos, k] = re[k]
        ring[pos, SPEC_PAD + k] = im[k]
    acc = np.zeros(2 * SPEC_PAD, dtype=np.float32)
    s = pos
    for i in range(n_parts):
        for k in range(SPEC_PAD):
            xr = ring[s, k]
            xi = ring[s, SPEC_PAD + k]
            hr = parts[i, k]
            hi = parts[i, SPEC_PAD + k]
            acc[k] += xr * hr - xi * hi
            acc[SPEC_PAD + k] += xr * hi + xi * hr
        s -= 1
        if s < 0:
            s = n_parts - 1
    # Inverse real FFT: conjugate-symmetric spectrum, forward transform of its conjugate.
    re[0] = acc[0]
    im[0] = 0.0
    re[BLOCK] = acc[BLOCK]
    im[BLOCK] = 0.0
    for k in range(1, BLOCK):
        re[k] = acc[k]
        im[k] = -acc[SPEC_PAD + k]
        re[N_FFT - k] = acc[k]
        im[N_FFT - k] = acc[SPEC_PAD + k]
    _fft(re, im)
    for i in range(BLOCK):
        y[i] = np.float32(re[BLOCK + i] / N_FFT)
        prev[i] = x[i]
    return pos


@njit(cache=True)
def _white(key: int, block_index: int, out: np.ndarray) -> None:
    """The counter-based uniform noise of :func:`baselines.dsp.counter_uniform` for one block."""
    for j in range(BLOCK):
        x = ((block_index * BLOCK + j) & _MASK32) ^ key
        x = x & _MASK32
        x = (((x >> 16) ^ x) * _HASH_MUL) & _MASK32
        x = (((x >> 16) ^ x) * _HASH_MUL) & _MASK32
        x = (x >> 16) ^ x
        out[j] = np.float32(x >> 8) * np.float32(2.0 / (1 << 24)) - np.float32(1.0)


@njit(cache=True, fastmath=_FM)
def _filtered_noise(bands: np.ndarray, noise_mat: np.ndarray, white: np.ndarray, out: np.ndarray) -> None:
    """FIR of the frame's bands (``bands @ noise_mat``, 64 taps centred at 32) applied to one noise block alone.

    ``out[n] = sum_m fir[m] white[n + 32 - m]`` (zero outside the block): the samples ``32 .. 95`` of the
    block's full linear convolution, as the torch model's FFT filtering keeps.
    """
    taps = noise_mat.shape[1]
    fir = np.zeros(taps, dtype=np.float32)
    for b in range(bands.shape[0]):
        v = bands[b]
        for m in range(taps):
            fir[m] += v * noise_mat[b, m]
    half = taps // 2
    pad = np.zeros(BLOCK + 2 * taps, dtype=np.float32)  # white at [taps, taps + BLOCK), zeros around it
    for j in range(BLOCK):
        pad[taps + j] = white[j]
        out[j] = 0.0
    for m in range(taps):
        c = fir[m]
        base = taps + half - m
        for n in range(BLOCK):
            out[n] += c * pad[base + n]


@njit(cache=True)
def _upsample_f0(prev: np.float32, cur: np.float32, out: np.ndarray) -> None:
    """Causal linear upsampling of one frame (``prev + (cur - prev) (j + 1) / 64``) in float32."""
    d = cur - prev
    for j in range(BLOCK):
        out[j] = prev + d * np.float32((j + 1) / BLOCK)


@njit(cache=True)
def _advance_phase(f0_up: np.ndarray, phase0: float, step: float, out: np.ndarray) -> float:
    """Running float64 phase at ``step`` rad/Hz per sample, wrapped to [0, 2 pi) and cast to float32; returns the end phase.

    The wrap is ``x - 2 pi floor(x / 2 pi)`` (as ``torch.remainder``; no libm ``fmod`` call per sample).
    """
    c = 0.0
    p = phase0
    for j in range(BLOCK):
        c += np.float64(f0_up[j]) * step
        x = c + phase0
        p = x - _TWO_PI * math.floor(x * (1.0 / _TWO_PI))
        if p >= _TWO_PI:
            p -= _TWO_PI
        out[j] = np.float32(p)
    return p


@njit(cache=True, fastmath={"contract"})
def _harmonic_block(phase: np.ndarray, amps: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = sum_k amps[k] sin(float32(phase[j] (k + 1)))`` (amplitudes held over the block).

    The argument is rounded to float32 as in the torch model; the sine and the sum are float64.
    Harmonic-major loop order, so the loop over samples vectorises.
    """
    acc = np.zeros(BLOCK)
    for k in range(amps.shape[0]):
        kf = np.float32(k + 1)
        a = np.float64(amps[k])
        for j in range(BLOCK):
            acc[j] += a * _sin(np.float64(phase[j] * kf))
    for j in range(BLOCK):
        out[j] = np.float32(acc[j])


@njit(cache=True)
def _wavetable_block(phase: np.ndarray, mixed: np.ndarray, out: np.ndarray) -> None:
    """Linear-interpolated lookup in one frame's mixed table (as :func:`baselines.dsp.wavetable_oscillator`)."""
    length = mixed.shape[0]
    scale = np.float32(length / _TWO_PI)
    for j in range(BLOCK):
        pos = phase[j] * scale
        f = np.float32(math.floor(pos))
        frac = pos - f
        i0 = int(f) % length
        i1 = (i0 + 1) % length
        a = mixed[i0]
        out[j] = a + (mixed[i1] - a) * frac


@njit(cache=True)
def decoder_family_process(P: np.ndarray, Q: np.ndarray, LT: np.ndarray, meta: np.ndarray, eps: float, slope: float,
                           f0_hz: np.ndarray, loud_db: np.ndarray,
                           h: np.ndarray, f0_prev: np.ndarray, phase: np.ndarray, frame: np.ndarray, key: np.ndarray,
                           rv_prev: np.ndarray, rv_ring: np.ndarray, rv_pos: np.ndarray,
                           parts: np.ndarray, noise_mat: np.ndarray, tables: np.ndarray,
                           out: np.ndarray, reverb: bool = True) -> None:
    """Render ``T`` frames of an HpN (``meta[3] == 0``) or Wavetable (``meta[3] == 1``) model for every stream.

    Args:
        P, Q, LT: flat float32 parameters, stored weight matrices and layer table (f0 MLP, loudness MLP,
            GRU, output MLP, merged heads).
        meta: ``[n_f0_layers, n_loudness_layers, n_out_layers, kind, n_tonal, n_bands]``.
        eps, slope: LayerNorm epsilon and LeakyReLU slope.
        f0_hz, loud_db: ``(B, T)`` float32 frames.
        h ``(B, g)``, f0_prev ``(B,)``, phase ``(B,)`` float64, frame ``(B,)`` int64, key ``(B,)`` int64,
        rv_prev ``(B, 64)``, rv_ring ``(B, P, 2 SPEC_PAD)``, rv_pos ``(B,)``: the streaming state (updated).
        parts: reverb partition spectra ``(P, 2 SPEC_PAD)`` (see :func:`_reverb_block`).
        noise_mat: ``(n_bands, 64)`` band -> FIR taps.
        tables: ``(W, L)`` wavetables (Wavetable only; any array for HpN).
        out: ``(B, 64 T)`` float32 audio.
        reverb: False writes the dry signal to ``out`` and leaves the reverb state alone (the caller
            convolves a long buffer in one FFT, :meth:`baselines.native.NativeEngine._reverb_long`).
    """
    kind, n_tonal, n_bands = meta[3], meta[4], meta[5]
    slope32 = np.float32(slope)
    n_b, t_len = f0_hz.shape
    f0s = np.empty(t_len, dtype=np.float32)
    ls = np.empty(t_len, dtype=np.float32)
    f0_up = np.empty(BLOCK, dtype=np.float32)
    ph = np.empty(BLOCK, dtype=np.float32)
    tonal = np.empty(BLOCK, dtype=np.float32)
    white = np.empty(BLOCK, dtype=np.float32)
    noise = np.empty(BLOCK, dtype=np.float32)
    x = np.empty(BLOCK, dtype=np.float32)
    ctrl = np.empty(1 + n_tonal + n_bands, dtype=np.float32)
    amps = np.empty(n_tonal, dtype=np.float32)
    mixed = np.empty(tables.shape[1], dtype=np.float32)
    step = _TWO_PI / 16000.0
    for bi in range(n_b):
        for t in range(t_len):
            f0s[t], ls[t] = _scaled_inputs(f0_hz[bi, t], loud_db[bi, t])
        heads = _decoder(P, Q, LT, meta, f0s, ls, h[bi], eps, slope32)
        for t in range(t_len):
            f0 = f0_hz[bi, t]
            for c in range(ctrl.shape[0]):
                ctrl[c] = _exp_sigmoid(heads[t, c])
            amp = ctrl[0]
            if kind == 0:
                total = np.float32(0.0)
                for k in range(n_tonal):
                    d = ctrl[1 + k]
                    if f0 * np.float32(k + 1) >= np.float32(8000.0):
                        d = d * np.float32(1e-4)
                    amps[k] = d
                    total += d
                for k in range(n_tonal):
                    amps[k] = amps[k] / total * amp
            else:
                total = np.float32(0.0)
                for k in range(n_tonal):
                    total += ctrl[1 + k]
                scale = amp / total
                for m in range(mixed.shape[0]):
                    mixed[m] = 0.0
                for k in range(n_tonal):
                    w = ctrl[1 + k] * scale
                    for m in range(mixed.shape[0]):
                        mixed[m] += w * tables[k, m]
            prev = f0 if frame[bi] == 0 else f0_prev[bi]
            _upsample_f0(prev, f0, f0_up)
            f0_prev[bi] = f0
            phase[bi] = _advance_phase(f0_up, phase[bi], step, ph)
            if kind == 0:
                _harmonic_block(ph, amps, tonal)
            else:
                _wavetable_block(ph, mixed, tonal)
            _white(key[bi], frame[bi], white)
            _filtered_noise(ctrl[1 + n_tonal:], noise_mat, white, noise)
            if not reverb:  # the caller convolves the whole buffer (long buffers: one FFT)
                for j in range(BLOCK):
                    out[bi, t * BLOCK + j] = tonal[j] + noise[j]
            else:
                for j in range(BLOCK):
                    x[j] = tonal[j] + noise[j]
                rv_pos[bi] = _reverb_block(x, rv_prev[bi], rv_ring[bi], rv_pos[bi], parts,
                                           out[bi, t * BLOCK: (t + 1) * BLOCK])
            frame[bi] += 1


@njit(cache=True)
def _im2col(xin: np.ndarray, d: int, t_len: int) -> np.ndarray:
    """Columns of a causal dilated k=3 conv: ``cols[t, 3 i + k] = xin[t + k d, i]`` for ``xin (2d + T, C)``.

    The conv is then a linear layer on the columns, its weight ``(O, C * 3)`` (``(O, C, 3)`` flattened).
    """
    n_in = xin.shape[1]
    cols = np.empty((t_len, 3 * n_in), dtype=np.float32)
    for t in range(t_len):
        for i in range(n_in):
            cols[t, 3 * i] = xin[t, i]
            cols[t, 3 * i + 1] = xin[t + d, i]
            cols[t, 3 * i + 2] = xin[t + 2 * d, i]
    return cols


@njit(cache=True)
def _fm_block(f0_up: np.ndarray, lv: np.ndarray, ratios: np.ndarray, phase: np.ndarray, mods: np.ndarray,
              n_mods: np.ndarray, carriers: np.ndarray, out: np.ndarray) -> None:
    """Six-operator phase modulation over one block (as :func:`baselines.dsp.fm_synth`), phases carried.

    Per operator (modulators first): the modulation sum, then ``level * sin(phase + 2 pi sum)`` over the
    block in one straight loop (vectorised).
    """
    n_ops = ratios.shape[0]
    ph = np.empty((n_ops, BLOCK), dtype=np.float32)
    for k in range(n_ops):
        phase[k] = _advance_phase(f0_up, phase[k], ratios[k] * (_TWO_PI / 16000.0), ph[k])
    op = np.empty((n_ops, BLOCK), dtype=np.float32)
    total = np.empty(BLOCK, dtype=np.float32)
    for k in range(n_ops - 1, -1, -1):
        if n_mods[k] > 0:
            src = op[mods[k, 0]]
            for j in range(BLOCK):
                total[j] = src[j]
            for m in range(1, n_mods[k]):
                src = op[mods[k, m]]
                for j in range(BLOCK):
                    total[j] += src[j]
            for j in range(BLOCK):
                arg = ph[k, j] + _TWO_PI_F32 * total[j]
                op[k, j] = lv[k, j] * np.float32(_sin(np.float64(arg)))
        else:
            for j in range(BLOCK):
                op[k, j] = lv[k, j] * np.float32(_sin(np.float64(ph[k, j])))
    for j in range(BLOCK):
        out[j] = op[carriers[0], j]
    for c in range(1, carriers.shape[0]):
        for j in range(BLOCK):
            out[j] += op[carriers[c], j]


@njit(cache=True)
def ddx7_process(P: np.ndarray, Q: np.ndarray, LT: np.ndarray, dil: np.ndarray, f0_hz: np.ndarray, loud_db: np.ndarray,
                 hist: np.ndarray, hoff: np.ndarray, prev7: np.ndarray, phase: np.ndarray, frame: np.ndarray,
                 ratios: np.ndarray, mods: np.ndarray, n_mods: np.ndarray, carriers: np.ndarray, max_ol: float,
                 rv_prev: np.ndarray, rv_ring: np.ndarray, rv_pos: np.ndarray,
                 parts: np.ndarray, out: np.ndarray, reverb: bool = True) -> None:
    """Render ``T`` frames of a DDX7 model for every stream.

    Args:
        P, Q, LT: flat parameters, stored weights, layer table; per TCN block three rows (conv1, conv2,
            residual; the residual row's weight offset is ``-1`` for an identity residual). Conv weights
            are ``(O, I * 3)``, weight norm applied; each conv runs as a linear layer on im2col columns.
        dil: per block dilation.
        hist: ``(B, S)`` float32 conv input histories, block ``i``'s conv1 history at ``hoff[2i]``
            (``(2d, C_in)``, time-major) and conv2's at ``hoff[2i + 1]``.
        prev7: ``(B, 7)`` previous ``[f0, ol_1..ol_6]`` frame; phase ``(B, 6)`` float64; frame ``(B,)``.
        ratios, mods, n_mods, carriers: the FM patch (0-based operators).
        max_ol: level scale (0.32).
        rv_*, parts: reverb state and partition spectra; out: ``(B, 64 T)``; reverb: as in
            :func:`decoder_family_process`.
    """
    n_b, t_len = f0_hz.shape
    n_blocks = dil.shape[0]
    n_ops = ratios.shape[0]
    max32 = np.float32(max_ol)
    lv = np.empty((n_ops, BLOCK), dtype=np.float32)
    f0_up = np.empty(BLOCK, dtype=np.float32)
    fm = np.empty(BLOCK, dtype=np.float32)
    cur = np.empty(1 + n_ops, dtype=np.float32)
    for bi in range(n_b):
        x = np.empty((t_len, 2), dtype=np.float32)  # time-major: (frames, channels)
        for t in range(t_len):
            x[t, 0], x[t, 1] = _scaled_inputs(f0_hz[bi, t], loud_db[bi, t])
        for blk in range(n_blocks):
            d = dil[blk]
            ctx = 2 * d
            r1, r2, r3 = LT[3 * blk], LT[3 * blk + 1], LT[3 * blk + 2]
            c_in = x.shape[1]
            c_h = r1[1]
            c_out = r2[1]
            h1 = hist[bi, hoff[2 * blk]: hoff[2 * blk] + ctx * c_in].reshape((ctx, c_in))
            h2 = hist[bi, hoff[2 * blk + 1]: hoff[2 * blk + 1] + ctx * c_h].reshape((ctx, c_h))
            xin = np.empty((ctx + t_len, c_in), dtype=np.float32)
            xin[:ctx] = h1
            xin[ctx:] = x
            yin = np.empty((ctx + t_len, c_h), dtype=np.float32)
            yin[:ctx] = h2
            y1 = yin[ctx:]
            _linear(P, Q, r1, _im2col(xin, d, t_len), y1)
            for t in range(t_len):
                for o in range(c_h):
                    if y1[t, o] < 0:
                        y1[t, o] = np.float32(0.0)
            y = np.empty((t_len, c_out), dtype=np.float32)
            _linear(P, Q, r2, _im2col(yin, d, t_len), y)
            if blk != n_blocks - 1:
                for t in range(t_len):
                    for o in range(c_out):
                        if y[t, o] < 0:
                            y[t, o] = np.float32(0.0)
            if r3[0] < 0:
                y += x
            else:
                res = np.empty((t_len, c_out), dtype=np.float32)
                _linear(P, Q, r3, x, res)
                y += res
            h1[:, :] = xin[t_len:]
            h2[:, :] = yin[t_len:]
            x = y
        for t in range(t_len):
            cur[0] = f0_hz[bi, t]
            for k in range(n_ops):
                cur[1 + k] = max32 * _sigmoid32(x[t, k])
            if frame[bi] == 0:
                for c in range(1 + n_ops):
                    prev7[bi, c] = cur[c]
            _upsample_f0(prev7[bi, 0], cur[0], f0_up)
            for k in range(n_ops):
                _upsample_f0(prev7[bi, 1 + k], cur[1 + k], lv[k])
            for c in range(1 + n_ops):
                prev7[bi, c] = cur[c]
            _fm_block(f0_up, lv, ratios, phase[bi], mods, n_mods, carriers, fm)
            for j in range(BLOCK):
                fm[j] = fm[j] / max32
            if not reverb:
                out[bi, t * BLOCK: (t + 1) * BLOCK] = fm
            else:
                rv_pos[bi] = _reverb_block(fm, rv_prev[bi], rv_ring[bi], rv_pos[bi], parts,
                                           out[bi, t * BLOCK: (t + 1) * BLOCK])
            frame[bi] += 1
