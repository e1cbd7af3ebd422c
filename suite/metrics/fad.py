"""Distances between two sets of audio embeddings: FAD, FAD-infinity, KAD, and bootstrap intervals.

Pure NumPy/SciPy functions of embedding matrices (rows = embedding frames, columns = dimensions);
no files, no models. Embedding extraction and caching live in :mod:`suite.metrics.embeddings`.

**FAD** (Fréchet Audio Distance) fits a Gaussian to each set and returns the Fréchet distance
between them::

    FAD = |mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 tr( sqrtm(C_a C_b) )

with ``C`` the unbiased sample covariance (``np.cov``, rows as observations). The matrix square
root is ``scipy.linalg.sqrtm``; when it is not finite (a singular product), ``eps * I`` (eps 1e-6)
is added to both covariances and the root taken again; a negligible imaginary part is dropped.
This is the computation the ``frechet_audio_distance`` package does, so both give the same number.
Where that package would raise (an imaginary part above 1e-3 on the diagonal), this one retries with
the offset and keeps the real part.

**FAD-infinity** (as fadtk does): FAD of random subsets of ``b`` of several sizes N against the full
statistics of ``a``, a least-squares line of FAD against 1/N, and its value at 1/N = 0; every subset
larger than the embedding dimension (below it the covariance is rank-deficient and off the line).

**KAD** (Kernel Audio Distance, Chung et al. 2025) as kadtk 1.1.0's ``calc_kernel_audio_distance``
computes it: the unbiased estimator of the squared maximum mean discrepancy with a Gaussian RBF kernel
``k(x, y) = exp(-gamma |x - y|^2)``, ``gamma = 1 / (2 sigma^2 + 1e-8)``, ``sigma`` the median pairwise
Euclidean distance within the **evaluated** set ``b`` (kadtk's adaptive bandwidth; the lower middle
value for an even number of pairs, as ``torch.median``), times 100. Being unbiased, KAD can be slightly
negative for identical distributions. Checked against kadtk's own function on fixed embeddings
(``tests/unit/data/kadtk_fixture.json``). Note that the bandwidth, and so the kernel, depends on the
evaluated set: two candidates' KADs against one reference use different kernels (kadtk's choice).

FAD-infinity is refused (``"FAD-infinity unavailable: ..."``) where the sizes cannot support the
extrapolation (see :func:`fad_inf`).

**Bootstrap intervals** resample clips (not frames) with replacement in both sets. Resampling with
replacement duplicates clips, which inflates FAD (and the within-set kernel sums of KAD), so the
percentile interval is shifted by the bootstrap estimate of that bias (mean of the resamples minus
the full-set value) — the additive bias-corrected percentile interval — and clipped at 0 for FAD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

__all__ = [
    "SQRTM_EPS",
    "KAD_SCALE",
    "KAD_EPS",
    "FAD_INF_MIN_SIZES",
    "FADInfResult",
    "embedding_stats",
    "frechet_distance",
    "fad",
    "fad_fast",
    "fad_inf",
    "kad",
    "median_bandwidth",
    "bootstrap_interval",
    "bootstrap_mean_interval",
]

SQRTM_EPS = 1e-6
KAD_SCALE = 100.0
KAD_EPS = 1e-8  # kadtk's: gamma = 1 / (2 sigma^2 + eps)
FAD_INF_MIN_SIZES = 3  # subset sizes for the 1/N line: two define it, a third checks it


def _as_matrix(emb: np.ndarray, what: str = "embeddings") -> np.ndarray:
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (N, D) array, got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{what}: need at least 2 embedding rows to fit a covariance, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} hold NaN or infinite values")
    return x


def embedding_stats(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and unbiased covariance matrix of an (N, D) embedding matrix (N >= 2)."""
    x = _as_matrix(emb)
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _sqrtm_product(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    root = linalg.sqrtm(c1 @ c2)
    if not np.all(np.isfinite(root)):
        offset = np.eye(c1.shape[0]) * SQRTM_EPS
        root = linalg.sqrtm((c1 + offset) @ (c2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0.0, atol=1e-3):
            offset = np.eye(c1.shape[0]) * SQRTM_EPS
            root = linalg.sqrtm((c1 + offset) @ (c2 + offset))
        root = root.real
    return np.asarray(root)


def _trace_sqrt_product(c1: np.ndarray, c2: np.ndarray) -> float:
    # tr sqrtm(C1 C2) = sum of square roots of the eigenvalues of C1 C2 (real, >= 0 for PSD C1, C2;
    # round-off negatives clipped). Agrees with the sqrtm route to ~1e-8 relative and is much faster.
    w = np.linalg.eigvals(c1 @ c2)
    return float(np.sqrt(np.clip(w.real, 0.0, None)).sum())


def frechet_distance(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray, *, method: str = "sqrtm"
) -> float:
    """Fréchet distance between the Gaussians N(mu1, cov1) and N(mu2, cov2) (see module docstring).

    Args:
        method: ``"sqrtm"`` (the ``frechet_audio_distance`` computation, the default) or ``"eig"``
            (the trace term from the eigenvalues of C1 C2: same value to ~1e-8, faster; used for
            the many resamples of bootstrap intervals and FAD-infinity).
    """
    m1, m2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if m1.shape != m2.shape or c1.shape != c2.shape or c1.shape != (m1.size, m1.size):
        raise ValueError(f"shape mismatch: mu {m1.shape}/{m2.shape}, cov {c1.shape}/{c2.shape}")
    diff = m1 - m2
    if method == "sqrtm":
        tr_root = float(np.trace(_sqrtm_product(c1, c2)))
    elif method == "eig":
        tr_root = _trace_sqrt_product(c1, c2)
    else:
        raise ValueError(f"unknown method {method!r}; use 'sqrtm' or 'eig'")
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_root)


def fad(a: np.ndarray, b: np.ndarray, *, method: str = "sqrtm") -> float:
    """FAD between two embedding matrices (N_a, D) and (N_b, D) (``method``: see :func:`frechet_distance`)."""
    return frechet_distance(*embedding_stats(a), *embedding_stats(b), method=method)


def fad_fast(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`fad` computed for speed (resampling loops); equal to it to ~1e-8 relative.

    With centred rows X_a, X_b: C_a C_b has the same non-zero eigenvalues as M M^T with
    M = X_b X_a^T / sqrt((n_a - 1)(n_b - 1)), so tr sqrtm(C_a C_b) is the sum of the singular values
    of M — an (n_b x n_a) problem instead of a (D x D) one when there are fewer rows than dimensions.
    """
    xa, xb = _as_matrix(a), _as_matrix(b)
    if min(xa.shape[0], xb.shape[0]) >= xa.shape[1]:
        return fad(xa, xb, method="eig")
    ca, cb = xa - xa.mean(0), xb - xb.mean(0)
    na, nb = xa.shape[0] - 1, xb.shape[0] - 1
    diff = xa.mean(0) - xb.mean(0)
    nuclear = float(np.linalg.svd(cb @ ca.T, compute_uv=False).sum()) / np.sqrt(na * nb)
    return float(diff @ diff + np.sum(ca * ca) / na + np.sum(cb * cb) / nb - 2.0 * nuclear)


@dataclass(frozen=True)
class FADInfResult:
    """FAD-infinity: the intercept of FAD against 1/N, with the fit's slope, r^2 and the points used."""

    score: float
    slope: float
    r2: float
    points: list[tuple[int, float]] = field(default_factory=list)


def fad_inf(
    a: np.ndarray,
    b: np.ndarray,
    *,
    min_n: int | None = None,
    steps: int = 10,
    repeats: int = 3,
    seed: int = 0,
) -> FADInfResult:
    """FAD extrapolated to an infinite number of ``b`` embeddings.

    Refused (``ValueError`` starting "FAD-infinity unavailable") where the sample cannot support the
    extrapolation: the reference set has no more rows than dimensions, or there are not
    :data:`FAD_INF_MIN_SIZES` subset sizes of ``b`` that all exceed the dimension. Below the dimension a
    subset's covariance is rank-deficient, its FAD is not on the 1/N line, and the intercept can be
    off by an order of magnitude (the issue measured 98-127 against a full-set FAD of 5.3 for 56 rows
    of 132 dimensions).

    Args:
        a: reference embeddings (N_a, D); its full-set statistics are used throughout.
        b: evaluated embeddings (N_b, D); random subsets of it (without replacement) are scored.
        min_n: smallest subset size (default: a fifth of N_b); raised to the embedding dimension + 1.
        steps: number of subset sizes, evenly spaced from ``min_n`` to N_b.
        repeats: random subsets per size (their FADs are averaged).
        seed: seed of the subset draws.
    """
    xa, xb = _as_matrix(a, "reference embeddings"), _as_matrix(b, "evaluated embeddings")
    n_a, n_b, dim = xa.shape[0], xb.shape[0], xa.shape[1]
    if n_a <= dim:
        raise ValueError(f"FAD-infinity unavailable: {n_a} reference embeddings in {dim} dimensions; its full-rank "
                         f"covariance needs more rows than dimensions (at least {dim + 1})")
    lo = max(dim + 1, int(min_n) if min_n is not None else n_b // 5)
    if n_b - lo < FAD_INF_MIN_SIZES - 1:
        raise ValueError(f"FAD-infinity unavailable: {n_b} evaluated embeddings in {dim} dimensions; the 1/N "
                         f"extrapolation needs {FAD_INF_MIN_SIZES} subset sizes each larger than the dimension "
                         f"(at least {lo + FAD_INF_MIN_SIZES - 1} embeddings)")
    sizes = sorted({int(n) for n in np.linspace(lo, n_b, max(FAD_INF_MIN_SIZES, steps))})
    mu_a, cov_a = embedding_stats(xa)
    rng = np.random.default_rng(seed)
    points: list[tuple[int, float]] = []
    for n in sizes:
        reps = 1 if n == n_b else repeats
        vals = [
            frechet_distance(mu_a, cov_a, *embedding_stats(xb[rng.choice(n_b, n, replace=False)]), method="eig")
            for _ in range(reps)
        ]
        points.append((n, float(np.mean(vals))))
    inv_n = np.array([1.0 / n for n, _ in points])
    ys = np.array([v for _, v in points])
    slope, intercept = np.polyfit(inv_n, ys, 1)
    pred = slope * inv_n + intercept
    ss_tot = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ys - pred) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return FADInfResult(score=float(intercept), slope=float(slope), r2=r2, points=points)


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(d, 0.0)


def median_bandwidth(x: np.ndarray) -> float:
    """Median pairwise Euclidean distance between distinct rows of ``x``, as kadtk takes it.

    kadtk (``median_pairwise_distance``) uses ``torch.median`` of ``torch.pdist``, which returns the
    lower of the two middle values for an even number of pairs; so does this (in float64). A set whose
    rows are all equal gives 1.0.
    """
    xm = _as_matrix(x)
    d = np.sort(np.sqrt(_sq_dists(xm, xm)[np.triu_indices(xm.shape[0], k=1)]))
    med = float(d[(d.size - 1) // 2])
    return med if med > 0 else 1.0


def kad(a: np.ndarray, b: np.ndarray, *, bandwidth: float | None = None) -> float:
    """Kernel Audio Distance: 100 x unbiased MMD^2, Gaussian kernel (see module docstring).

    Args:
        a: reference embeddings (N_a >= 2, D).
        b: evaluated embeddings (N_b >= 2, D).
        bandwidth: kernel width sigma; default :func:`median_bandwidth` of the **evaluated** set ``b``,
            as kadtk's ``calc_kernel_audio_distance(x=reference, y=evaluated)`` takes it.
    """
    xa, xb = _as_matrix(a, "reference embeddings"), _as_matrix(b, "evaluated embeddings")
    sigma = median_bandwidth(xb) if bandwidth is None else float(bandwidth)
    gamma = 1.0 / (2.0 * sigma * sigma + KAD_EPS)
    m, n = xa.shape[0], xb.shape[0]
    k_aa = np.exp(-gamma * _sq_dists(xa, xa))
    k_bb = np.exp(-gamma * _sq_dists(xb, xb))
    k_ab = np.exp(-gamma * _sq_dists(xa, xb))
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(KAD_SCALE * (within_a + within_b - 2.0 * k_ab.mean()))


def bootstrap_interval(
    stat: Callable[[np.ndarray, np.ndarray], float],
    clips_a: Sequence[np.ndarray],
    clips_b: Sequence[np.ndarray],
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    lower_bound: float | None = None,
) -> tuple[float, float]:
    """Bias-corrected percentile bootstrap interval of ``stat(A, B)``, resampling whole clips.

    Args:
        stat: a distance of two embedding matrices (e.g. :func:`fad`, :func:`kad`).
        clips_a: per-clip embedding matrices (n_i, D) of the reference set.
        clips_b: the same for the evaluated set.
        n_boot: bootstrap resamples.
        level: coverage of the interval.
        seed: seed of the resampling.
        lower_bound: clip the interval from below (0 for FAD).

    Returns:
        ``(low, high)``; contains the full-set value ``stat(concat(A), concat(B))`` by construction
        of the bias correction unless the bootstrap distribution is degenerate.
    """
    if len(clips_a) < 2 or len(clips_b) < 2:
        raise ValueError("a bootstrap interval needs at least 2 clips in each set")
    full = stat(np.concatenate(clips_a), np.concatenate(clips_b))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        ia = rng.integers(0, len(clips_a), len(clips_a))
        ib = rng.integers(0, len(clips_b), len(clips_b))
        try:
            vals.append(stat(np.concatenate([clips_a[i] for i in ia]), np.concatenate([clips_b[i] for i in ib])))
        except ValueError:  # a resample with too few distinct rows: skip it
            continue
    if not vals:
        return full, full
    arr = np.asarray(vals)
    bias = float(arr.mean()) - full
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(arr, [alpha, 1.0 - alpha]) - bias
    if lower_bound is not None:
        low, high = max(float(low), lower_bound), max(float(high), lower_bound)
    return float(low), float(high)


def bootstrap_mean_interval(
    values: Sequence[float], *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-clip values (e.g. per-clip MSS)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to bootstrap")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)
