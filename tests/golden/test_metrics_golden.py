"""Golden values: MSS against an independent NumPy implementation, FAD on Gaussians with a closed form,
and checked-in reference numbers (tests/golden/fixtures/metrics_golden.json) for fixed signals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ddspbench.suite.metrics.fad import fad, frechet_distance
from ddspbench.suite.metrics.mss import DEFAULT_SCALES, mss, mss_per_clip

FIXTURES = Path(__file__).parent / "fixtures" / "metrics_golden.json"


def numpy_mss(a: np.ndarray, b: np.ndarray, scales: tuple[int, ...] = DEFAULT_SCALES) -> float:
    """REFERENCE §5 written from scratch with NumPy: reflect-padded, Hann-windowed frames, |rfft| / sqrt(n)."""

    def mag(x: np.ndarray, n: int) -> np.ndarray:
        hop = n // 4
        padded = np.pad(x, (n // 2, n // 2), mode="reflect")
        count = 1 + (padded.size - n) // hop
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann
        frames = np.stack([padded[i * hop : i * hop + n] * window for i in range(count)])
        return np.abs(np.fft.rfft(frames, axis=1)) / np.sqrt(n)  # normalized=True: frame_length ** -0.5

    total = 0.0
    for n in scales:
        sa, sb = mag(a, n), mag(b, n)
        total += np.mean(np.abs(sa - sb)) + np.mean(np.abs(np.log(sa + 1e-7) - np.log(sb + 1e-7)))
    return float(total)


def fixed_signals() -> dict[str, np.ndarray]:
    """Deterministic test signals, 1 s at 16 kHz."""
    sr = 16000
    t = np.arange(sr) / sr
    rng = np.random.default_rng(1234)
    return {
        "sine440": 0.5 * np.sin(2 * np.pi * 440 * t),
        "sine660": 0.5 * np.sin(2 * np.pi * 660 * t),
        "saw220": 0.3 * (2 * ((220 * t) % 1.0) - 1.0),
        "noise": 0.1 * rng.standard_normal(sr),
        "chirp": 0.4 * np.sin(2 * np.pi * (200 * t + 400 * t**2)),
    }


PAIRS = [("sine440", "sine660"), ("sine440", "noise"), ("saw220", "chirp"), ("noise", "chirp")]


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_mss_matches_numpy_implementation(pair: tuple[str, str]) -> None:
    sig = fixed_signals()
    a, b = sig[pair[0]], sig[pair[1]]
    got = float(mss(torch.from_numpy(a), torch.from_numpy(b)))
    assert got == pytest.approx(numpy_mss(a, b), rel=1e-6)


def test_mss_identity_and_symmetry() -> None:
    sig = fixed_signals()
    for name, x in sig.items():
        assert float(mss(torch.from_numpy(x), torch.from_numpy(x))) == 0.0, name
    a, b = torch.from_numpy(sig["saw220"]), torch.from_numpy(sig["chirp"])
    assert float(mss(a, b)) == pytest.approx(float(mss(b, a)), rel=1e-12)
    batch = torch.stack([a, b])
    per = mss_per_clip(batch, batch.flip(0))
    assert per.shape == (2,) and float(per[0]) == pytest.approx(float(per[1]), rel=1e-12)


def test_mss_checked_in_values() -> None:
    golden = json.loads(FIXTURES.read_text())
    sig = fixed_signals()
    for key, expected in golden["mss"].items():
        a, b = key.split("|")
        got = float(mss(torch.from_numpy(sig[a]).float(), torch.from_numpy(sig[b]).float()))
        assert got == pytest.approx(expected, rel=golden["rtol"]), key


def test_fad_on_gaussians_with_closed_form() -> None:
    # Isotropic Gaussians N(0, s1^2 I) and N(m, s2^2 I): FAD = |m|^2 + D (s1 - s2)^2
    d, s1, s2, m = 6, 1.0, 2.0, 0.5
    expected = d * m**2 + d * (s1 - s2) ** 2
    got = frechet_distance(np.zeros(d), s1**2 * np.eye(d), np.full(d, m), s2**2 * np.eye(d))
    assert got == pytest.approx(expected, rel=1e-9)
    # sampled: converges to the closed form
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, s1, size=(20000, d))
    y = rng.normal(m, s2, size=(20000, d))
    assert fad(x, y) == pytest.approx(expected, rel=0.05)


def test_logmel_fad_checked_in_value() -> None:
    from ddspbench.suite.metrics.embeddings import LogMelEmbedding

    golden = json.loads(FIXTURES.read_text())
    emb = LogMelEmbedding()
    sig = fixed_signals()
    a = np.concatenate([emb.embed(sig[k].astype(np.float32)) for k in ("sine440", "saw220", "noise")])
    b = np.concatenate([emb.embed(sig[k].astype(np.float32)) for k in ("sine660", "chirp", "noise")])
    assert fad(a, b) == pytest.approx(golden["fad_logmel"], rel=golden["rtol_fad"])


def test_logmel_fad_and_kad_grow_as_noise_is_added() -> None:
    from ddspbench.suite.metrics.compare import compare_sets
    from ddspbench.suite.metrics.embeddings import LogMelEmbedding

    emb = LogMelEmbedding()
    sig = fixed_signals()
    rng = np.random.default_rng(7)
    clips = [sig[k].astype(np.float32) for k in ("sine440", "sine660", "saw220", "chirp")]
    ref = [emb.embed(c) for c in clips]
    noise = [rng.standard_normal(c.size).astype(np.float32) for c in clips]
    from ddspbench.suite.metrics.fad import kad, median_bandwidth

    ref_rows = np.concatenate(ref)
    sigma = median_bandwidth(ref_rows)  # one fixed kernel: MMD^2 then grows with the distortion
    fads, kads = [], []
    for level in (0.0, 0.003, 0.03, 0.3):
        evaluated = [emb.embed(c + level * n) for c, n in zip(clips, noise)]
        out = compare_sets(ref, evaluated)
        fads.append(out["fad"])
        # compare_sets takes kadtk's bandwidth from the evaluated set, so its kernel changes with the noise
        # level and KAD need not be monotonic; with a fixed kernel it must be
        assert out["kad"] == pytest.approx(kad(ref_rows, np.concatenate(evaluated)), rel=1e-9)
        kads.append(kad(ref_rows, np.concatenate(evaluated), bandwidth=sigma))
    assert abs(fads[0]) < 1e-6 * fads[-1]
    assert all(x < y for x, y in zip(fads, fads[1:])), fads
    assert all(x < y for x, y in zip(kads, kads[1:])), kads
