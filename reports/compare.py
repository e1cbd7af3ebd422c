"""Knowledge distillation versus the other compression methods: which arms are compared, and their verdicts.

**Arms.** A comparison is between two *arms*: configurations (a method with its settings and size),
each trained with one or more seeds (:func:`reports.seeds.configurations` gives one row per
configuration, with its ``runs``). The teacher is a reference, not an arm; failed rows are left out.

**Choosing, on validation.** Where a method has several configurations in a group (the same dataset,
instrument and family, so that the test clips are the same), its arm is the one with the lowest
validation MSS of the evaluated weights (``valid_mss``, the mean over its seeds), never the test
metric that is then tested. KD's arm is chosen the same way among the chosen arms of every method
whose chain has a ``kd_*`` step. A method with one configuration needs no choice; one with several
and no validation value (quantization alone) is chosen on the test metric, and ``chosen_on`` says so.

**The family.** Every pair the report shows (KD's arm against each other method per family, each KD
method against the scratch student of its size, KD's best against each method's best per budget band)
is fixed by that choice before any test value is read. They are tested once
(:func:`reports.stats.run_level_comparison`, the training run is the unit), Holm runs once over all of
them, and every table quotes the same verdict for the same pair (:class:`Family`).

**Budget buckets.** Candidates are grouped by a budget metric (parameter bytes by default) into
log-spaced bands: with ``per_decade`` bands per factor of ten, band ``k`` is
``[10**(k/per_decade), 10**((k+1)/per_decade))``. Zero, negative and missing budgets belong to no band.

**Sign.** ``diff = KD - other`` everywhere: negative means KD is better where lower is better. The verdicts
are named after KD (:data:`reports.stats.VERDICTS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ddspbench.reports.load import COMPUTE_COLS, finite, reference_mask
from ddspbench.reports.pareto import direction_of
from ddspbench.reports.seeds import record_run
from ddspbench.reports.stats import (
    ALPHA,
    REL_THRESHOLD,
    PairingError,
    claim_verdicts,
    run_level_comparison,
    run_matrix,
    runs_needed,
)
from ddspbench.suite.recipe import DISTILLATION, FROM_SCRATCH
from ddspbench.suite.records import Direction

__all__ = [
    "bucket_index",
    "bucket_bounds",
    "bucket_label",
    "assign_buckets",
    "is_kd_method",
    "is_baseline",
    "choose_per_method",
    "Family",
    "VerdictTables",
    "verdict_tables",
    "kd_vs_others",
    "kd_vs_scratch",
    "kd_summary",
    "method_verdicts",
    "instrument_aggregate",
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


def is_kd_method(tags: Any) -> bool:
    """True when a candidate's steps (their ``tags``) include knowledge distillation (a step tagged ``distillation``,
    anywhere in a chain such as ``prune+kd_audio+quantize``)."""
    return DISTILLATION in (tags or ())


def is_baseline(tags: Any) -> bool:
    """True for the baseline KD is tested against: a student trained from scratch and nothing else (every step
    tagged ``from_scratch``; ``scratch+quantize`` is a method of its own)."""
    return set(tags or ()) == {FROM_SCRATCH}


def _candidates(df: pd.DataFrame, quality: str) -> pd.DataFrame:
    ok = df[(df["status"] == "ok") & ~reference_mask(df)]
    return ok[np.isfinite(ok[quality].to_numpy(dtype=float))]


def _pick(grp: pd.DataFrame, quality: str) -> tuple[pd.Series, str]:
    """The chosen row of ``grp`` and what it was chosen on (module docstring)."""
    if len(grp) == 1:
        return grp.iloc[0], "only configuration"
    valid = pd.to_numeric(grp["valid_mss"], errors="coerce") if "valid_mss" in grp.columns else None
    if valid is not None and valid.notna().all():
        return grp.loc[valid.sort_values(kind="stable").index[0]], "validation"
    asc = direction_of(quality) is Direction.MINIMIZE
    return grp.sort_values([quality, "uid"], ascending=[asc, True]).iloc[0], "test (no validation value)"


def _with_arms(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with an ``arm`` column (the method, where rows predate arms)."""
    if "arm" in df.columns and df["arm"].notna().all():
        return df
    arm = df["arm"] if "arm" in df.columns else pd.Series(None, index=df.index, dtype=object)
    return df.assign(arm=arm.where(arm.notna(), df["method"]))


