"""Knowledge distillation versus the other compression methods, at matched budget.

**Budget buckets.** Candidates are grouped by a budget metric (parameter bytes by default, or a
real-time factor) into log-spaced bands: with ``per_decade`` bands per factor of ten, band ``k`` is
``[10**(k/per_decade), 10**((k+1)/per_decade))``. With the default two bands per decade the edges are
1, 3.16, 10, 31.6, 100, ... so two candidates share a band when their budgets are within about 3.2x
of each other and on the same side of an edge. Zero, negative and missing budgets belong to no band.

**Best per method.** Within one band of one comparison group (the same dataset and instrument, so
that the test clips are the same), the best candidate of each method by the quality metric. The
teacher is a reference, not a compressed candidate, and is left out; so are failed rows.

**Significance** (:mod:`reports.stats`). KD's best in the band (the best of every method whose chain
contains a ``kd_*`` step) is compared with each other method's best clip by clip on the quality
metric's per-clip values (the same clips in the same order, docs/CONTRACTS.md). One sign convention
everywhere: ``diff = KD - other`` (the method is KD, the baseline the other method), so for a metric
where lower is better a negative ``diff`` means KD is better. The p-value is the exact two-sided
sign-flip permutation test (``test`` names it), ``p_holm`` its Holm correction over the rows of the
table, the interval a BCa bootstrap (``ci_method``), with the exact Wilcoxon p beside it, the relative
effect and ``d_z``. ``verdict`` needs ``p_holm < alpha`` and ``|diff|`` above the practical threshold;
with too few clips to ever reach alpha it reads "not enough data to tell". Candidates whose per-clip
lists differ in length were not measured on the same clips and are not tested.

**Seeds.** When a configuration was run with several seeds (rows sharing a ``config_id``), it enters
as one row (:func:`reports.seeds.configurations`): its per-clip values are the clip-wise means over
its seeds, and its seed-to-seed standard deviation ``seed_sd`` raises the practical threshold.

**KD worse than scratch.** For each dataset, instrument, family and student size, each KD method's
best student against the ``scratch`` student of the same size (``diff = KD - scratch``);
``kd_worse`` only where the verdict is "method worse" (Holm-significant and above the threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ddspbench.reports.load import clip_values, finite
from ddspbench.reports.pareto import direction_of
from ddspbench.reports.stats import ALPHA, apply_holm, paired_comparison
from ddspbench.suite.records import Direction

__all__ = [
    "bucket_index",
    "bucket_bounds",
    "bucket_label",
    "assign_buckets",
    "is_kd_method",
    "best_per_method",
    "kd_vs_others",
    "kd_vs_scratch",
    "kd_summary",
    "method_verdicts",
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


def _seed_sd(*rows: pd.Series) -> float | None:
    """Pooled seed-to-seed standard deviation of the rows' quality (None when no row has several seeds)."""
    sds = [float(r["seed_sd"]) for r in rows if "seed_sd" in r.index and finite(r["seed_sd"])]
    return float(np.sqrt(np.mean(np.square(sds)))) if sds else None


_EMPTY: dict[str, Any] = {
    "ci_low": np.nan, "ci_high": np.nan, "ci_method": "", "p_value": np.nan, "test": "", "p_wilcoxon": np.nan,
    "n": np.nan, "min_p": np.nan, "rel_effect": np.nan, "d_z": np.nan, "threshold": np.nan, "relevant": None,
}


def _compare(method_row: pd.Series, baseline_row: pd.Series, quality: str, seed: int) -> dict[str, Any]:
    """``method - baseline`` on the quality metric, with the paired test of :mod:`reports.stats`."""
    a, b = clip_values(method_row, quality), clip_values(baseline_row, quality)
    base = {"diff": float(method_row[quality] - baseline_row[quality])}
    if a is None or b is None:
        return {**base, **_EMPTY, "pairing": "no per-clip data"}
    if a.size != b.size:
        return {**base, **_EMPTY, "pairing": f"not the same clips ({a.size} vs {b.size} per-clip values): not tested"}
    try:
        res = paired_comparison(a, b, seed_sd=_seed_sd(method_row, baseline_row), seed=seed)
    except ValueError as exc:
        return {**base, **_EMPTY, "pairing": str(exc)}
    res.pop("enough_data")
    res.pop("wilcoxon_test")
    n_seeds = [int(r["n_seeds"]) for r in (method_row, baseline_row) if "n_seeds" in r.index and finite(r["n_seeds"])]
    seeds = f", per-clip means over {'/'.join(map(str, n_seeds))} seeds" if any(k > 1 for k in n_seeds) else ""
    return {**res, "pairing": f"paired, {res['n']} clips{seeds}"}


