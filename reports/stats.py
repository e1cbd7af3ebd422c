"""Paired comparisons that fit small samples: exact tests, small-n intervals, Holm, effect sizes.

The reports compare two candidates on the same test clips (docs/CONTRACTS.md: ``per_clip`` lists are
in the same clip order for every candidate of a study), usually 6 to 50 clips. Large-sample machinery
(a percentile bootstrap p-value, a normal approximation) claims more than such samples hold, so:

* **Sign convention** (:data:`SIGN_CONVENTION`): ``difference = method - baseline`` in the metric's
  own units, per clip, then averaged. For metrics where lower is better (mss, fad, kad) a negative
  difference means the method is better.
* **p-value**: the two-sided **sign-flip permutation test** of the mean paired difference. Under the
  null hypothesis (no difference) each clip's difference is as likely to have either sign, so the
  p-value is the share of the ``2**n`` sign patterns whose |mean| is at least the observed |mean|.
  It is computed exactly (all patterns) for up to :data:`EXACT_MAX_N` clips and from
  :data:`MC_DRAWS` random patterns above that (``(k + 1) / (draws + 1)``). Every result names its test.
* **Not enough data to tell**: with ``k`` non-zero differences the smallest p-value the exact test
  can give is ``2 / 2**k`` (all clips agreeing in sign); when that is above ``alpha`` (k <= 5 at
  0.05) no outcome could be significant, and the result says so instead of giving a verdict. After a
  Holm correction over ``m`` rows the smallest reachable adjusted p is ``m * 2 / 2**k``; rows that
  cannot reach ``alpha`` even then are flagged the same way.
* **Wilcoxon** signed-rank test, exact (``scipy.stats.wilcoxon(method="exact")``), as a second opinion
  that does not lean on the mean: reported beside, never used for the verdict.
* **Interval**: BCa bootstrap of the mean difference (``scipy.stats.bootstrap``), which corrects the
  percentile interval's bias and skew at small n; where BCa is degenerate (its acceleration or bias
  term undefined, e.g. all differences equal or n = 2) the percentile interval is given instead and
  ``ci_method`` says so.
* **Multiple comparisons**: :func:`holm` (Holm's step-down, family-wise error rate ``alpha``) over the
  rows of one table; ``p_holm`` is what the verdict uses.
* **Effect size and practical threshold**: ``rel_effect`` = difference / |baseline mean|, and
  ``d_z`` = mean / standard deviation of the paired differences. A difference is **practically
  relevant** only when ``|difference|`` exceeds the threshold: :data:`REL_THRESHOLD` of the
  baseline's mean, or the seed-to-seed standard deviation where several seeds were run and that is
  larger. A headline needs *both* a Holm-significant p-value and a practically relevant effect.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ALPHA",
    "EXACT_MAX_N",
    "MC_DRAWS",
    "REL_THRESHOLD",
    "SIGN_CONVENTION",
    "METHOD_NOTE",
    "min_signflip_p",
    "signflip_test",
    "wilcoxon_exact",
    "mean_interval",
    "holm",
    "paired_comparison",
    "apply_holm",
    "verdict",
]

ALPHA = 0.05
EXACT_MAX_N = 16
MC_DRAWS = 20_000
REL_THRESHOLD = 0.05

SIGN_CONVENTION = (
    "difference = method - baseline, in the metric's units (per clip, then averaged over clips); "
    "lower is better for mss, fad and kad, so a negative difference means the method is better."
)
METHOD_NOTE = (
    "p: two-sided sign-flip permutation test of the mean paired difference over test clips (exact over "
    f"all 2^n sign patterns for n <= {EXACT_MAX_N}, {MC_DRAWS} random patterns above); p_holm: Holm-corrected "
    "over the rows of the table; p_wilcoxon: exact Wilcoxon signed-rank (second opinion, not used for the "
    "verdict); interval: 95 % BCa bootstrap of the mean difference (percentile where BCa is degenerate). "
    "'not enough data to tell' where even the most extreme outcome could not reach alpha (smallest "
    "possible p = 2/2^n, times the number of rows after Holm). A verdict needs p_holm < alpha AND "
    f"|difference| above the practical threshold ({REL_THRESHOLD:.0%} of the baseline's mean, or the "
    "seed-to-seed standard deviation when several seeds were run and that is larger)."
)


def min_signflip_p(n_nonzero: int) -> float:
    """The smallest two-sided p-value the exact sign-flip test can give with ``n_nonzero`` differences."""
    return min(1.0, 2.0 / 2.0**n_nonzero) if n_nonzero > 0 else 1.0


def _sign_patterns(n: int) -> np.ndarray:
    codes = np.arange(2**n, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n, dtype=np.int64)[None, :]) & 1) * 2.0 - 1.0


def signflip_test(d: ArrayLike, *, seed: int = 0) -> tuple[float, str]:
    """Two-sided sign-flip permutation test of ``mean(d) == 0``; returns ``(p, test name)``."""
    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        raise ValueError("no finite paired differences")
    obs = abs(float(x.mean()))
    scale = max(float(np.abs(x).max()), 1e-300)
    tol = 1e-12 * scale  # sums of the same numbers in another order may differ in the last bits
    if n <= EXACT_MAX_N:
        stats = np.abs(_sign_patterns(n) @ x) / n
        p = float(np.mean(stats >= obs - tol))
        return p, f"exact sign-flip permutation test (2^{n} = {2**n} sign patterns), two-sided"
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(MC_DRAWS, n))
    k = int(np.sum(np.abs(signs @ x) / n >= obs - tol))
    return (k + 1) / (MC_DRAWS + 1), f"sign-flip permutation test ({MC_DRAWS} random sign patterns), two-sided"


def wilcoxon_exact(d: ArrayLike) -> tuple[float, str]:
    """Exact two-sided Wilcoxon signed-rank p-value of the differences (zeros dropped); NaN when all zero."""
    from scipy import stats

    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x) & (x != 0)]
    if x.size == 0:
        return math.nan, "Wilcoxon signed-rank: every difference is zero"
    # exact distribution of the signed-rank statistic (ties in |d| make scipy fall back to a normal
    # approximation; say so then)
    ties = np.unique(np.abs(x)).size < x.size
    method = "approx" if ties else "exact"
    res = stats.wilcoxon(x, zero_method="wilcox", method=method)
    return float(res.pvalue), f"Wilcoxon signed-rank ({'normal approximation, tied |d|' if ties else 'exact'}), two-sided"


def mean_interval(d: ArrayLike, *, level: float = 0.95, seed: int = 0) -> tuple[float, float, str]:
    """Bootstrap interval of the mean: BCa where defined, else percentile; ``(low, high, method)``."""
    from scipy import stats

    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite values")
    if x.size == 1 or np.ptp(x) == 0:
        m = float(x.mean())
        return m, m, "none (a single value or all values equal)"
    for method, name in (("BCa", "BCa bootstrap"), ("percentile", "percentile bootstrap (BCa degenerate)")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap((x,), np.mean, confidence_level=level, n_resamples=9999, method=method,
                                  random_state=np.random.default_rng(seed), vectorized=True)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi) and lo <= float(x.mean()) <= hi:
            return lo, hi, f"{name}, {level:.0%}"
    m = float(x.mean())
    return m, m, "none (bootstrap degenerate)"


def holm(pvalues: Sequence[float] | ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out of the family and stay NaN).

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``; rejecting where the
    adjusted value is below ``alpha`` controls the family-wise error rate at ``alpha``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_comparison(
    method: ArrayLike,
    baseline: ArrayLike,
    *,
    alpha: float = ALPHA,
    rel_threshold: float = REL_THRESHOLD,
    seed_sd: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare ``method`` with ``baseline`` clip by clip (same clips, same order; NaNs dropped pairwise).

    Returns a dict with ``diff`` (method - baseline), ``ci_low``/``ci_high``/``ci_method``, ``p_value``
    and ``test``, ``p_wilcoxon``/``wilcoxon_test``, ``n`` (clips), ``min_p`` (smallest p the test can
    give), ``enough_data``, ``rel_effect``, ``d_z``, ``threshold`` (absolute) and ``relevant``.

    Raises:
        ValueError: the lengths differ (not the same clips) or fewer than 2 finite pairs.
    """
    x, y = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"per-clip values are not paired (lengths {x.size} and {y.size})")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    if d.size < 2:
        raise ValueError("need at least two paired clips with finite values")
    diff = float(d.mean())
    p, test = signflip_test(d, seed=seed)
    pw, wtest = wilcoxon_exact(d)
    lo, hi, ci_method = mean_interval(d, seed=seed)
    n_nonzero = int(np.count_nonzero(d))
    min_p = min_signflip_p(n_nonzero) if d.size <= EXACT_MAX_N else 1.0 / (MC_DRAWS + 1)
    base_mean = float(y[keep].mean())
    sd = float(d.std(ddof=1))
    threshold = rel_threshold * abs(base_mean)
    if seed_sd is not None and math.isfinite(seed_sd):
        threshold = max(threshold, float(seed_sd))
    return {
        "diff": diff, "ci_low": lo, "ci_high": hi, "ci_method": ci_method,
        "p_value": p, "test": test, "p_wilcoxon": pw, "wilcoxon_test": wtest,
        "n": int(d.size), "min_p": min_p, "enough_data": bool(min_p <= alpha),
        "rel_effect": diff / abs(base_mean) if base_mean != 0 else math.nan,
        "d_z": diff / sd if sd > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff)),
        "threshold": threshold, "relevant": bool(abs(diff) > threshold),
    }