def choose_per_method(df: pd.DataFrame, quality: str = "mss", by: Sequence[str] = ()) -> pd.DataFrame:
    """The chosen row of each arm (a method, or a method's variant such as scratch at the teacher+student budget)
    within each group of ``by`` columns, with ``chosen_on``."""
    rows = []
    df = _with_arms(df)
    for _, grp in df.groupby([*by, "arm"], dropna=False, sort=True):
        row, how = _pick(grp, quality)
        rows.append(row.to_dict() | {"chosen_on": how})
    return pd.DataFrame(rows)


def _kd_arm(grp: pd.DataFrame, quality: str) -> pd.Series | None:
    kd = grp[grp["tags"].map(is_kd_method)]
    return None if kd.empty else _pick(kd, quality)[0]


_RESULT_COLS = ["diff", "ci_low", "ci_high", "threshold", "verdict", "p_holm", "p_claim", "p_zero", "se", "df",
                "n_kd", "n_other", "n_recordings", "runs_needed", "recordings_needed", "power_note", "note"]


@dataclass
class Family:
    """The comparisons a report tests: each pair once, Holm once over all of them (module docstring).

    ``add(kd_row, other_row)`` registers a pair (configuration rows with ``runs``) and returns its key;
    after :meth:`finish`, ``result(key)`` gives the pair's columns (:data:`_RESULT_COLS`), the same wherever
    the pair appears.
    """

    quality: str
    rel_threshold: float = REL_THRESHOLD
    alpha: float = ALPHA
    pairs: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)

    def add(self, kd: pd.Series, other: pd.Series) -> tuple[str, ...]:
        key = tuple(str(r.get(c)) for r in (kd, other) for c in ("results_dir", "study", "uid"))  # unique per arm
        if key not in self.pairs:
            self.pairs[key] = self._compare(kd, other)
        return key

    def _compare(self, kd: pd.Series, other: pd.Series) -> dict[str, Any]:
        empty = {c: math.nan for c in _RESULT_COLS} | {"verdict": "inconclusive", "power_note": "", "note": "",
                                                       "runs_needed": None, "recordings_needed": None}
        runs_k, runs_o = _runs_of(kd, self.quality), _runs_of(other, self.quality)
        if not runs_k or not runs_o:
            return empty | {"diff": _num(kd, self.quality) - _num(other, self.quality),
                            "note": f"no per-clip {self.quality} values: not tested", "testable": False}
        try:
            a, b = run_matrix(runs_k), run_matrix(runs_o)
            res = run_level_comparison(a, b, rel_threshold=self.rel_threshold)
        except PairingError as exc:
            return empty | {"note": f"not tested: {exc}", "testable": False}
        if direction_of(self.quality) is not Direction.MINIMIZE:  # higher is better: KD better means diff > 0
            res = _flip_claims(res)
        return empty | res

    def finish(self) -> Family:
        keys = [k for k, r in self.pairs.items() if r.get("testable")]
        if keys:
            adj, verdicts = claim_verdicts([self.pairs[k]["p_claim"] for k in keys],
                                           [self.pairs[k]["claim"] for k in keys], alpha=self.alpha)
            for k, a, v in zip(keys, adj, verdicts, strict=True):
                self.pairs[k].update(p_holm=float(a), verdict=v)
        m = max(1, len(keys))
        for r in self.pairs.values():
            if r.get("verdict") != "inconclusive":
                r["power_note"] = ""
                r["runs_needed"] = r["recordings_needed"] = None
            elif "var_runs_kd" in r:  # what would settle it once Holm's penalty is paid (Bonferroni: alpha / m)
                r.update(runs_needed(r, alpha=self.alpha / m))
        return self

    @property
    def size(self) -> int:
        """The number of tested pairs (Holm's m)."""
        return sum(1 for r in self.pairs.values() if r.get("testable"))

    def result(self, key: tuple[str, ...]) -> dict[str, Any]:
        return {c: self.pairs[key].get(c) for c in _RESULT_COLS}


