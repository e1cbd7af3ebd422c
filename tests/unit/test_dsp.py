"""Pure DSP blocks of baselines/dsp.py and the reverb module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddspbench.baselines import dsp
from ddspbench.baselines._base import Reverb, fast_fft_len

SR = 16_000


def _peak_hz(x: torch.Tensor) -> float:
    spec = np.abs(np.fft.rfft(x.double().numpy() * np.hanning(x.shape[-1])))
    return float(np.argmax(spec) * SR / x.shape[-1])


def test_exp_sigmoid_range_and_midpoint() -> None:
    x = torch.tensor([-100.0, 0.0, 100.0])
    y = dsp.exp_sigmoid(x)
    assert y[0].item() == pytest.approx(1e-7, abs=1e-9)
    assert y[1].item() == pytest.approx(2 * 0.5 ** math.log(10) + 1e-7, rel=1e-6)
    assert y[2].item() == pytest.approx(2.0, rel=1e-6)
    assert torch.all(torch.diff(dsp.exp_sigmoid(torch.linspace(-5, 5, 50))) > 0)


def test_upsample_nearest_repeats_frames() -> None:
    x = torch.arange(6.0).view(1, 3, 2)
    y = dsp.upsample_nearest(x, 4)
    assert y.shape == (1, 12, 2)
    assert torch.equal(y[0, 4:8], x[0, 1].expand(4, 2))


def test_causal_linear_upsampling_ramps_and_chains() -> None:
    x = torch.tensor([[1.0, 3.0, 3.0, -1.0]]).unsqueeze(-1)
    whole, last = dsp.upsample_linear_causal(x, x[:, :1], 4)
    assert whole.shape == (1, 16, 1)
    assert torch.allclose(whole[0, :4, 0], torch.ones(4))  # fresh start: flat first frame
    assert torch.allclose(whole[0, 4:8, 0], torch.tensor([1.5, 2.0, 2.5, 3.0]))
    assert whole[0, -1, 0].item() == -1.0 and last.item() == -1.0
    a, prev = dsp.upsample_linear_causal(x[:, :2], x[:, :1], 4)
    b, _ = dsp.upsample_linear_causal(x[:, 2:], prev, 4)
    assert torch.equal(torch.cat([a, b], dim=1), whole)


def test_harmonic_oscillator_frequency_and_phase_carry() -> None:
    f0 = torch.full((1, 16000), 440.0)
    phase, end = dsp.oscillator_phase(f0, torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64), SR)
    amps = torch.zeros(1, 250, 3)
    amps[..., 0] = 1.0
    audio = dsp.harmonic_bank(phase[:, 0], amps)
    assert _peak_hz(audio[0]) == pytest.approx(440.0, abs=1.5)
    assert torch.allclose(audio[0], torch.sin(2 * math.pi * 440.0 * torch.arange(1, 16001) / SR), atol=2e-3)
    # Second harmonic only -> 880 Hz.
    amps2 = torch.zeros(1, 250, 3)
    amps2[..., 1] = 1.0
    assert _peak_hz(dsp.harmonic_bank(phase[:, 0], amps2)[0]) == pytest.approx(880.0, abs=1.5)
    # Cutting the signal in two and carrying the phase gives the same phase.
    p1, mid = dsp.oscillator_phase(f0[:, :6400], torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64), SR)
    p2, end2 = dsp.oscillator_phase(f0[:, 6400:], mid, torch.ones(1, dtype=torch.float64), SR)
    diff = torch.remainder(torch.cat([p1, p2], dim=-1) - phase + math.pi, 2 * math.pi) - math.pi
    assert diff.abs().max().item() < 1e-5
    assert (torch.remainder(end2 - end + math.pi, 2 * math.pi) - math.pi).abs().max().item() < 1e-9


def test_phase_ratios_give_operator_frequencies() -> None:
    f0 = torch.full((1, 16000), 200.0)
    ratios = torch.tensor([1.0, 1.5, 3.2], dtype=torch.float64)
    phase, _ = dsp.oscillator_phase(f0, torch.zeros(1, 3, dtype=torch.float64), ratios, SR)
    for i, r in enumerate(ratios.tolist()):
        assert _peak_hz(torch.sin(phase[0, i])) == pytest.approx(200.0 * r, abs=1.5)


def test_harmonics_above_nyquist_attenuated() -> None:
    k = 20
    dist = torch.ones(1, 1, k)
    amp = torch.ones(1, 1, 1)
    f0 = torch.full((1, 1, 1), 1000.0)  # harmonics 8.. are at or above 8 kHz
    a = dsp.harmonic_amplitudes(amp, dist, f0, SR)
    assert a.sum().item() == pytest.approx(1.0, rel=1e-5)
    below, above = a[0, 0, :7], a[0, 0, 7:]
    assert torch.all(above <= below.min() * 1.01e-4)
    low = dsp.harmonic_amplitudes(amp, dist, torch.full((1, 1, 1), 100.0), SR)
    assert torch.allclose(low, torch.full_like(low, 1.0 / k))


def test_wavetable_oscillator_reads_a_sine_table() -> None:
    table = torch.sin(2 * math.pi * torch.arange(512) / 512).view(1, 512)
    f0 = torch.full((1, 6400), 330.0)
    phase, _ = dsp.oscillator_phase(f0, torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64), SR)
    out = dsp.wavetable_oscillator(phase[:, 0], table, torch.full((1, 100, 1), 0.5))
    assert torch.allclose(out, 0.5 * torch.sin(phase[:, 0]), atol=1e-4)
    assert _peak_hz(out[0]) == pytest.approx(330.0, abs=3.0)


def test_counter_noise_is_uniform_deterministic_and_block_addressable() -> None:
    key = dsp.noise_key(torch.tensor([1, 2], dtype=torch.int64))
    a = dsp.counter_uniform(key, 0, 200, 64)
    assert a.shape == (2, 200, 64)
    assert a.min() >= -1.0 and a.max() < 1.0
    assert abs(a.mean().item()) < 0.02 and a.var().item() == pytest.approx(1 / 3, rel=0.05)
    assert torch.equal(dsp.counter_uniform(key, 50, 10, 64), a[:, 50:60])
    assert not torch.allclose(a[0], a[1])
    lag1 = np.corrcoef(a[0].flatten()[:-1].numpy(), a[0].flatten()[1:].numpy())[0, 1]
    assert abs(lag1) < 0.03
    big = dsp.noise_key(torch.tensor([1 + (1 << 40)], dtype=torch.int64))
    assert not torch.equal(big, key[:1])


def test_noise_filter_basis_matches_direct_fir() -> None:
    torch.manual_seed(0)
    bands = torch.rand(1, 3, 65)
    noise = torch.rand(1, 3, 64) * 2 - 1
    basis = dsp.noise_filter_basis(65, 64, 128)
    fast = dsp.filtered_noise(noise, bands, torch.view_as_real(basis).reshape(65, -1), 64)
    fir = dsp.bands_to_filter(bands, 64)
    for t in range(3):
        full = np.convolve(noise[0, t].double().numpy(), fir[0, t].double().numpy())
        assert np.allclose(fast[0, 64 * t: 64 * (t + 1)].numpy(), full[32:96], atol=1e-5)


def test_low_bands_give_low_pass_noise() -> None:
    bands = torch.zeros(1, 100, 65)
    bands[..., :8] = 1.0  # up to about 1 kHz
    key = dsp.noise_key(torch.tensor([3]))
    basis = dsp.noise_filter_basis(65, 64, 128)
    y = dsp.filtered_noise(dsp.counter_uniform(key, 0, 100, 64), bands, torch.view_as_real(basis).reshape(65, -1), 64)
    spec = np.abs(np.fft.rfft(y[0].numpy())) ** 2
    freqs = np.fft.rfftfreq(y.shape[-1], 1 / SR)
    assert spec[freqs < 1500].sum() > 20 * spec[freqs > 3000].sum()


def test_reverb_with_zero_wet_passes_the_dry_signal() -> None:
    rv = Reverb(length=1024)
    with torch.no_grad():
        rv.wet.fill_(-1e4)
    x = torch.randn(2, 640)
    out, _ = rv(x, rv.init_state(2, x.device))
    assert torch.allclose(out, x, atol=1e-5)


def test_reverb_is_the_first_n_samples_of_the_full_convolution_and_chains() -> None:
    torch.manual_seed(1)
    rv = Reverb(length=2048).eval()
    x = torch.randn(1, 64 * 40)
    h = rv.impulse().detach().double().numpy()
    ref = np.convolve(x[0].double().numpy(), h)[: x.shape[-1]]
    with torch.no_grad():
        offline, _ = rv(x, rv.init_state(1, x.device))  # 40 blocks: the big-FFT path
        assert np.allclose(offline[0].numpy(), ref, atol=1e-4)
        for blocks in (1, 4, 8, 20):  # partitioned (<= 16 blocks) and big-FFT paths, mixed with carried state
            state = rv.init_state(1, x.device)
            parts = []
            for i in range(0, 40, blocks):
                y, state = rv(x[:, 64 * i: 64 * (i + blocks)], state)
                parts.append(y)
            assert torch.allclose(torch.cat(parts, dim=-1), offline, atol=1e-4)
        # Mixed buffer sizes: the long path recovers the input history from the partitioned delay line.
        state = rv.init_state(1, x.device)
        parts, i = [], 0
        for blocks in (1, 17, 3, 19):
            y, state = rv(x[:, 64 * i: 64 * (i + blocks)], state)
            parts.append(y)
            i += blocks
        assert torch.allclose(torch.cat(parts, dim=-1), offline, atol=1e-4)


def test_reverb_cache_follows_parameter_updates() -> None:
    rv = Reverb(length=1024).eval()
    x = torch.randn(1, 64)
    with torch.no_grad():
        a, _ = rv(x, rv.init_state(1, x.device))
        rv.wet.fill_(-1e4)
        b, _ = rv(x, rv.init_state(1, x.device))
    assert not torch.allclose(a, b)
    assert torch.allclose(b, x, atol=1e-5)


def test_fm_synth_carrier_and_modulation() -> None:
    f0 = torch.full((1, 16000), 220.0)
    ratios = torch.ones(6, dtype=torch.float64)
    phases, _ = dsp.oscillator_phase(f0, torch.zeros(1, 6, dtype=torch.float64), ratios, SR)
    levels = torch.zeros(1, 6, 16000)
    levels[:, 0] = 1.0
    mods: tuple[tuple[int, ...], ...] = ((1,), (), (), (), (), ())
    plain = dsp.fm_synth(phases, levels, mods, (0,))
    assert torch.allclose(plain, torch.sin(phases[:, 0]), atol=1e-6)
    levels[:, 1] = 0.3  # OP2 modulates OP1: energy moves to sidebands at 2*220, 3*220 Hz
    fm = dsp.fm_synth(phases, levels, mods, (0,))
    spec = np.abs(np.fft.rfft(fm[0].numpy()))
    assert spec[440] > 0.05 * spec[220]
    assert np.abs(np.fft.rfft(plain[0].numpy()))[440] < 1e-3 * spec[220]


def test_fast_fft_len_is_smooth_and_large_enough() -> None:
    for n in (1, 7, 16063, 79_999, 96_001):
        m = fast_fft_len(n)
        assert m >= n and m <= 2 * n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1