def verdict(diff: float, p_holm: float, min_p_holm: float, relevant: bool, *, alpha: float = ALPHA,
            lower_is_better: bool = True) -> str:
    """One phrase for a comparison row: ``method better`` / ``method worse`` / ``no clear difference`` /
    ``not enough data to tell`` (see the module docstring for when each applies)."""
    if not math.isfinite(p_holm):
        return "no per-clip data"
    if min_p_holm > alpha:
        return "not enough data to tell"
    if p_holm >= alpha:
        return "no significant difference"
    if not relevant:
        return "significant but below the practical threshold"
    better = (diff < 0) == lower_is_better
    return "method better" if better else "method worse"


def apply_holm(table: Any, *, alpha: float = ALPHA, lower_is_better: Sequence[bool] | bool = True) -> Any:
    """Add ``p_holm``, ``min_p_holm`` and ``verdict`` to a comparison table (a DataFrame with ``p_value``,
    ``min_p``, ``diff`` and ``relevant`` columns); Holm runs over all its rows with a p-value."""
    if len(table) == 0 or "p_value" not in table.columns:
        return table
    out = table.copy()
    p = out["p_value"].to_numpy(dtype=float)
    m = int(np.isfinite(p).sum())
    out["p_holm"] = holm(p)
    out["min_p_holm"] = np.minimum(1.0, out["min_p"].to_numpy(dtype=float) * max(m, 1))
    lib = [lower_is_better] * len(out) if isinstance(lower_is_better, bool) else list(lower_is_better)
    out["verdict"] = [
        verdict(float(r.diff), float(r.p_holm), float(r.min_p_holm), bool(r.relevant), alpha=alpha, lower_is_better=lb)
        for r, lb in zip(out[["diff", "p_holm", "min_p_holm", "relevant"]].itertuples(index=False), lib, strict=True)
    ]
    return out
