"""Shared DSP blocks of the DDSP families, as small pure functions.

Conventions: audio is ``(B, N)``; frame-rate tensors are ``(B, T, C)`` with ``N = 64 T``
(16 kHz audio, 250 frames/s, REFERENCE §1). Every function is vectorised over samples (no Python
loop over samples or frames) and works on any device.

Everything that must continue across streaming buffers takes its carried value as an argument and
returns the new one (oscillator phase, previous control frame for linear upsampling, reverb input history,
noise block counter), so that one offline call equals the same clip run buffer by buffer.

Departures from a plain ``F.interpolate`` port, both needed for exact streaming:

* linear upsampling is *causal*: inside frame ``t`` the value ramps from frame ``t-1`` to frame
  ``t`` (``F.interpolate(mode="linear")`` looks half a frame ahead, which a buffer cannot know);
* the noise source is a counter-based hash of ``(seed, batch index, block index, sample)``, so the
  noise of block ``k`` does not depend on how the clip was cut into buffers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "TWO_PI",
    "exp_sigmoid",
    "upsample_nearest",
    "linear_ramp",
    "upsample_linear_causal",
    "oscillator_phase",
    "harmonic_amplitudes",
    "harmonic_bank",
    "BANK_KERNELS",
    "kernels_without_grad",
    "GRU_KERNELS",
    "use_gru_kernels",
    "torch_paths",
    "wavetable_oscillator",
    "noise_key",
    "counter_uniform",
    "noise_filter_basis",
    "bands_to_filter",
    "filtered_noise",
    "reverb_impulse",
    "partition_spectra",
    "convolve_history",
    "block_spectra",
    "convolve_partitioned",
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


def linear_ramp(factor: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(j + 1) / factor`` for ``j < factor``, shaped ``(1, 1, factor, 1)`` for :func:`upsample_linear_causal`."""
    return torch.arange(1, factor + 1, device=device, dtype=dtype).div_(factor).view(1, 1, factor, 1)


