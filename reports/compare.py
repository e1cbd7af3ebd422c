"""Knowledge distillation versus the other compression methods, at matched budget.

**Budget buckets.** Candidates are grouped by a budget metric (parameter bytes by default, or a
real-time factor) into log-spaced bands: with ``per_decade`` bands per factor of ten, band ``k`` is
``[10**(k/per_decade), 10**((k+1)/per_decade))``. With the default two bands per decade the edges are
1, 3.16, 10, 31.6, 100, ... so two candidates share a band when their budgets are within about 3.2x
of each other and on the same side of an edge. Zero, negative and missing budgets belong to no band.

**Best per method.** Within one band of one comparison group (the same dataset and instrument, so
that the test clips are the same), the best candidate of each method by the quality metric. The
teacher is a reference, not a compressed candidate, and is left out; so are failed rows.

**Significance.** KD's best in the band (the best of every method whose chain contains a ``kd_*``
step) is compared with each other method's best by a bootstrap over the test clips of the quality
metric's per-clip values. When both candidates have the same number of per-clip values they are the
same clips in the same order (docs/CONTRACTS.md) and the bootstrap is **paired**: it resamples clip
indices and averages the per-clip differences. When the lengths differ it is **unpaired**: each side
is resampled on its own; the table says which. The difference is significant at level ``alpha`` when
its two-sided percentile interval excludes zero; the p-value is the share of bootstrap differences
of the other sign, doubled and capped at 1, counted as ``(k + 1) / (n_boot + 1)`` so it is never 0.

**KD worse than scratch.** For each dataset, instrument, family and student size, each KD method's
best student against the ``scratch`` student of the same size: a flag where KD's is worse (the
reference paper saw KD hurt some instrument/size pairs), with the same bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from reports.load import clip_values
from reports.pareto import direction_of
from suite.records import Direction

__all__ = [
    "bucket_index",
    "bucket_bounds",
    "bucket_label",
    "assign_buckets",
    "bootstrap_difference",
    "is_kd_method",
    "best_per_method",
    "kd_vs_others",
    "kd_vs_scratch",
    "kd_summary",
]

_GROUP = ["dataset", "instrument"]


def bucket_index(value: float, per_decade: int = 2) -> int | None:
    """The log-spaced band of a positive budget value (None for <= 0 or non-finite)."""
    if per_decade < 1:
        raise ValueError("per_decade must be >= 1")
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    k = math.floor(math.log10(value) * per_decade)
    # guard against log10 rounding just below an exact edge (e.g. 10**(k/per_decade))
    if 10 ** ((k + 1) / per_decade) <= value:
        k += 1
    elif 10 ** (k / per_decade) > value:
        k -= 1
    return k


def bucket_bounds(k: int, per_decade: int = 2) -> tuple[float, float]:
    """The ``[low, high)`` bounds of band ``k``."""
    return 10 ** (k / per_decade), 10 ** ((k + 1) / per_decade)


def _fmt_budget(x: float, unit: str) -> str:
    if unit == "B":
        for div, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if x >= div:
                return f"{x / div:.3g} {name}"
        return f"{x:.3g} B"
    return f"{x:.3g} {unit}".strip()


def bucket_label(k: int, per_decade: int = 2, unit: str = "") -> str:
    """``"[31.6 kB, 100 kB)"``-style label of band ``k``."""
    lo, hi = bucket_bounds(k, per_decade)
    return f"[{_fmt_budget(lo, unit)}, {_fmt_budget(hi, unit)})"


def assign_buckets(values: Sequence[float] | pd.Series, per_decade: int = 2) -> pd.Series:
    """Band index of each value (nullable integers; <NA> where the value has no band)."""
    idx = values.index if isinstance(values, pd.Series) else None
    out = [bucket_index(float(v), per_decade) if v is not None else None for v in values]
    return pd.Series(out, index=idx, dtype="Int64")


def bootstrap_difference(
    a: ArrayLike, b: ArrayLike, *, n_boot: int = 4000, alpha: float = 0.05, seed: int = 0
) -> dict[str, Any]:
    """Bootstrap the difference of means ``mean(a) - mean(b)`` over test clips.

    Paired (resampling clip indices together) when ``a`` and ``b`` have the same length, unpaired
    otherwise. NaN clip values are dropped (pairwise when paired).

    Returns:
        ``diff``, ``ci_low``, ``ci_high``, ``p_value``, ``significant`` (interval excludes 0),
        ``paired`` and ``n`` (clips used, or ``"n_a/n_b"`` when unpaired).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    paired = x.size == y.size
    if paired:
        keep = np.isfinite(x) & np.isfinite(y)
        d = x[keep] - y[keep]
        if d.size < 2:
            raise ValueError("need at least two paired clips with finite values")
        boots = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
        diff, n = float(d.mean()), str(d.size)
    else:
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        if x.size < 2 or y.size < 2:
            raise ValueError("need at least two clips with finite values on each side")
        boots = (
            x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
            - y[rng.integers(0, y.size, size=(n_boot, y.size))].mean(axis=1)
        )
        diff, n = float(x.mean() - y.mean()), f"{x.size}/{y.size}"
    lo, hi = np.percentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    # (count + 1) / (n + 1): a bootstrap p-value is never exactly 0
    if diff > 0:
        p = 2 * (float(np.sum(boots <= 0)) + 1) / (n_boot + 1)
    elif diff < 0:
        p = 2 * (float(np.sum(boots >= 0)) + 1) / (n_boot + 1)
    else:
        p = 1.0
    return {
        "diff": diff, "ci_low": float(lo), "ci_high": float(hi), "p_value": min(1.0, p),
        "significant": bool(lo > 0 or hi < 0), "paired": paired, "n": n,
    }


