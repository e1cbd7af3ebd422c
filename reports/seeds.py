"""Seeds as an axis: records of the same configuration trained with several seeds become one row.

A sweep run with repeats writes one record per (configuration, seed); records of one configuration
share ``config_id`` (docs/CONTRACTS.md) and differ in ``seed``. Records without a ``config_id`` are
each their own configuration (one seed), so older results directories load unchanged.

:func:`configurations` turns a results frame into one row per configuration (within one results
directory and study), for the leaderboard, the Pareto fronts and the comparisons:

* every metric column is the **mean over the configuration's ok seeds**;
* ``<metric>_ci_low`` / ``<metric>_ci_high`` become, for configurations with 2 or more seeds, the
  95 % t-interval of that mean over seeds (``mean +- t_{0.975, n-1} * sd / sqrt(n)``, cut at 0 for metrics
  that cannot be negative); with one
  seed the record's own interval (a bootstrap over test clips) is kept;
* ``converged`` (when the frame has it) is ``False`` if any seed's training was not converged
  (:func:`reports.convergence.combine_flags`);
* ``n_seeds`` and ``seeds`` say how many and which; ``seed_sd`` is the standard deviation over seeds
  of the quality metric (NaN with one seed), which the comparisons use as a practical threshold;
* ``runs`` keeps every ok seed's per-clip values of the quality metric with the clips' ids and recordings:
  the verdicts test over runs (:mod:`reports.stats`, the run is the unit); ``valid_mss`` becomes the mean over
  seeds of the validation MSS the configuration is chosen by;
* ``per_clip`` lists become the clip-wise means over seeds (for plots and clip-level views; no verdict uses them).

Failed seeds are not averaged in; their failed rows stay in the frame (listed as failed). A
configuration's row keeps the identity and artifacts of its lowest seed's record, and its ``uid``
becomes the configuration id when it has several seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ddspbench.reports.convergence import combine_flags
from ddspbench.reports.load import COMPUTE_COLS
from ddspbench.suite.metrics.declare import Role, declared

__all__ = ["SEEDS_NOTE", "is_set_metric", "configurations", "has_repeats", "record_run"]

SEEDS_NOTE = (
    "Configurations run with several seeds are one row each: metrics are means over seeds, n_seeds says how many, "
    "and their intervals are 95 % t-intervals over seeds (single-seed rows keep their bootstrap interval over test "
    "clips). Verdicts test over training runs: each seed of each arm is one run (reports.stats). A sweep measures "
    "candidates that neither train nor draw random numbers (quantization, pruning without fine-tuning) once per "
    "teacher, so their n_seeds is the number of teachers (teacher.seeds, at most the runs per arm); each teacher is "
    "trained once, and run k of an arm starts from teacher k mod teacher.seeds."
)


def _signed(metric: str) -> bool:
    """Whether a metric can be negative (KAD's unbiased estimator, an extrapolated FAD; its declaration's ``signed``):
    its t-interval is not cut at 0."""
    decl = declared(metric)
    return decl is not None and decl.signed


def has_repeats(df: pd.DataFrame) -> bool:
    """True when some configuration has more than one ok seed."""
    return "n_seeds" in df.columns and bool((df["n_seeds"].fillna(1) > 1).any())


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    n = values.size
    m, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return m - half, m + half


def _clipwise_mean(lists: list[list[float]]) -> list[float] | None:
    if not lists or len({len(v) for v in lists}) != 1:
        return None
    with np.errstate(all="ignore"):
        arr = np.asarray(lists, dtype=float)
        out = np.where(np.isfinite(arr).any(axis=0), np.nanmean(np.where(np.isfinite(arr), arr, np.nan), axis=0), np.nan)
    return [float(v) for v in out]


def is_set_metric(metric: str | None) -> bool:
    """Whether ``metric`` is a quality metric measured on the whole test set at once (a distance between two sets of
    embeddings: declared ``role`` quality and not ``paired`` per clip): a run is one value, and a verdict on it rests
    on the spread between runs alone."""
    decl = declared(metric) if metric else None
    return decl is not None and decl.role is Role.QUALITY and not decl.paired


def record_run(row: Any, quality: str | None) -> dict[str, Any] | None:
    """One record's row (a dict or a pandas row) as the run a verdict tests (:mod:`reports.stats`): its seed, its
    per-clip values of ``quality`` and the clips' identity; None when it has no per-clip values. A set-level metric
    (:func:`is_set_metric`) is one value on one "recording", the test set."""
    pc = row.get("per_clip")
    if is_set_metric(quality):
        v = row.get(quality)
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            return None
        return {"seed": row.get("seed"), "uid": row.get("uid"), "values": [float(v)], "clip_ids": ["test set"],
                "recording_ids": ["test set"]}
    if quality is None or not isinstance(pc, dict) or not pc.get(quality):
        return None
    return {"seed": row.get("seed"), "uid": row.get("uid"), "values": list(pc[quality]),
            "clip_ids": row.get("clip_ids"), "recording_ids": row.get("recording_ids")}


def _runs(grp: pd.DataFrame, quality: str | None) -> list[dict[str, Any]]:
    """Each seed's run (:func:`record_run`)."""
    return [run for r in grp.to_dict("records") if (run := record_run(r, quality)) is not None]