def upsample_linear_causal(x: Tensor, prev: Tensor, factor: int, ramp: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Causal linear upsampling: in frame ``t``, sample ``j`` is ``x[t-1] + (x[t]-x[t-1]) (j+1)/factor``.

    Args:
        x: frames ``(B, T, C)``.
        prev: the frame before ``x[:, 0]`` ``(B, 1, C)`` (for a fresh signal, ``x[:, :1]``).
        factor: samples per frame.
        ramp: optional precomputed ``linear_ramp(factor)``.

    Returns:
        ``(B, T*factor, C)`` and the new ``prev`` (the last frame).
    """
    b, t, c = x.shape
    before = torch.cat([prev, x[:, :-1]], dim=1)  # (B, T, C)
    if ramp is None:
        ramp = linear_ramp(factor, x.device, x.dtype)
    out = before.unsqueeze(2) + (x - before).unsqueeze(2) * ramp
    return out.reshape(b, t * factor, c), x[:, -1:]


def oscillator_phase(f0_up: Tensor, phase0: Tensor, ratios: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """Running phase of oscillators at ``ratio * f0``, carried across calls.

    Accumulated in float64 (then wrapped to ``[0, 2 pi)`` and cast back), so an offline call and
    the same signal cut into buffers agree to float32 rounding.

    Args:
        f0_up: sample-rate fundamental ``(B, N)`` in Hz.
        phase0: phase before the first sample, ``(B, R)`` float64 (one per ratio).
        ratios: frequency ratios ``(R,)`` float64 (1 for a plain oscillator).
        sample_rate: Hz.

    Returns:
        phases ``(B, R, N)`` (``f0_up``'s dtype, radians, wrapped; sample ``n`` holds ``phase0`` plus
        the increments up to and including ``n``) and the phase after the last sample ``(B, R)``.
    """
    inc = f0_up.unsqueeze(1).double() * (ratios * (TWO_PI / sample_rate)).view(1, -1, 1)
    phase = torch.remainder(torch.cumsum(inc, dim=-1).add_(phase0.unsqueeze(-1)), TWO_PI)
    return phase.to(f0_up.dtype), phase[..., -1]


def harmonic_amplitudes(
    amplitude: Tensor, distribution: Tensor, f0_hz: Tensor, sample_rate: int, nyquist_gain: float = 1e-4,
    harmonics: Tensor | None = None,
) -> Tensor:
    """Per-harmonic amplitudes: distribution (harmonics above Nyquist times 1e-4), normalised to sum 1, times amplitude.

    Args:
        amplitude: ``(B, T, 1)`` (positive, synth space).
        distribution: ``(B, T, K)`` (positive, synth space).
        f0_hz: ``(B, T, 1)``.
        harmonics: optional precomputed ``1..K``.
    """
    if harmonics is None:
        harmonics = torch.arange(1, distribution.shape[-1] + 1, device=distribution.device, dtype=distribution.dtype)
    above = (f0_hz * harmonics) >= sample_rate / 2
    dist = torch.where(above, distribution * nyquist_gain, distribution)
    dist = dist / dist.sum(-1, keepdim=True)
    return dist * amplitude


BANK_KERNELS = True
"""Whether :func:`harmonic_bank` may train through the compiled CPU kernels (:mod:`baselines._train_kernels`);
``False`` keeps the tensor path everywhere (``benchmarks/bench_train.py`` times both)."""


_BANK_KERNELS_NO_GRAD = False


@contextlib.contextmanager
def kernels_without_grad() -> Iterator[None]:
    """Inside, the training kernels (:func:`harmonic_bank`'s and the decoders' GRU, :data:`GRU_KERNELS`) serve a forward
    without autograd too (CPU float32): a frozen teacher rendering distillation targets every training step. The
    kernels evaluate the sines in float64, so the audio moves by the float32 path's own rounding of ``k * phase``
    (about 4e-5 rad at k = 100), towards the exact sum; evaluation and validation keep the tensor path."""
    global _BANK_KERNELS_NO_GRAD
    before = _BANK_KERNELS_NO_GRAD
    _BANK_KERNELS_NO_GRAD = True
    try:
        yield
    finally:
        _BANK_KERNELS_NO_GRAD = before


@contextlib.contextmanager
def torch_paths() -> Iterator[None]:
    """Inside, the GRU kernels and :func:`kernels_without_grad` are off: the network's matrix products run as torch
    ops, where ``FlopCounterMode`` sees them (:func:`suite.compute.step_flops` counts a step so; the harmonic bank's
    training kernel is left as it was, uncounted, as before)."""
    global _TORCH_PATHS
    before = _TORCH_PATHS
    _TORCH_PATHS = True
    try:
        yield
    finally:
        _TORCH_PATHS = before


_TORCH_PATHS = False
GRU_KERNELS = True
"""Whether the HpN/Wavetable decoders' GRU may train through the compiled recurrence of :mod:`baselines._train_kernels`
(:func:`use_gru_kernels`); ``False`` keeps torch's GRU everywhere."""


def use_gru_kernels(gru: torch.nn.Module, x: Tensor) -> bool:
    """The GRU kernels serve training (autograd on) and :func:`kernels_without_grad` on CPU float32, for a plain one-layer,
    unidirectional, batch-first ``nn.GRU`` with biases whose ``forward`` nobody replaced (torch-pruning traces through a
    stand-in, :func:`compressors._gru.opaque_gru_tracing`); inference otherwise keeps torch's GRU."""
    return (GRU_KERNELS and not _TORCH_PATHS and (torch.is_grad_enabled() or _BANK_KERNELS_NO_GRAD)
            and type(gru) is torch.nn.GRU
            and "forward" not in vars(gru)
            and gru.num_layers == 1 and gru.bias and not gru.bidirectional and gru.batch_first
            and x.device.type == "cpu" and x.dtype == torch.float32 and gru.weight_hh_l0.dtype == torch.float32
            and x.shape[1] > 1 and not torch.jit.is_tracing() and not torch.jit.is_scripting())


def _use_bank_kernels(phase: Tensor, amplitudes: Tensor) -> bool:
    """The kernels serve autograd on CPU float32 (training), and a no-grad forward inside
    :func:`kernels_without_grad`; other inference, other devices and dtypes take the tensor path."""
    wanted = (amplitudes.requires_grad and torch.is_grad_enabled()) or (
        _BANK_KERNELS_NO_GRAD and not _TORCH_PATHS and not torch.is_grad_enabled())
    return (BANK_KERNELS and wanted and not phase.requires_grad
            and phase.device.type == "cpu" and amplitudes.device.type == "cpu"
            and phase.dtype == torch.float32 and amplitudes.dtype == torch.float32
            and not torch.jit.is_tracing() and not torch.jit.is_scripting())


def harmonic_bank(phase: Tensor, amplitudes: Tensor, harmonics: Tensor | None = None) -> Tensor:
    """Additive synthesis ``sum_k a_k[t] sin(k phase[n])`` with amplitudes held per frame ('nearest').

    ``harmonics`` must be ``1..K`` (the default) when the compiled kernels may run (CPU float32 with a
    gradient for the amplitudes: see :data:`BANK_KERNELS`); they give the same sums to float32 rounding.

    Args:
        phase: fundamental phase ``(B, N)``.
        amplitudes: ``(B, T, K)`` per-frame harmonic amplitudes, ``N = block * T``.
        harmonics: optional precomputed ``1..K``.
    """
    b, t, k = amplitudes.shape
    if _use_bank_kernels(phase, amplitudes):
        from ddspbench.baselines._train_kernels import harmonic_bank_cpu

        return harmonic_bank_cpu(phase, amplitudes)
    if harmonics is None:
        harmonics = torch.arange(1, k + 1, device=phase.device, dtype=phase.dtype)
    s = torch.sin(phase.view(b, t, -1, 1) * harmonics)  # (B, T, block, K)
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


def noise_key(seed: Tensor) -> Tensor:
    """Per-stream hash key ``(B, 1, 1)`` of int64 seeds (computed once per stream, kept in the state)."""
    lo = seed & _MASK32
    hi = (seed >> 32) & _MASK32
    return _hash32(_hash32(lo * 0x27D4EB2F + 0x165667B1) ^ hi).view(-1, 1, 1)


def counter_uniform(key: Tensor, start_block: int | Tensor, n_blocks: int, block: int) -> Tensor:
    """Uniform noise in ``[-1, 1)`` as a pure function of ``(key, block index, sample in block)``.

    Args:
        key: ``(B, 1, 1)`` from :func:`noise_key`, one stream per batch item.
        start_block: index of the first block (the running block counter), a Python int or a 0-d int64 tensor.
        n_blocks: blocks to draw.
        block: samples per block.

    Returns:
        ``(B, n_blocks, block)`` float32 on ``key``'s device.
    """
    if isinstance(start_block, Tensor):  # a 0-d int64 counter (traced/exported graphs keep it as data)
        counter = (torch.arange(n_blocks * block, device=key.device, dtype=torch.int64)
                   + start_block * block).view(1, n_blocks, block)
    else:
        counter = torch.arange(start_block * block, (start_block + n_blocks) * block, device=key.device,
                               dtype=torch.int64).view(1, n_blocks, block)
    x = _hash32((counter & _MASK32) ^ key)
    return (x >> 8).float().mul_(2.0 / (1 << 24)).sub_(1.0)


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


def noise_filter_basis(n_bands: int, taps: int, n_fft: int) -> Tensor:
    """``(n_bands, n_fft // 2 + 1)`` complex: the rfft (size ``n_fft``) of the filter each unit band gives.

    :func:`bands_to_filter` is linear in the band magnitudes, so ``bands @ basis`` is the spectrum of
    the windowed FIR of ``bands`` (computed once instead of an irfft + rfft per frame).
    """
    eye = torch.eye(n_bands, dtype=torch.float64)
    return torch.fft.rfft(bands_to_filter(eye, taps), n=n_fft).to(torch.complex64)


def filtered_noise(noise: Tensor, bands: Tensor, basis_ri: Tensor, taps: int) -> Tensor:
    """Filter each block of noise by the FIR of its frame's bands (linear convolution, aligned by the filter delay).

    Each block is filtered on its own (no overlap between blocks), so a block's output depends only
    on that block's noise and bands.

    Args:
        noise: ``(B, T, block)``.
        bands: ``(B, T, K)`` band magnitudes.
        basis_ri: :func:`noise_filter_basis` for ``K`` bands, ``taps`` taps and an FFT size of at
            least ``block + taps - 1``, as real numbers with real and imaginary parts interleaved:
            ``torch.view_as_real(basis).reshape(K, -1)``.
        taps: filter length (the filter is centred at ``taps // 2``).

    Returns:
        ``(B, T * block)``.
    """
    b, t, block = noise.shape
    n_fft = basis_ri.shape[-1] - 2
    if basis_ri.dtype != bands.dtype:
        basis_ri = basis_ri.to(bands.dtype)
    spec = torch.view_as_complex((bands @ basis_ri).view(b, t, -1, 2))
    y = torch.fft.irfft(torch.fft.rfft(noise, n=n_fft) * spec, n=n_fft)
    half = taps // 2
    return y[..., half: half + block].reshape(b, t * block)


def reverb_impulse(noise: Tensor, decay: Tensor, wet: Tensor, sample_rate: int) -> Tensor:
    """The learnable reverb impulse of REFERENCE §1: ``noise * exp(-softplus(-decay) t 500) * sigmoid(wet)``, first sample 1."""
    length = noise.shape[-1]
    t = torch.arange(length, device=noise.device, dtype=noise.dtype) / sample_rate
    env = torch.exp(-F.softplus(-decay) * t * 500.0)
    ir = noise * env * torch.sigmoid(wet)
    return torch.cat([torch.ones_like(ir[:1]), ir[1:]])


def partition_spectra(impulse: Tensor, block: int) -> Tensor:
    """Spectra of the impulse cut into ``block``-sample partitions: ``(P, block + 1)`` (rfft size ``2 block``)."""
    return torch.fft.rfft(impulse.view(-1, block), n=2 * block)


def convolve_history(x: Tensor, history: Tensor, impulse_f: Tensor, n_fft: int) -> Tensor:
    """Causal convolution of ``x`` with an impulse, the samples before ``x`` given by ``history``.

    One big FFT (offline and long buffers). ``out[n] = sum_k h[k] z[L + n - k]`` with ``z = [history, x]``.

    Args:
        x: ``(B, N)``.
        history: ``(B, L)`` the ``L`` input samples before ``x`` (zeros for a fresh signal).
        impulse_f: ``torch.fft.rfft(h, n=n_fft)`` of the impulse (length at most ``L``).
        n_fft: at least ``L + N + len(h) - 1``.
    """
    z = torch.cat([history, x], dim=-1)
    lh = history.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(z, n=n_fft) * impulse_f, n=n_fft)[..., lh: lh + x.shape[-1]]