def is_kd_method(method: str) -> bool:
    """True when a method or chain (``prune+kd_audio+quantize``) has a knowledge-distillation step."""
    return any(step.strip().startswith("kd") for step in str(method).split("+"))


def _candidates(df: pd.DataFrame, quality: str) -> pd.DataFrame:
    ok = df[(df["status"] == "ok") & (df["method"] != "teacher")]
    return ok[np.isfinite(ok[quality].to_numpy(dtype=float))]


def best_per_method(df: pd.DataFrame, quality: str = "mss", by: Sequence[str] = ()) -> pd.DataFrame:
    """The best row (by ``quality``) of each method within each group of ``by`` columns."""
    asc = direction_of(quality) is Direction.MINIMIZE
    ordered = df.sort_values([*by, "method", quality, "uid"], ascending=[True] * (len(by) + 1) + [asc, True])
    return ordered.groupby([*by, "method"], dropna=False, sort=True).head(1)


def _compare(kd_row: pd.Series, other: pd.Series, quality: str, seed: int) -> dict[str, Any]:
    """Significance of (other - KD) on the quality metric, oriented so > 0 means KD is better."""
    sign = 1.0 if direction_of(quality) is Direction.MINIMIZE else -1.0
    a, b = clip_values(other, quality), clip_values(kd_row, quality)
    base = {"diff": sign * float(other[quality] - kd_row[quality])}
    if a is None or b is None:
        return {**base, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "significant": None,
                "pairing": "no per-clip data"}
    try:
        res = bootstrap_difference(a, b, seed=seed)
    except ValueError as exc:
        return {**base, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "significant": None,
                "pairing": str(exc)}
    lo, hi = sorted((sign * res["ci_low"], sign * res["ci_high"]))
    pairing = f"paired, {res['n']} clips" if res["paired"] else f"unpaired, {res['n']} clips (lengths differ)"
    return {"diff": sign * res["diff"], "ci_low": lo, "ci_high": hi, "p_value": res["p_value"],
            "significant": res["significant"], "pairing": pairing}


