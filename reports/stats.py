"""Verdicts over training runs: the run is the unit, "equivalent" is a verdict (docs/CONTRACTS.md, "Verdicts").

A comparison asks whether a *training procedure* (KD, scratch, prune, ...) gives better audio than
another, so what varies from one use of the procedure to the next is the **training run** (its
seed), and what varies from one use of the model to the next is the **recording** it plays. Test
clips are crops of recordings, nested in them; they are neither independent of each other nor of
the run. So:

* **Unit.** Each arm's quality per run (seed) and test recording is the mean of its per-clip values
  over that recording's clips: a matrix ``Y[run, recording]``. Recordings are shared by both arms
  (paired, by clip id: :func:`run_matrix`); runs are not (a KD run and a scratch run are separate
  draws of separate procedures).
* **Estimate.** ``diff = mean(Y_KD) - mean(Y_other)`` (equal weight per run and recording), in the
  metric's units: **negative means KD is better** for metrics where lower is better.
* **Standard error** (:func:`run_level_comparison`), a two-factor random-effects decomposition
  estimated by moments: ``se^2 = s_KD^2 / n_KD + s_o^2 / n_o + s_d^2 / R`` where ``s^2`` of an arm is
  the variance over its runs of the run's mean over recordings (run-to-run variance), and ``s_d^2`` the
  variance over the ``R`` recordings of the per-recording difference of the two arms' run means
  (recording-by-arm variance). The run-by-recording residual enters both terms, so ``se`` errs on the
  large side: a simulation with run, recording and arm-by-recording effects
  (``tests/unit/test_reports_stats.py``) finds a 95 % interval covering 94-98.5 % of the time.
* **Interval and p.** Student t with Satterthwaite's degrees of freedom from the three terms
  (``n_KD - 1``, ``n_o - 1``, ``R - 1``). ``p_zero`` is the two-sided p-value of ``diff = 0`` (shown,
  never used for the verdict).
* **One run.** An arm with one run (a deterministic arm such as int8 of one teacher run, or a single
  seed) has no run-to-run variance of its own; it is taken equal to the other arm's (the note says so).
  When neither arm has two runs, nothing is known about run-to-run variance: the verdict is
  "inconclusive" and the note says why.
* **Threshold.** ``T = rel_threshold x |other arm's mean|`` (:data:`REL_THRESHOLD`, 5 %), the smallest
  difference that matters. It applies to the interval, not the point estimate.
* **Four verdicts, named after KD** (:data:`VERDICTS`): "KD better" when the whole interval lies beyond
  ``-T`` on KD's side, "KD worse" when it lies beyond ``+T`` on the other side, "equivalent within
  +-T" when it lies inside ``(-T, +T)`` (two one-sided tests, TOST), else "inconclusive". Each claim is
  a one-sided test at ``alpha / 2`` (so with one comparison the verdict reads straight off the 95 %
  interval); ``p_claim`` is twice the smallest of the three one-sided p-values.
* **Family.** Every comparison a report tests is fixed by the design before any test value is seen
  (KD's arm chosen on validation, not test), and :func:`holm` runs once over all of them: a claim
  holds when its Holm-adjusted ``p_claim`` is below ``alpha``. Every table quotes that verdict.
* **Power** (:func:`runs_needed`): from the measured spreads, the runs per arm (at this many
  recordings) or the recordings (at this many runs) at which the interval would clear the threshold
  with 80 % power if the true difference were the measured one, at alpha / m for a family of m comparisons
  (Bonferroni, so Holm's penalty is paid; normal approximation: approximate). "inconclusive" rows quote them.

The clip-level tools (:func:`signflip_test`, :func:`wilcoxon_exact`, :func:`mean_interval`) stay for
single-run questions (one checkpoint against another on the same clips); no verdict uses them.

"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ALPHA",
    "EXACT_MAX_N",
    "MC_DRAWS",
    "POWER",
    "REL_THRESHOLD",
    "SIGN_CONVENTION",
    "METHOD_NOTE",
    "VERDICTS",
    "RunMatrix",
    "PairingError",
    "run_matrix",
    "run_level_comparison",
    "runs_needed",
    "min_signflip_p",
    "signflip_test",
    "wilcoxon_exact",
    "mean_interval",
    "holm",
    "claim_verdicts",
]

ALPHA = 0.05
EXACT_MAX_N = 16
MC_DRAWS = 20_000
REL_THRESHOLD = 0.05
POWER = 0.8

VERDICTS = ("KD better", "KD worse", "equivalent within +-T", "inconclusive")
"""The four verdicts of a comparison of KD's arm (first) with another arm; T is the practical threshold."""

