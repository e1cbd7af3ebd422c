"""FAD, FAD-infinity, KAD and bootstrap intervals (suite.metrics.fad, suite.metrics.compare)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from ddspbench.suite.metrics import fad as F
from ddspbench.suite.metrics.compare import compare_sets


def _reference_fd(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """A direct re-derivation of the frechet_audio_distance computation, written out for the test."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = np.real(covmean)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_diagonal_gaussians_match_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    got = F.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-9)
    assert F.frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method="eig") == pytest.approx(expected, rel=1e-9)


def test_one_dimensional_case() -> None:
    # N(0, 4) vs N(3, 1): 3^2 + (2 - 1)^2 = 10
    assert F.frechet_distance(np.array([0.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]])) == pytest.approx(10.0)


@pytest.mark.parametrize("n", [20, 300])  # rank-deficient (n < D) and full-rank covariances
def test_matches_direct_reimplementation_to_1e6(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 64))
    y = rng.normal(size=(n, 64)) @ rng.normal(size=(64, 64)) * 0.3 + 0.5
    mu1, s1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, s2 = y.mean(0), np.cov(y, rowvar=False)
    ref = _reference_fd(mu1, s1, mu2, s2)
    assert F.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    assert F.fad(x, y) == pytest.approx(ref, rel=1e-6)
    assert F.fad_fast(x, y) == pytest.approx(ref, rel=1e-6)
    mu, cov = F.embedding_stats(x)
    assert np.allclose(mu, mu1) and np.allclose(cov, s1)


def test_fad_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(1).normal(size=(200, 32))
    assert abs(F.fad(x, x)) < 1e-6


def test_fad_and_kad_grow_monotonically_with_noise() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 16))
    base = rng.normal(size=(300, 16))
    noise = rng.normal(size=(300, 16))
    fads, kads = [], []
    for level in (0.0, 0.25, 0.5, 1.0, 2.0):
        b = base + level * noise
        fads.append(F.fad(a, b))
        kads.append(F.kad(a, b, bandwidth=F.median_bandwidth(a)))
    assert all(x < y for x, y in zip(fads, fads[1:])), fads
    assert all(x < y for x, y in zip(kads, kads[1:])), kads


def test_kad_is_near_zero_for_one_distribution_and_unbiased() -> None:
    rng = np.random.default_rng(3)
    vals = [F.kad(rng.normal(size=(60, 8)), rng.normal(size=(60, 8))) for _ in range(30)]
    far = F.kad(rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 2.0)
    assert abs(np.mean(vals)) < 0.1 * far
    assert min(vals) < 0 < max(vals)  # unbiased: scatters around zero


def test_kad_matches_an_explicit_double_loop() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    sigma = 1.3

    def k(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.exp(-np.sum((x - y) ** 2) / (2 * sigma**2)))

    aa = sum(k(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    bb = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    ab = sum(k(a[i], b[j]) for i in range(7) for j in range(5)) / 35
    assert F.kad(a, b, bandwidth=sigma) == pytest.approx(100 * (aa + bb - 2 * ab), rel=1e-9)


def test_fad_inf_removes_the_small_sample_bias() -> None:
    rng = np.random.default_rng(5)
    d = 8
    a = rng.normal(size=(4000, d))  # reference with near-exact statistics
    b = rng.normal(size=(400, d)) + 0.2  # true FAD = d * 0.04 = 0.32
    finite = F.fad(a, b)
    res = F.fad_inf(a, b, min_n=50, steps=8, repeats=4)
    assert res.slope > 0  # fewer samples -> larger FAD
    assert abs(res.score - 0.32) < abs(finite - 0.32)
    assert len(res.points) == 8 and res.points[-1][0] == 400


def test_bootstrap_intervals_contain_the_full_set_value() -> None:
    rng = np.random.default_rng(6)
    clips_a = [rng.normal(size=(5, 6)) for _ in range(12)]
    clips_b = [rng.normal(size=(5, 6)) + 0.4 for _ in range(12)]
    out = compare_sets(clips_a, clips_b, bootstrap=60, with_inf=True)
    for name in ("fad", "kad"):
        lo, hi = out["intervals"][name]
        assert lo <= out[name] <= hi, (name, lo, out[name], hi)
        assert hi > lo
    assert out["n_clips"] == [12, 12] and out["n_frames"] == [60, 60]
    assert out["fad_inf"] is not None
    lo, hi = F.bootstrap_mean_interval([1.0, 2.0, 3.0, 4.0, 5.0], seed=1)
    assert lo <= 3.0 <= hi


def test_too_few_rows_or_clips_are_refused() -> None:
    x = np.zeros((1, 4))
    with pytest.raises(ValueError, match="at least 2"):
        F.embedding_stats(x)
    with pytest.raises(ValueError, match="at least 2 clips"):
        compare_sets([np.ones((3, 4))], [np.ones((3, 4)), np.ones((3, 4))])
    with pytest.raises(ValueError, match="NaN"):
        F.fad(np.full((3, 2), np.nan), np.ones((3, 2)))


def _kadtk_fixture() -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "data" / "kadtk_fixture.json").read_text())


@pytest.mark.parametrize("case", _kadtk_fixture()["cases"], ids=lambda c: c["name"])
def test_kad_equals_kadtk_on_the_same_embeddings(case: dict) -> None:
    # the fixture's numbers come from kadtk 1.1.0's own calc_kernel_audio_distance (make_kadtk_fixture.py)
    rng = np.random.default_rng(case["seed"])
    a = rng.normal(size=(case["n_ref"], case["dim"]))
    b = rng.normal(size=(case["n_eval"], case["dim"])) * case["scale"] + case["shift"]
    assert F.median_bandwidth(b) == pytest.approx(case["bandwidth"], rel=1e-6)  # kadtk: float32 distances
    assert F.kad(a, b) == pytest.approx(case["kad_float64"], rel=1e-6, abs=1e-9)
    assert F.kad(a, b) == pytest.approx(case["kad_float32"], rel=1e-4)
    out = compare_sets([a[:20], a[20:]], [b[: len(b) // 2], b[len(b) // 2 :]])
    assert out["kad"] == pytest.approx(case["kad_float64"], rel=1e-6, abs=1e-9)


def test_median_bandwidth_takes_the_lower_middle_value_like_torch() -> None:
    # 4 points on a line: pairwise distances 1, 2, 3, 1, 2, 1 -> sorted 1 1 1 2 2 3: lower middle 1 (numpy's median: 1.5)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert F.median_bandwidth(x) == 1.0


def test_fad_inf_is_refused_when_the_sizes_cannot_support_it() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(500, 132)), rng.normal(size=(56, 132))  # the 56 rows of 132 dimensions
    with pytest.raises(ValueError, match=r"^FAD-infinity unavailable: 56 evaluated embeddings in 132 dimensions"):
        F.fad_inf(a, b)
    with pytest.raises(ValueError, match=r"^FAD-infinity unavailable: 100 reference embeddings in 132 dimensions"):
        F.fad_inf(a[:100], rng.normal(size=(400, 132)))
    # just enough: 3 subset sizes above the dimension
    res = F.fad_inf(rng.normal(size=(200, 10)), rng.normal(size=(13, 10)))
    assert [n for n, _ in res.points][0] == 11 and len(res.points) >= 3
    out = compare_sets([a[:250], a[250:]], [b[:28], b[28:]], with_inf=True)
    assert out["fad_inf"] is None and out["fad_inf_fit"]["error"].startswith("FAD-infinity unavailable")