def _runs_of(row: pd.Series, quality: str) -> list[dict[str, Any]]:
    """A configuration row's runs (:func:`reports.seeds.configurations`), or a single record's row as its one run."""
    runs = row.get("runs")
    if isinstance(runs, list):
        return runs
    run = record_run(row, quality)
    return [] if run is None else [run]


def _flip_claims(res: dict[str, Any]) -> dict[str, Any]:
    """For a metric where higher is better, "KD better" is the claim of a positive difference."""
    out = dict(res)
    if res.get("testable"):
        out["p_better"], out["p_worse"] = res["p_worse"], res["p_better"]
        swap = {"KD better": "KD worse", "KD worse": "KD better"}
        out["claim"] = swap.get(res["claim"], res["claim"])
    return out


@dataclass
class VerdictTables:
    """Every comparison table of a report, sharing one :class:`Family`."""

    verdicts: pd.DataFrame
    kd_vs_scratch: pd.DataFrame
    kd_vs_others: pd.DataFrame
    kd_summary: pd.DataFrame
    family: Family


def _num(r: pd.Series, col: str) -> float:
    return float(r[col]) if col in r.index and finite(r[col]) else math.nan


def _arm(r: pd.Series, quality: str) -> dict[str, Any]:
    compute = {c: _num(r, c) for c in COMPUTE_COLS}
    return {"method": r["method"], "arm": r.get("arm") or r["method"], "size": r["size"], "uid": r["uid"],
            "teacher": r.get("teacher") if isinstance(r.get("teacher"), str) else None, **compute,
            "n_seeds": int(r["n_seeds"]) if "n_seeds" in r.index and finite(r["n_seeds"]) else 1,
            quality: float(r[quality]), f"{quality}_ci_low": _num(r, f"{quality}_ci_low"),
            f"{quality}_ci_high": _num(r, f"{quality}_ci_high"), "valid_mss": _num(r, "valid_mss"),
            "chosen_on": r.get("chosen_on", ""), "evaluated_at": r.get("evaluated_at"),
            "params": _num(r, "params"), "param_bytes": _num(r, "param_bytes"),
            "converged": r["converged"] if "converged" in r.index else None}