def block_spectra(z: Tensor, block: int) -> Tensor:
    """Overlap-save input spectra: for ``z`` of ``(F + 1)`` blocks, rfft of each pair ``[z_{j-1}, z_j]`` -> ``(B, F, block + 1)``."""
    return torch.fft.rfft(z.unfold(-1, 2 * block, block), n=2 * block)


def convolve_partitioned(x_spec: Tensor, fdl: Tensor, parts_rev: Tensor, block: int) -> Tensor:
    """Uniformly partitioned overlap-save convolution of ``F`` new blocks (low latency streaming).

    Args:
        x_spec: ``(B, F, block + 1)`` overlap-save spectra of the new blocks (:func:`block_spectra`).
        fdl: ``(B, P - 1, block + 1)`` spectra of the previous ``P - 1`` blocks (the delay line).
        parts_rev: ``(P, block + 1)`` partition spectra, partition order reversed (``partition_spectra(h).flip(0)``).
        block: samples per block.

    Returns:
        ``(B, F * block)`` output and the new delay line ``(B, P - 1, block + 1)``.
    """
    b, f, _ = x_spec.shape
    p = parts_rev.shape[0]
    ext = torch.cat([fdl, x_spec], dim=1)  # (B, P - 1 + F, K)
    if f == 1:
        acc = (ext * parts_rev).sum(1, keepdim=True)  # (B, 1, K)
    else:
        acc = (ext.unfold(1, p, 1) * parts_rev.T).sum(-1)  # (B, F, K, P) -> (B, F, K)
    y = torch.fft.irfft(acc, n=2 * block)[..., block:]
    return y.reshape(b, f * block), ext[:, f:]


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
