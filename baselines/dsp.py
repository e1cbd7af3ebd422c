"""Shared DSP blocks of the DDSP families, as small pure functions.

Conventions: audio is ``(B, N)``; frame-rate tensors are ``(B, T, C)`` with ``N = 64 T``
(16 kHz audio, 250 frames/s, REFERENCE §1). Every function is vectorised over samples (no Python
loop over samples or frames) and works on any device.

Everything that must continue across streaming buffers takes its carried value as an argument and
returns the new one (oscillator phase, previous control frame for linear upsampling, reverb tail,
noise block counter), so that one offline call equals the same clip run buffer by buffer.

Departures from a plain ``F.interpolate`` port, both needed for exact streaming:

* linear upsampling is *causal*: inside frame ``t`` the value ramps from frame ``t-1`` to frame
  ``t`` (``F.interpolate(mode="linear")`` looks half a frame ahead, which a buffer cannot know);
* the noise source is a counter-based hash of ``(seed, batch index, block index, sample)``, so the
  noise of block ``k`` does not depend on how the clip was cut into buffers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "TWO_PI",
    "exp_sigmoid",
    "upsample_nearest",
    "upsample_linear_causal",
    "oscillator_phase",
    "harmonic_amplitudes",
    "harmonic_bank",
    "wavetable_oscillator",
    "counter_uniform",
    "bands_to_filter",
    "filtered_noise",
    "reverb_impulse",
    "fft_convolve_tail",
    "fm_synth",
]

TWO_PI = 2.0 * math.pi
_LN10 = math.log(10.0)


def exp_sigmoid(x: Tensor, exponent: float = _LN10, max_value: float = 2.0, threshold: float = 1e-7) -> Tensor:
    """``max_value * sigmoid(x) ** ln(10) + 1e-7``: the DDSP squashing of raw decoder heads (REFERENCE §1)."""
    return max_value * torch.sigmoid(x).pow(exponent) + threshold


def upsample_nearest(x: Tensor, factor: int) -> Tensor:
    """Repeat every frame ``factor`` times: ``(B, T, C) -> (B, T*factor, C)``."""
    b, t, c = x.shape
    return x.unsqueeze(2).expand(b, t, factor, c).reshape(b, t * factor, c)


def upsample_linear_causal(x: Tensor, prev: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """Causal linear upsampling: in frame ``t``, sample ``j`` is ``x[t-1] + (x[t]-x[t-1]) (j+1)/factor``.

    Args:
        x: frames ``(B, T, C)``.
        prev: the frame before ``x[:, 0]`` ``(B, 1, C)`` (for a fresh signal, ``x[:, :1]``).
        factor: samples per frame.

    Returns:
        ``(B, T*factor, C)`` and the new ``prev`` (the last frame).
    """
    b, t, c = x.shape
    before = torch.cat([prev, x[:, :-1]], dim=1)  # (B, T, C)
    ramp = torch.arange(1, factor + 1, device=x.device, dtype=x.dtype).div_(factor).view(1, 1, factor, 1)
    out = before.unsqueeze(2) + (x - before).unsqueeze(2) * ramp
    return out.reshape(b, t * factor, c), x[:, -1:]


def oscillator_phase(
    f0_up: Tensor, phase0: Tensor, ratios: Tensor, sample_rate: int, block: int
) -> tuple[Tensor, Tensor]:
    """Running phase of oscillators at ``ratio * f0``, carried across calls.

    The phase is accumulated inside each block in float32 and across blocks in float64 (then
    wrapped to ``[0, 2 pi)``), so an offline call and the same signal cut into whole blocks agree
    to float32 rounding.

    Args:
        f0_up: sample-rate fundamental ``(B, N)`` in Hz, ``N`` a multiple of ``block``.
        phase0: phase at the first sample, ``(B, R)`` float64 (one per ratio).
        ratios: frequency ratios ``(R,)`` (1 for a plain oscillator).
        sample_rate: Hz.
        block: samples per frame.

    Returns:
        phases ``(B, R, N)`` (float32, radians, wrapped; sample ``n`` holds ``phase0`` plus the increments
        up to and including ``n``) and the phase after the last sample ``(B, R)``.
    """
    b, n = f0_up.shape
    t = n // block
    inc = (f0_up * (TWO_PI / sample_rate)).view(b, 1, t, block) * ratios.view(1, -1, 1, 1).to(f0_up.dtype)
    within = torch.cumsum(inc, dim=-1)  # (B, R, T, block), inclusive
    totals = within[..., -1].double()  # (B, R, T)
    ends = phase0.unsqueeze(-1) + torch.cumsum(totals, dim=-1)
    starts = torch.remainder(ends - totals, TWO_PI).to(f0_up.dtype)  # phase before each frame
    phase = torch.remainder(starts.unsqueeze(-1) + within, TWO_PI)
    return phase.reshape(b, -1, n), torch.remainder(ends[..., -1], TWO_PI)


def harmonic_amplitudes(
    amplitude: Tensor, distribution: Tensor, f0_hz: Tensor, sample_rate: int, nyquist_gain: float = 1e-4
) -> Tensor:
    """Per-harmonic amplitudes: distribution (harmonics above Nyquist times 1e-4), normalised to sum 1, times amplitude.

    Args:
        amplitude: ``(B, T, 1)`` (positive, synth space).
        distribution: ``(B, T, K)`` (positive, synth space).
        f0_hz: ``(B, T, 1)``.
    """
    k = torch.arange(1, distribution.shape[-1] + 1, device=distribution.device, dtype=distribution.dtype)
    above = (f0_hz * k) >= sample_rate / 2
    dist = torch.where(above, distribution * nyquist_gain, distribution)
    dist = dist / dist.sum(-1, keepdim=True)
    return dist * amplitude


def harmonic_bank(phase: Tensor, amplitudes: Tensor) -> Tensor:
    """Additive synthesis ``sum_k a_k[t] sin(k phase[n])`` with amplitudes held per frame ('nearest').

    Args:
        phase: fundamental phase ``(B, N)``.
        amplitudes: ``(B, T, K)`` per-frame harmonic amplitudes, ``N = block * T``.
    """
    b, t, k = amplitudes.shape
    harm = torch.arange(1, k + 1, device=phase.device, dtype=phase.dtype)
    s = torch.sin(phase.view(b, t, -1, 1) * harm)  # (B, T, block, K)
    return torch.matmul(s, amplitudes.unsqueeze(-1)).reshape(b, -1)


def wavetable_oscillator(phase: Tensor, tables: Tensor, attention: Tensor) -> Tensor:
    """Linear-interpolated wavetable oscillator on a per-frame mixture of tables.

    Args:
        phase: ``(B, N)`` radians in ``[0, 2 pi)``.
        tables: ``(W, L)`` one cycle each.
        attention: ``(B, T, W)`` per-frame mixing weights (held for the frame, 'nearest').

    Returns:
        ``(B, N)``.
    """
    b, t, _ = attention.shape
    length = tables.shape[-1]
    mixed = torch.matmul(attention, tables)  # (B, T, L)
    pos = (phase * (length / TWO_PI)).view(b, t, -1)
    i0 = torch.floor(pos)
    frac = pos - i0
    i0 = i0.long().remainder_(length)
    i1 = (i0 + 1).remainder_(length)
    a = torch.gather(mixed, 2, i0)
    c = torch.gather(mixed, 2, i1)
    return (a + (c - a) * frac).reshape(b, -1)


_MASK32 = 0xFFFFFFFF


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mixer (xorshift-multiply rounds) on int64 tensors holding values < 2**32."""
    x = x & _MASK32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    return (x >> 16) ^ x