_CMP_COLS = ["diff", "ci_low", "ci_high", "ci_method", "p_value", "test", "p_holm", "verdict", "p_wilcoxon",
             "rel_effect", "d_z", "threshold", "relevant", "n", "min_p", "min_p_holm", "pairing"]


def _finish(rows: list[dict[str, Any]], quality: str, alpha: float) -> pd.DataFrame:
    """Holm over the table's tested rows, and the verdict of each."""
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for c in _CMP_COLS:
        if c not in out.columns:
            out[c] = np.nan
    tested = out["p_value"].notna()
    out["verdict"] = pd.Series([None if pd.isna(d) else "not tested (no paired per-clip data)" for d in out["diff"]],
                               index=out.index, dtype=object)
    if tested.any():
        done = apply_holm(out[tested], alpha=alpha, lower_is_better=direction_of(quality) is Direction.MINIMIZE)
        for c in ("p_holm", "min_p_holm", "verdict"):
            out.loc[tested, c] = done[c]
    return out


def kd_vs_others(
    df: pd.DataFrame,
    *,
    quality: str = "mss",
    budget: str = "param_bytes",
    per_decade: int = 2,
    seed: int = 0,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Best of each method per budget band, with KD's best compared against each other method's best.

    One row per (dataset, instrument, band, method). On each non-KD row, ``diff`` is KD's best minus
    this method's best (**negative means KD is better** when lower is better), with the paired test
    columns of :func:`reports.stats.paired_comparison`, ``p_holm`` (Holm over the table's tested rows)
    and ``verdict`` ("method better" = KD better). KD rows compare against nothing (``kd_best`` marks
    the one all others are compared with). Bands without a KD candidate have no comparisons.
    """
    if quality not in df.columns or budget not in df.columns:
        return pd.DataFrame()
    cand = _candidates(df, quality)
    cand = cand.assign(band=assign_buckets(cand[budget], per_decade)).dropna(subset=["band"])
    if cand.empty:
        return pd.DataFrame()
    unit = df.attrs.get("units", {}).get(budget, "")
    best = best_per_method(cand, quality, by=[*_GROUP, "band"])

    def describe(r: pd.Series) -> dict[str, Any]:
        band = int(r["band"])
        return {"band": band, "budget_range": bucket_label(band, per_decade, unit), "method": r["method"], "uid": r["uid"],
                "family": r["family"], "size": r["size"], quality: float(r[quality]), budget: float(r[budget])}

    return _finish(_vs_kd_rows(best, [*_GROUP, "band"], quality, seed, describe), quality, alpha)


def _vs_kd_rows(best: pd.DataFrame, by: list[str], quality: str, seed: int,
                describe: Any) -> list[dict[str, Any]]:
    """Per group of ``by`` in ``best`` (one row per method): ``describe(row)`` for every method, ``kd_best`` marking
    KD's best of the group, and on each non-KD row the paired comparison ``KD's best - this method``."""
    rows: list[dict[str, Any]] = []
    for key, grp in best.groupby(by, dropna=False, sort=True):
        kd = grp[grp["method"].map(is_kd_method)]
        kd_best = best_per_method(kd.assign(method="kd"), quality).iloc[0] if not kd.empty else None
        for _, r in grp.iterrows():
            row: dict[str, Any] = {**dict(zip(by, key)), **describe(r),
                                   "kd_best": bool(kd_best is not None and r["uid"] == kd_best["uid"]),
                                   "vs_kd": None, "pairing": ""}
            if kd_best is not None and not is_kd_method(r["method"]):
                row.update(vs_kd=kd_best["uid"], **_compare(kd_best, r, quality, seed))
            rows.append(row)
    return rows


def method_verdicts(df: pd.DataFrame, *, quality: str = "mss", seed: int = 0, alpha: float = ALPHA) -> pd.DataFrame:
    """The verdict table of a fixed-grid comparison (the ``compare`` preset): per dataset, instrument and family, each
    method's best configuration and KD's best compared with each of the others.

    One row per (dataset, instrument, family, method): the configuration's size, its budget (``params``,
    ``param_bytes``), ``n_seeds``, the mean quality over its seeds with ``<quality>_ci_low``/``_ci_high`` (the
    95 % t-interval over seeds, :mod:`reports.seeds`; a single seed keeps its bootstrap interval over clips),
    ``converged`` (False when any seed's training was not converged) and, on every non-KD row, ``diff`` = KD's best
    of the family minus this method (**negative means KD is better** when lower is better) with the paired test,
    ``p_holm`` (Holm over the table's tested rows) and ``verdict``, which reads "not enough data to tell" when the
    clips could never reach alpha. Expects the configuration rows of :func:`reports.seeds.configurations`.
    """
    if quality not in df.columns:
        return pd.DataFrame()
    by = [*_GROUP, "family"]
    best = best_per_method(_candidates(df, quality), quality, by=by)

    def num(r: pd.Series, col: str) -> float:
        return float(r[col]) if col in r.index and finite(r[col]) else math.nan

    def describe(r: pd.Series) -> dict[str, Any]:
        return {"method": r["method"], "size": r["size"], "uid": r["uid"],
                "n_seeds": int(r["n_seeds"]) if "n_seeds" in r.index and finite(r["n_seeds"]) else 1,
                quality: float(r[quality]), f"{quality}_ci_low": num(r, f"{quality}_ci_low"),
                f"{quality}_ci_high": num(r, f"{quality}_ci_high"), "params": num(r, "params"),
                "param_bytes": num(r, "param_bytes"), "converged": r["converged"] if "converged" in r.index else None}

    return _finish(_vs_kd_rows(best, by, quality, seed, describe), quality, alpha)


def kd_vs_scratch(df: pd.DataFrame, *, quality: str = "mss", seed: int = 0, alpha: float = ALPHA) -> pd.DataFrame:
    """Each KD method's best student against the scratch student of the same family and size.

    One row per (dataset, instrument, family, size, KD method) where a scratch student exists.
    ``diff`` = KD minus scratch (**positive means KD is worse** when lower is better), the paired test
    columns, ``p_holm`` over the table's rows and ``verdict``; ``kd_worse`` is True only where the
    verdict is "method worse": Holm-significant *and* above the practical threshold.
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
            rows.append({
                "dataset": key[0], "instrument": key[1], "family": key[2], "size": key[3],
                "method": r["method"], "uid": r["uid"], "scratch_uid": s["uid"],
                f"{quality}_kd": float(r[quality]), f"{quality}_scratch": float(s[quality]),
                **_compare(r, s, quality, seed),
            })
    out = _finish(rows, quality, alpha)
    if len(out):  # flagged pairs first
        out["kd_worse"] = out["verdict"].eq("method worse")
        out = out.sort_values("kd_worse", ascending=False, kind="stable").reset_index(drop=True)
    return out


def kd_summary(kd_others: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, instrument and non-KD method: in how many budget bands KD's best was compared with
    that method's best, and how many verdicts said KD better, KD worse, no clear difference (not
    significant after Holm, or below the practical threshold), or not enough data to tell."""
    if kd_others.empty or "vs_kd" not in kd_others.columns:
        return pd.DataFrame()
    cmp = kd_others[kd_others["vs_kd"].notna()]
    rows = []
    for key, grp in cmp.groupby([*_GROUP, "method"], dropna=False, sort=True):
        v = grp["verdict"].astype(str)
        better, worse = v.eq("method better"), v.eq("method worse")
        unknown = v.eq("not enough data to tell") | v.str.startswith("not tested")
        rows.append({
            "dataset": key[0], "instrument": key[1], "method": key[2], "bands": len(grp),
            "kd_better": int(better.sum()), "kd_worse": int(worse.sum()),
            "no_clear_difference": int((~better & ~worse & ~unknown).sum()),
            "not_enough_data": int(unknown.sum()),
            "mean_diff": float(grp["diff"].mean()),
        })
    return pd.DataFrame(rows)