def verdict_tables(df: pd.DataFrame, *, quality: str = "mss", budget: str = "param_bytes", per_decade: int = 2,
                   alpha: float = ALPHA, rel_threshold: float = REL_THRESHOLD) -> VerdictTables:
    """All comparison tables of ``df`` (configuration rows of :func:`reports.seeds.configurations`), one family.

    * ``verdicts``: per dataset, instrument and family, one row per method's chosen arm; ``kd_arm`` marks KD's, and
      every other method's row carries KD's arm against it (``vs_kd``, ``diff``, interval, ``verdict``, ...).
    * ``kd_vs_scratch``: per dataset, instrument, family and student size, each KD method's chosen arm against the
      scratch arm of that size; ``kd_worse`` where the verdict is "KD worse".
    * ``kd_vs_others``: per budget band (``budget``), each method's arm chosen within the band, KD's against each.
    * ``kd_summary``: per dataset, instrument and method, the verdicts of the bands.
    """
    fam = Family(quality, rel_threshold=rel_threshold, alpha=alpha)
    if quality not in df.columns:
        empty = pd.DataFrame()
        return VerdictTables(empty, empty, empty, empty, fam.finish())
    cand = _candidates(df, quality)
    pending: list[tuple[str, dict[str, Any], tuple[str, ...] | None]] = []

    by = [*_GROUP, "family"]
    chosen = choose_per_method(cand, quality, by=by) if len(cand) else cand
    for key, grp in (chosen.groupby(by, dropna=False, sort=True) if len(chosen) else []):
        kd = _kd_arm(grp, quality)
        for _, r in grp.iterrows():
            row = {**dict(zip(by, key)), **_arm(r, quality), "kd_arm": bool(kd is not None and r["uid"] == kd["uid"]),
                   "vs_kd": None}
            pair = None
            if kd is not None and not is_kd_method(r["tags"]):
                row["vs_kd"] = kd["uid"]
                pair = fam.add(kd, r)
            pending.append(("verdicts", row, pair))

    by_s = [*_GROUP, "family", "size"]
    chosen_s = choose_per_method(cand, quality, by=by_s) if len(cand) else cand
    for key, grp in (chosen_s.groupby(by_s, dropna=False, sort=True) if len(chosen_s) else []):
        scratch = grp[grp["tags"].map(is_baseline)]  # the same-budget baseline (a compute-matched one is an arm)
        if scratch.empty:
            continue
        s = scratch.iloc[0]
        for _, r in grp[grp["tags"].map(is_kd_method)].iterrows():
            row = {**dict(zip(by_s, key)), "method": r["method"], "uid": r["uid"], "scratch_uid": s["uid"],
                   "n_seeds": _arm(r, quality)["n_seeds"], "scratch_n_seeds": _arm(s, quality)["n_seeds"],
                   f"{quality}_kd": float(r[quality]), f"{quality}_scratch": float(s[quality])}
            pending.append(("kd_vs_scratch", row, fam.add(r, s)))

    if budget in cand.columns and len(cand):
        unit = df.attrs.get("units", {}).get(budget, "")
        banded = cand.assign(band=assign_buckets(cand[budget], per_decade)).dropna(subset=["band"])
        by_b = [*_GROUP, "band"]
        chosen_b = choose_per_method(banded, quality, by=by_b) if len(banded) else banded
        for key, grp in (chosen_b.groupby(by_b, dropna=False, sort=True) if len(chosen_b) else []):
            kd = _kd_arm(grp, quality)
            for _, r in grp.iterrows():
                band = int(r["band"])
                row = {**dict(zip(by_b, key)), "band": band, "budget_range": bucket_label(band, per_decade, unit),
                       "method": r["method"], "arm": r["arm"], "uid": r["uid"], "family": r["family"], "size": r["size"],
                       quality: float(r[quality]), budget: float(r[budget]),
                       "kd_best": bool(kd is not None and r["uid"] == kd["uid"]), "vs_kd": None}
                pair = None
                if kd is not None and not is_kd_method(r["tags"]):
                    row["vs_kd"] = kd["uid"]
                    pair = fam.add(kd, r)
                pending.append(("kd_vs_others", row, pair))

    fam.finish()
    tables: dict[str, list[dict[str, Any]]] = {"verdicts": [], "kd_vs_scratch": [], "kd_vs_others": []}
    for name, row, pair in pending:
        tables[name].append({**row, **(fam.result(pair) if pair is not None else {})})
    frames = {k: pd.DataFrame(v) for k, v in tables.items()}
    # which rows are KD methods, for the tables that say "KD, not chosen" (kept out of the columns: files stay as they were)
    frames["verdicts"].attrs["distillation_uids"] = sorted(str(u) for u in cand.loc[cand["tags"].map(is_kd_method), "uid"])
    ks = frames["kd_vs_scratch"]
    if len(ks):
        ks["kd_worse"] = ks["verdict"].eq("KD worse")
        frames["kd_vs_scratch"] = ks.sort_values("kd_worse", ascending=False, kind="stable").reset_index(drop=True)
    return VerdictTables(frames["verdicts"], frames["kd_vs_scratch"], frames["kd_vs_others"],
                         kd_summary(frames["kd_vs_others"]), fam)


def method_verdicts(df: pd.DataFrame, *, quality: str = "mss", alpha: float = ALPHA) -> pd.DataFrame:
    """The ``verdicts`` table of :func:`verdict_tables` (KD's arm against each method's, per family)."""
    return verdict_tables(df, quality=quality, alpha=alpha).verdicts


def kd_vs_scratch(df: pd.DataFrame, *, quality: str = "mss", alpha: float = ALPHA) -> pd.DataFrame:
    """The ``kd_vs_scratch`` table of :func:`verdict_tables`."""
    return verdict_tables(df, quality=quality, alpha=alpha).kd_vs_scratch