def counter_uniform(seed: Tensor, start_block: int, n_blocks: int, block: int) -> Tensor:
    """Uniform noise in ``[-1, 1)`` as a pure function of ``(seed, block index, sample in block)``.

    Args:
        seed: ``(B,)`` int64, one stream per batch item.
        start_block: index of the first block (the running block counter).
        n_blocks: blocks to draw.
        block: samples per block.

    Returns:
        ``(B, n_blocks, block)`` float32 on ``seed``'s device.
    """
    dev = seed.device
    blocks = torch.arange(start_block, start_block + n_blocks, device=dev, dtype=torch.int64)
    pos = torch.arange(block, device=dev, dtype=torch.int64)
    counter = (blocks.view(1, -1, 1) * block + pos.view(1, 1, -1)) & _MASK32
    key = _hash32((seed.view(-1, 1, 1) & _MASK32) * 0x27D4EB2F + 0x165667B1)
    x = _hash32(counter ^ key)
    x = _hash32(x + (key >> 3))
    return (x >> 8).float() * (2.0 / (1 << 24)) - 1.0


def bands_to_filter(bands: Tensor, taps: int, window: Tensor | None = None) -> Tensor:
    """Linear-phase FIR filters from band magnitudes: irfft -> centre -> Hann window -> ``taps`` taps.

    Args:
        bands: ``(..., K)`` magnitudes on K bands evenly spanning 0..Nyquist.
        taps: filter length (64 in the reference).
        window: optional precomputed ``torch.hann_window(taps)`` (periodic=False) on the right device.

    Returns:
        ``(..., taps)`` filters, centred at ``taps // 2``.
    """
    ir = torch.fft.irfft(bands, n=2 * (bands.shape[-1] - 1))  # zero-phase, length 2(K-1)
    n = ir.shape[-1]
    if n < taps:
        ir = F.pad(ir, (0, taps - n))
        n = taps
    half = taps // 2
    centred = torch.cat([ir[..., n - half:], ir[..., : taps - half]], dim=-1)  # lag -half .. taps-half-1
    if window is None:
        window = torch.hann_window(taps, periodic=False, device=bands.device, dtype=centred.dtype)
    return centred * window