def _merge(grp: pd.DataFrame, metrics: list[str], quality: str | None) -> dict[str, Any]:
    grp = grp.sort_values("seed", kind="stable")
    row: dict[str, Any] = grp.iloc[0].to_dict()
    n = len(grp)
    row["n_seeds"] = n
    row["seeds"] = ",".join(str(int(s)) for s in grp["seed"] if s is not None and not pd.isna(s))
    row["runs"] = _runs(grp, quality)
    if "valid_mss" in grp.columns:  # the configuration is chosen on validation: its mean over seeds
        v = pd.to_numeric(grp["valid_mss"], errors="coerce").to_numpy(dtype=float)
        row["valid_mss"] = float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else math.nan
    for c in COMPUTE_COLS:  # per run: each run paid it (the configuration's total is n times this)
        if c in grp.columns:
            v = pd.to_numeric(grp[c], errors="coerce").to_numpy(dtype=float)
            row[c] = float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else math.nan
    if "teacher_seed" in grp.columns:
        seeds = sorted({int(x) for x in grp["teacher_seed"] if x is not None and not pd.isna(x)})
        if len(seeds) > 1:
            what = {str(x) for x in grp["teacher_recipe"] if isinstance(x, str)} if "teacher_recipe" in grp.columns \
                else set()
            row["teacher"] = (f"{what.pop()}; " if len(what) == 1 else "") + \
                f"{len(seeds)} teachers (seeds {', '.join(map(str, seeds))})"
    if n == 1:
        row["seed_sd"] = math.nan
        return row
    row["uid"] = str(row["config_id"])
    if "converged" in grp.columns:  # the configuration is unconverged when any of its seeds is
        row["converged"] = combine_flags(grp["converged"])
    if "regressed" in grp.columns:  # some seed ended more than 5 % above its best validation
        row["regressed"] = True if any(v is True for v in grp["regressed"]) else row.get("regressed")
    for m in metrics:
        vals = grp[m].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        row[m] = float(vals.mean()) if vals.size else math.nan
        lo, hi = _t_interval(vals) if vals.size >= 2 else (math.nan, math.nan)
        if not _signed(m) and vals.size and vals.min() >= 0:
            lo = max(lo, 0.0)  # times, bytes and distances cannot be negative: the interval stops at 0
        row[f"{m}_ci_low"], row[f"{m}_ci_high"] = lo, hi
    if quality is not None and quality in grp.columns:
        q = grp[quality].to_numpy(dtype=float)
        q = q[np.isfinite(q)]
        row["seed_sd"] = float(q.std(ddof=1)) if q.size >= 2 else math.nan
    else:
        row["seed_sd"] = math.nan
    per_clip: dict[str, list[float]] = {}
    keys = set().union(*(set(pc) for pc in grp["per_clip"] if isinstance(pc, dict)))
    for k in sorted(keys):
        merged = _clipwise_mean([pc[k] for pc in grp["per_clip"] if isinstance(pc, dict) and pc.get(k)])
        if merged is not None:
            per_clip[k] = merged
    row["per_clip"] = per_clip
    return row


def configurations(df: pd.DataFrame, quality: str | None = "mss") -> pd.DataFrame:
    """One row per configuration (see the module docstring); ``attrs`` are kept.

    Args:
        df: a results frame (:func:`reports.load_results`).
        quality: the metric whose seed-to-seed spread becomes ``seed_sd``.
    """
    metrics = [m for m in df.attrs.get("metrics", []) if m in df.columns]
    work = df.copy()
    if "config_id" not in work.columns:
        work["config_id"] = None
    work["config_id"] = work["config_id"].where(work["config_id"].notna() & (work["config_id"] != ""), work["uid"])
    ok = work[work["status"] == "ok"]
    failed = work[work["status"] != "ok"].assign(n_seeds=0, seeds="", seed_sd=math.nan)
    keys = ["results_dir", "study", "config_id"]
    rows = [_merge(g, metrics, quality) for _, g in ok.groupby(keys, dropna=False, sort=False)]
    merged = pd.DataFrame(rows) if rows else ok.iloc[:0].assign(n_seeds=0, seeds="", seed_sd=math.nan)
    for m in metrics:
        for c in (f"{m}_ci_low", f"{m}_ci_high"):
            if c in merged.columns:
                merged[c] = pd.to_numeric(merged[c], errors="coerce").astype(float)
    if len(merged) and merged["uid"].duplicated(keep=False).any():
        # configuration ids repeat across results directories (two studies both have a t0000): name them by study,
        # as load_results names repeated candidate ids, so every configuration keeps one uid of its own
        dup = merged["uid"].duplicated(keep=False)
        prefix = merged["study"].where(merged["study"].astype(bool), merged["results_dir"].map(lambda d: Path(d).name))
        merged.loc[dup, "uid"] = prefix[dup] + "/" + merged.loc[dup, "uid"].astype(str)
    out = pd.concat([merged, failed], ignore_index=True, sort=False)
    out["n_seeds"] = out["n_seeds"].astype(int)
    out.attrs = dict(df.attrs)
    return out