def kd_vs_others(df: pd.DataFrame, *, quality: str = "mss", budget: str = "param_bytes", per_decade: int = 2,
                 alpha: float = ALPHA) -> pd.DataFrame:
    """The ``kd_vs_others`` table of :func:`verdict_tables` (per budget band)."""
    return verdict_tables(df, quality=quality, budget=budget, per_decade=per_decade, alpha=alpha).kd_vs_others


def kd_summary(kd_others: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, instrument and non-KD method: in how many budget bands KD's arm was compared with that method's,
    and how many verdicts read KD better, KD worse, equivalent, or inconclusive."""
    if kd_others.empty or "vs_kd" not in kd_others.columns:
        return pd.DataFrame()
    cmp = kd_others[kd_others["vs_kd"].notna()]
    rows = []
    cmp = _with_arms(cmp).assign(method=lambda d: d["arm"])  # per arm: scratch at two budgets are two rows
    for key, grp in cmp.groupby([*_GROUP, "method"], dropna=False, sort=True):
        v = grp["verdict"].astype(str)
        rows.append({
            "dataset": key[0], "instrument": key[1], "method": key[2], "bands": len(grp),
            "kd_better": int(v.eq("KD better").sum()), "kd_worse": int(v.eq("KD worse").sum()),
            "equivalent": int(v.eq("equivalent within +-T").sum()), "inconclusive": int(v.eq("inconclusive").sum()),
            "mean_diff": float(grp["diff"].mean()),
        })
    return pd.DataFrame(rows)


def instrument_aggregate(verdicts: pd.DataFrame, quality: str = "mss") -> pd.DataFrame:
    """Across instruments, per dataset and family: each arm's rank by mean ``quality`` within every instrument
    (1 = best; the chosen arms of :func:`verdict_tables`), its mean rank, and for KD's arm where it was hurt.

    Quality values of different instruments are not comparable (other test clips), ranks are. ``kd_hurt`` names,
    per instrument, the arms KD's arm was found worse than ("KD worse" after Holm); empty when it never was. An arm
    missing on an instrument is left out of that instrument's ranks, and ``instruments`` counts where it ran.
    """
    if verdicts.empty or quality not in verdicts.columns:
        return pd.DataFrame()
    v = _with_arms(verdicts)
    insts = v["instrument"].astype(str).where(v["instrument"].notna(), "")
    v = v.assign(instrument=insts)
    if v["instrument"].nunique() < 2:
        return pd.DataFrame()
    asc = direction_of(quality) is Direction.MINIMIZE
    rows = []
    for (dataset, family), grp in v.groupby(["dataset", "family"], dropna=False, sort=True):
        ranks: dict[str, dict[str, int]] = {}
        hurt: dict[str, list[str]] = {}
        for inst, g in grp.groupby("instrument", sort=True):
            r = pd.to_numeric(g[quality], errors="coerce").rank(ascending=asc, method="min")
            for arm, k in zip(g["arm"], r, strict=True):
                if k == k:
                    ranks.setdefault(str(arm), {})[str(inst)] = int(k)
            worse = g[g["verdict"].astype(str).eq("KD worse")] if "verdict" in g.columns else g.iloc[:0]
            if len(worse):
                hurt[str(inst)] = [str(a) for a in worse["arm"]]
        kd_arms = set(grp.loc[grp["kd_arm"].astype(bool), "arm"].astype(str)) if "kd_arm" in grp.columns else set()
        for arm, by_inst in ranks.items():
            rows.append({
                "dataset": dataset, "family": family, "arm": arm, "kd": arm in kd_arms,
                "mean_rank": float(np.mean(list(by_inst.values()))), "instruments": len(by_inst),
                "ranks": ", ".join(f"{i} {k}" for i, k in sorted(by_inst.items())),
                "kd_hurt": ("; ".join(f"{i}: worse than {', '.join(a)}" for i, a in sorted(hurt.items()))
                            if arm in kd_arms else ""),
            })
    out = pd.DataFrame(rows)
    return out.sort_values(["dataset", "family", "mean_rank", "arm"], kind="stable").reset_index(drop=True)