SIGN_CONVENTION = (
    "diff = KD - other method, in the metric's units: each arm's mean over its training runs and the test "
    "recordings; lower is better for mss, fad and kad, so a negative diff means KD is better."
)
METHOD_NOTE = (
    "The training run is the unit: each arm's quality per run and test recording (clips averaged within their "
    "recording; recordings paired by clip id), diff = KD - other, se^2 = run variance of each arm / its runs + "
    "recording-by-arm variance / recordings (moments; conservative), 95 % t-interval with Satterthwaite degrees "
    f"of freedom. T = {REL_THRESHOLD:.0%} of the other arm's mean. Verdict from the interval: 'KD better' (beyond -T), "
    "'KD worse' (beyond +T), 'equivalent within +-T' (inside, TOST), else 'inconclusive'; each claim a one-sided "
    f"test at alpha/2, Holm over every comparison of the report (alpha {ALPHA}). An arm with one run borrows the "
    "other arm's run variance (said on the row); with one run in both arms the verdict is inconclusive."
)


class PairingError(ValueError):
    """Two arms were not measured on the same test clips (one line naming the difference)."""


@dataclass(frozen=True)
class RunMatrix:
    """One arm's quality per training run and test recording.

    Attributes:
        values: (runs, recordings) mean of the per-clip values of each recording's clips, per run.
        recordings: the recording ids, in column order.
        clips: the clip ids the matrix was built from (sorted), for pairing checks.
        runs: the seeds (or run labels), in row order.
        identified: False when the records carried no clip ids (older records): clips were paired by
            position and each clip counted as its own recording.
    """

    values: np.ndarray
    recordings: tuple[str, ...]
    clips: tuple[str, ...]
    runs: tuple[Any, ...]
    identified: bool = True

    @property
    def n_runs(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_recordings(self) -> int:
        return int(self.values.shape[1])

    @property
    def run_means(self) -> np.ndarray:
        return self.values.mean(axis=1)


def run_matrix(runs: Sequence[dict[str, Any]]) -> RunMatrix:
    """Build an arm's :class:`RunMatrix` from its runs.

    Each run is a dict with ``values`` (per-clip values), and optionally ``clip_ids`` and ``recording_ids``
    (same length) and ``seed``. Clips are matched by id across runs (any order); without ids (older
    records) by position, each clip its own recording. Non-finite clip values are left out of their
    recording's mean.

    Raises:
        PairingError: the runs were measured on different clips, or a run has no finite value for a recording.
    """
    if not runs:
        raise PairingError("an arm without runs")
    identified = all(r.get("clip_ids") for r in runs)
    tables: list[dict[str, tuple[str, float]]] = []
    for r in runs:
        vals = [float(v) if v is not None else math.nan for v in r["values"]]
        if identified:
            ids = [str(c) for c in r["clip_ids"]]
            recs = [str(c) for c in (r.get("recording_ids") or ids)]
            if len(ids) != len(vals) or len(recs) != len(vals):
                raise PairingError(f"run {r.get('seed')}: {len(vals)} values but {len(ids)} clip ids")
            if len(set(ids)) != len(ids):
                raise PairingError(f"run {r.get('seed')}: duplicate clip ids")
        else:
            ids = [f"clip{i}" for i in range(len(vals))]
            recs = ids
        tables.append({c: (rec, v) for c, rec, v in zip(ids, recs, vals, strict=True)})
    clip_set = set(tables[0])
    for t, r in zip(tables[1:], runs[1:], strict=True):
        if set(t) != clip_set:
            raise PairingError(_mismatch(clip_set, set(t), f"run {runs[0].get('seed')}", f"run {r.get('seed')}"))
    recordings = tuple(sorted({rec for rec, _ in tables[0].values()}))
    values = np.full((len(runs), len(recordings)), np.nan)
    for i, t in enumerate(tables):
        for j, rec in enumerate(recordings):
            v = np.array([val for c, (rr, val) in t.items() if rr == rec], dtype=float)
            v = v[np.isfinite(v)]
            if v.size == 0:
                raise PairingError(f"run {runs[i].get('seed')}: no finite value for recording {rec}")
            values[i, j] = v.mean()
    return RunMatrix(values=values, recordings=recordings, clips=tuple(sorted(clip_set)),
                     runs=tuple(r.get("seed") for r in runs), identified=identified)


def _mismatch(a: set[str], b: set[str], name_a: str, name_b: str) -> str:
    only_a, only_b = sorted(a - b), sorted(b - a)
    return (f"not the same test clips: {len(only_a)} only in {name_a} (e.g. {only_a[:1]}), "
            f"{len(only_b)} only in {name_b} (e.g. {only_b[:1]})")


def _t_quantile(q: float, df: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(q)) if not math.isfinite(df) else float(stats.t.ppf(q, df))


def _t_sf(x: float, df: float) -> float:
    from scipy import stats

    return float(stats.norm.sf(x)) if not math.isfinite(df) else float(stats.t.sf(x, df))


def run_level_comparison(kd: RunMatrix, other: RunMatrix, *, rel_threshold: float = REL_THRESHOLD,
                         level: float = 0.95) -> dict[str, Any]:
    """KD's arm against another, the run the unit (module docstring). Both matrices must cover the same clips.

    Returns ``diff``, ``se``, ``df``, ``ci_low``/``ci_high`` (the ``level`` interval), ``p_zero`` (two-sided,
    diff = 0), ``p_better``/``p_worse``/``p_equivalent`` (the one-sided tests of each claim against
    ``T``), ``claim`` (the verdict the smallest of them would support) and ``p_claim`` (twice that p,
    capped at 1; compared with alpha after Holm), ``threshold`` (T), ``kd_mean``/``other_mean``, ``n_kd``,
    ``n_other``, ``n_recordings``, the variance terms ``var_runs_kd``/``var_runs_other``/``var_recordings``,
    ``testable`` and ``note``.

    Raises:
        PairingError: the arms were not measured on the same clips.
    """
    if set(kd.clips) != set(other.clips) or kd.recordings != other.recordings:
        raise PairingError(_mismatch(set(kd.clips), set(other.clips), "KD's arm", "the other arm"))
    nk, no, r = kd.n_runs, other.n_runs, kd.n_recordings
    kd_mean, other_mean = float(kd.values.mean()), float(other.values.mean())
    diff = kd_mean - other_mean
    threshold = rel_threshold * abs(other_mean)
    vk = float(kd.run_means.var(ddof=1)) if nk > 1 else math.nan
    vo = float(other.run_means.var(ddof=1)) if no > 1 else math.nan
    d_rec = kd.values.mean(axis=0) - other.values.mean(axis=0)
    vd = float(d_rec.var(ddof=1)) if r > 1 else 0.0
    notes = []
    if not kd.identified or not other.identified:
        notes.append("records without clip ids: clips paired by position, each its own recording")
    if r == 1:
        notes.append("one test recording: recording-to-recording variance not measured")
    dfk, dfo = nk - 1, no - 1
    if nk < 2 and no < 2:
        notes.append("one run per arm: run-to-run variance not measured")
        vk = vo = math.nan
    elif nk < 2:
        vk, dfk = vo, no - 1
        notes.append(f"KD's arm has one run: its run variance taken equal to the other arm's ({no} runs)")
    elif no < 2:
        vo, dfo = vk, nk - 1
        notes.append(f"the other arm has one run: its run variance taken equal to KD's ({nk} runs)")
    base = {"diff": diff, "kd_mean": kd_mean, "other_mean": other_mean, "threshold": threshold, "n_kd": nk,
            "n_other": no, "n_recordings": r, "var_runs_kd": vk, "var_runs_other": vo, "var_recordings": vd}
    if not (math.isfinite(vk) and math.isfinite(vo)):
        return {**base, "se": math.nan, "df": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_zero": math.nan,
                "p_better": math.nan, "p_worse": math.nan, "p_equivalent": math.nan, "claim": "inconclusive",
                "p_claim": math.nan, "testable": False, "note": "; ".join(notes)}
    terms = [(vk / nk, dfk), (vo / no, dfo), (vd / r, r - 1)]
    var = sum(t for t, _ in terms)
    se = math.sqrt(var)
    denom = sum(t * t / f for t, f in terms if f > 0 and t > 0)
    df = var * var / denom if denom > 0 else math.inf
    if se > 0:
        q = _t_quantile(0.5 + level / 2, df)
        lo, hi = diff - q * se, diff + q * se
        p_zero = min(1.0, 2 * _t_sf(abs(diff) / se, df))
        p_lo = _t_sf((diff + threshold) / se, df)  # H0: diff <= -T (KD better by T or more)
        p_hi = _t_sf((threshold - diff) / se, df)  # H0: diff >= +T
        p_better = _t_sf(-(diff + threshold) / se, df)  # H0: diff >= -T, against diff < -T
        p_worse = _t_sf((diff - threshold) / se, df)  # H0: diff <= +T, against diff > +T
    else:  # no variance at all (identical arms): the interval is the point
        lo = hi = diff
        p_zero = 1.0 if diff == 0 else 0.0
        p_lo = 0.0 if diff > -threshold else 1.0
        p_hi = 0.0 if diff < threshold else 1.0
        p_better = 0.0 if diff < -threshold else 1.0
        p_worse = 0.0 if diff > threshold else 1.0
    p_equiv = max(p_lo, p_hi)
    claims = {"KD better": p_better, "KD worse": p_worse, "equivalent within +-T": p_equiv}
    claim = min(claims, key=lambda k: claims[k])
    return {**base, "se": se, "df": df, "ci_low": lo, "ci_high": hi, "p_zero": p_zero, "p_better": p_better,
            "p_worse": p_worse, "p_equivalent": p_equiv, "claim": claim, "p_claim": min(1.0, 2 * claims[claim]),
            "testable": True, "note": "; ".join(notes)}


def runs_needed(res: dict[str, Any], *, alpha: float = ALPHA, power: float = POWER) -> dict[str, Any]:
    """How many runs per arm (at the measured recordings) or recordings (at the measured runs) would settle the
    comparison ``res`` (:func:`run_level_comparison`) if the true difference were the measured one.

    The verdict's interval must clear the threshold: beyond ``+-T`` when ``|diff| > T``, inside when ``|diff| < T``,
    so the gap ``g = | |diff| - T |`` must exceed its half-width. With ``se(n, R)^2 = (v_KD + v_other) / n + v_rec / R``
    from the measured variance terms, ``se <= g / (z_{1-alpha/2} + z_power)`` gives probability ``power`` of that
    (normal approximation, before Holm: approximate). A difference right at ``T`` can never be settled.

    Returns ``runs_needed`` (int, or None when more runs alone cannot get there), ``recordings_needed`` (likewise)
    and ``power_note``.
    """
    from scipy import stats

    vals = [res.get(k) for k in ("var_runs_kd", "var_runs_other", "var_recordings", "threshold", "diff")]
    if not all(isinstance(v, float) and math.isfinite(v) for v in vals):
        return {"runs_needed": None, "recordings_needed": None,
                "power_note": "needs at least two runs in one arm to estimate run-to-run variance"}
    vk, vo, vd, t, diff = (float(v) for v in vals)  # type: ignore[arg-type]
    gap = abs(abs(diff) - t)
    target = (gap / (float(stats.norm.ppf(1 - alpha / 2)) + float(stats.norm.ppf(power)))) ** 2
    nk, no, r = int(res["n_kd"]), int(res["n_other"]), int(res["n_recordings"])
    room_runs = target - vd / r
    runs = max(2, math.ceil((vk + vo) / room_runs)) if room_runs > 0 else None
    room_recs = target - vk / nk - vo / no
    # recordings help only where recording-by-arm variance was measured (two or more recordings, not zero): with one
    # recording (or FAD's one test set) more of them is no answer the data can back
    recs = max(2, math.ceil(vd / room_recs)) if room_recs > 0 and r > 1 and vd > 0 else None
    if runs is None and recs is None:
        note = (f"neither more runs alone nor more recordings alone would settle it (diff {diff:+.3g}, T {t:.3g}): "
                "both, or the diff is too close to T")
    else:
        ways = [f"~{runs} runs per arm" if runs is not None else "",
                f"~{recs} test recordings" if recs is not None else ""]
        note = (f"settled with {power:.0%} power by " + " or ".join(w for w in ways if w)
                + f" (now {nk}/{no} runs, {r} recordings; if the true diff is {diff:+.3g})")
    return {"runs_needed": runs, "recordings_needed": recs, "power_note": note}


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




def claim_verdicts(p_claim: Sequence[float] | ArrayLike, claims: Sequence[str], *, alpha: float = ALPHA
                   ) -> tuple[np.ndarray, list[str]]:
    """Holm over one family of comparisons: the adjusted ``p_claim`` of each and its verdict (the claim when
    the adjusted p is below ``alpha``, else "inconclusive"; untestable rows (NaN) stay "inconclusive")."""
    adj = holm(p_claim)
    out = [c if math.isfinite(a) and a < alpha else "inconclusive" for a, c in zip(adj, claims, strict=True)]
    return adj, out