def filtered_noise(noise: Tensor, filters: Tensor) -> Tensor:
    """Filter each block of noise by its own FIR (linear convolution, aligned by the filter delay).

    Each block is filtered on its own (no overlap between blocks), so a block's output depends only
    on that block's noise and filter.

    Args:
        noise: ``(B, T, block)``.
        filters: ``(B, T, taps)`` centred at ``taps // 2``.

    Returns:
        ``(B, T * block)``.
    """
    b, t, block = noise.shape
    taps = filters.shape[-1]
    n_fft = 1 << (block + taps - 2).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(noise, n=n_fft) * torch.fft.rfft(filters, n=n_fft), n=n_fft)
    half = taps // 2
    return y[..., half: half + block].reshape(b, t * block)


def reverb_impulse(noise: Tensor, decay: Tensor, wet: Tensor, sample_rate: int) -> Tensor:
    """The learnable reverb impulse of REFERENCE §1: ``noise * exp(-softplus(-decay) t 500) * sigmoid(wet)``, first sample 1."""
    length = noise.shape[-1]
    t = torch.arange(length, device=noise.device, dtype=noise.dtype) / sample_rate
    env = torch.exp(-F.softplus(-decay) * t * 500.0)
    ir = noise * env * torch.sigmoid(wet)
    return torch.cat([torch.ones_like(ir[:1]), ir[1:]])


def fft_convolve_tail(x: Tensor, impulse_f: Tensor, n_fft: int, tail: Tensor) -> tuple[Tensor, Tensor]:
    """Causal convolution of a buffer with a long impulse, carrying the tail across buffers.

    ``out = (x * h)[:N] + tail[:N]`` and the new tail holds what spills past the buffer, so a clip
    convolved offline equals the same clip convolved buffer by buffer.

    Args:
        x: ``(B, N)``.
        impulse_f: ``torch.fft.rfft(h, n=n_fft)`` of the impulse ``h`` of length ``L``.
        n_fft: FFT size, at least ``N + L - 1``.
        tail: ``(B, L - 1)`` the carried spill-over (zeros for a fresh signal).

    Returns:
        ``(B, N)`` and the new ``(B, L - 1)`` tail.
    """
    n = x.shape[-1]
    lt = tail.shape[-1]
    y = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * impulse_f, n=n_fft)[..., : n + lt]
    if n >= lt:
        head = torch.cat([y[..., :lt] + tail, y[..., lt:n]], dim=-1)
        return head, y[..., n:]
    out = y[..., :n] + tail[..., :n]
    new_tail = y[..., n:] + F.pad(tail[..., n:], (0, n))
    return out, new_tail


def fm_synth(
    phases: Tensor, levels: Tensor, modulators: tuple[tuple[int, ...], ...], carriers: tuple[int, ...]
) -> Tensor:
    """Six-operator FM (phase modulation): ``op_k = ol_k sin(phase_k + 2 pi sum(op_m for m modulating k))``.

    Args:
        phases: ``(B, 6, N)`` running phase of each operator (ratio * f0 already applied).
        levels: ``(B, 6, N)`` output levels (modulation indices in multiples of 2 pi).
        modulators: for operator ``k`` (0-based), the 0-based operators that modulate it. Every
            modulator has a higher index than the operator it modulates.
        carriers: 0-based operators summed into the output.

    Returns:
        ``(B, N)`` the sum of the carriers.
    """
    n_ops = phases.shape[1]
    out: list[Tensor | None] = [None] * n_ops
    for k in range(n_ops - 1, -1, -1):  # modulators first (6 operators: a loop over operators, not samples)
        mods = [out[m] for m in modulators[k]]
        arg = phases[:, k]
        if mods:
            total = mods[0] if len(mods) == 1 else torch.stack(mods).sum(0)  # type: ignore[arg-type]
            arg = arg + TWO_PI * total
        out[k] = levels[:, k] * torch.sin(arg)
    return torch.stack([out[c] for c in carriers]).sum(0)  # type: ignore[misc]