def kd_vs_others(
    df: pd.DataFrame,
    *,
    quality: str = "mss",
    budget: str = "param_bytes",
    per_decade: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """Best of each method per budget band, with KD's best compared against each other method's best.

    One row per (dataset, instrument, band, method). ``vs_kd_diff`` is the other method's quality
    minus KD's best, oriented so that **positive means KD is better**; with its bootstrap interval,
    p-value, ``significant`` and ``pairing``. KD rows compare against nothing (``kd_best`` marks the
    one all others are compared with). Bands without a KD candidate have no comparisons.
    """
    if quality not in df.columns or budget not in df.columns:
        return pd.DataFrame()
    cand = _candidates(df, quality)
    cand = cand.assign(band=assign_buckets(cand[budget], per_decade)).dropna(subset=["band"])
    if cand.empty:
        return pd.DataFrame()
    unit = df.attrs.get("units", {}).get(budget, "")
    best = best_per_method(cand, quality, by=[*_GROUP, "band"])
    rows: list[dict[str, Any]] = []
    for key, grp in best.groupby([*_GROUP, "band"], dropna=False, sort=True):
        kd = grp[grp["method"].map(is_kd_method)]
        kd_best = best_per_method(kd.assign(method="kd"), quality).iloc[0] if not kd.empty else None
        for _, r in grp.iterrows():
            row: dict[str, Any] = {
                "dataset": key[0], "instrument": key[1], "band": int(key[2]),
                "budget_range": bucket_label(int(key[2]), per_decade, unit),
                "method": r["method"], "uid": r["uid"], "family": r["family"], "size": r["size"],
                quality: float(r[quality]), budget: float(r[budget]),
                "kd_best": bool(kd_best is not None and r["uid"] == kd_best["uid"]),
                "vs_kd": None, "vs_kd_diff": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                "p_value": np.nan, "significant": None, "pairing": "",
            }
            if kd_best is not None and not is_kd_method(r["method"]):
                cmp = _compare(kd_best, r, quality, seed)
                row.update(vs_kd=kd_best["uid"], vs_kd_diff=cmp.pop("diff"), **cmp)
            rows.append(row)
    return pd.DataFrame(rows)


def kd_vs_scratch(df: pd.DataFrame, *, quality: str = "mss", seed: int = 0) -> pd.DataFrame:
    """Each KD method's best student against the scratch student of the same family and size.

    One row per (dataset, instrument, family, size, KD method) where a scratch student exists.
    ``diff`` = KD minus scratch, oriented so that **positive means KD is worse**; ``kd_worse`` is True
    when it is, and ``significant`` says whether the bootstrap interval excludes zero.
    """
    if quality not in df.columns:
        return pd.DataFrame()
    cand = _candidates(df, quality)
    by = [*_GROUP, "family", "size"]
    best = best_per_method(cand, quality, by=by)
    rows: list[dict[str, Any]] = []
    for key, grp in best.groupby(by, dropna=False, sort=True):
        scratch = grp[grp["method"] == "scratch"]
        if scratch.empty:
            continue
        s = scratch.iloc[0]
        for _, r in grp[grp["method"].map(is_kd_method)].iterrows():
            cmp = _compare(r, s, quality, seed)  # scratch - KD, > 0 when KD is better
            rows.append({
                "dataset": key[0], "instrument": key[1], "family": key[2], "size": key[3],
                "method": r["method"], "uid": r["uid"], "scratch_uid": s["uid"],
                f"{quality}_kd": float(r[quality]), f"{quality}_scratch": float(s[quality]),
                "diff": -cmp["diff"], "ci_low": -cmp["ci_high"], "ci_high": -cmp["ci_low"],
                "p_value": cmp["p_value"], "significant": cmp["significant"], "pairing": cmp["pairing"],
                "kd_worse": bool(-cmp["diff"] > 0),
            })
    out = pd.DataFrame(rows)
    if len(out):  # flagged pairs first
        out = out.sort_values("kd_worse", ascending=False, kind="stable").reset_index(drop=True)
    return out


def kd_summary(kd_others: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, instrument and non-KD method: in how many budget bands KD's best was compared with
    that method's best, and how often KD was significantly better, significantly worse, or neither."""
    if kd_others.empty or "vs_kd" not in kd_others.columns:
        return pd.DataFrame()
    cmp = kd_others[kd_others["vs_kd"].notna()]
    rows = []
    for key, grp in cmp.groupby([*_GROUP, "method"], dropna=False, sort=True):
        sig = grp["significant"].fillna(False).astype(bool)
        rows.append({
            "dataset": key[0], "instrument": key[1], "method": key[2], "bands": len(grp),
            "kd_better": int((sig & (grp["vs_kd_diff"] > 0)).sum()),
            "kd_worse": int((sig & (grp["vs_kd_diff"] < 0)).sum()),
            "no_significant_difference": int((~sig).sum()),
            "mean_vs_kd_diff": float(grp["vs_kd_diff"].mean()),
        })
    return pd.DataFrame(rows)
