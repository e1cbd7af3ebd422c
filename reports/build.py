"""``build_report``: results directories -> Markdown, CSV, JSON and HTML reports in one folder.

Written files (those of the requested formats): ``report.md`` (leaderboard, Pareto fronts, KD vs
others, KD vs scratch, failed candidates; plots linked), ``leaderboard.csv`` (plain column names, every
metric and hyperparameter) with ``leaderboard.units.json`` (column -> unit), ``report.json``,
``index.html`` (with ``audio/`` and ``plots/``). Plots (``plots/*.png``) are made for ``md`` and
``html``.

Pareto fronts are computed within each (dataset, instrument) group, because quality numbers of
different test sets are not comparable; each group's hypervolume is computed on objectives min-max
normalised over that group's ok candidates (teacher included) against the reference point 1.1 in
every objective (:data:`HV_NOTE`), and every method's own front is scored in the same frame, so
hypervolumes compare methods within a group. Configurations run with several seeds are one row each
(:mod:`reports.seeds`).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ddspbench.reports.compare import VerdictTables, instrument_aggregate, verdict_tables
from ddspbench.reports.convergence import UNCONVERGED_NOTE, converged_flags, flag_comparison, regressed_flags
from ddspbench.reports.html import write_html
from ddspbench.reports.load import load_results, loaded_note, metric_columns, reference_mask
from ddspbench.reports.pareto import (
    HV_REF,
    direction_of,
    hypervolume,
    is_pareto_front,
    normalise,
    parse_objectives,
    to_minimise,
)
from ddspbench.reports.plots import compute_curves_plot, default_plots, memory_metric, quality_metric
from ddspbench.reports.seeds import SEEDS_NOTE, configurations, has_repeats
from ddspbench.reports.spreadsheet import neutralise_frame
from ddspbench.reports.stats import ALPHA, METHOD_NOTE, REL_THRESHOLD, SIGN_CONVENTION
from ddspbench.reports.tables import (
    csv_units,
    failed_rows,
    filter_frame,
    frame_markdown,
    json_value,
    leaderboard,
    teachers_used,
    to_csv,
    to_json_obj,
    to_markdown,
    verdict_display,
)
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics.declare import Role, headline_metrics, names_with_role
from ddspbench.suite.records import Direction

__all__ = ["FORMATS", "build_report", "pareto_by_group", "front_table"]

FORMATS: tuple[str, ...] = ("md", "html", "csv", "json")
_GROUP = ["dataset", "instrument"]


def _objectives_present(df: pd.DataFrame, objectives: str | Sequence[str] | None, quality: str,
                        rtf_metric: str) -> list[tuple[str, Any]]:
    if objectives is None:
        rtf = rtf_metric if rtf_metric in df.columns else (memory_metric(df) or "params")
        objectives = [quality, rtf]
    objs = parse_objectives(objectives)
    missing = [n for n, _ in objs if n not in df.columns or not df[n].notna().any()]
    if missing:
        raise UserError(f"no candidate has objective metric(s) {missing}; metrics present: "
                        f"{', '.join(df.attrs.get('metrics', []))}")
    return objs


def pareto_by_group(df: pd.DataFrame, objectives: Sequence[tuple[str, Any]]) -> pd.Series:
    """Pareto membership of each row within its (dataset, instrument) group (failed rows: False)."""
    names, dirs = [n for n, _ in objectives], [d for _, d in objectives]
    out = pd.Series(False, index=df.index, name="pareto")
    for _, grp in df.groupby(_GROUP, dropna=False):
        vals = to_minimise(grp[names].to_numpy(dtype=float), dirs)
        vals[(grp["status"] != "ok").to_numpy()] = np.nan
        out.loc[grp.index] = is_pareto_front(vals)
    return out


HV_NOTE = (
    "Hypervolume: each objective is turned into one to minimise and min-max normalised over the group's ok "
    "candidates (teacher included): 0 = the group's best value, 1 = its worst; the reference point is 1.1 in every "
    "objective, so a group's hypervolume lies in [0, 1.1^k] (k objectives) and hv_share = hypervolume / 1.1^k is "
    "the share of that box the method's candidates dominate (larger is better; comparable within a group only)."
)


def front_table(df: pd.DataFrame, objectives: Sequence[tuple[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(front rows, normalised hypervolume per group and method) for the frame's ``pareto`` column (:data:`HV_NOTE`)."""
    names, dirs = [n for n, _ in objectives], [d for _, d in objectives]
    front = df[df["pareto"]][[*_GROUP, "uid", "method", "family", "size", *names]]
    front = front.sort_values([*_GROUP, names[0]], na_position="first").reset_index(drop=True)
    hv_rows: list[dict[str, Any]] = []
    full = HV_REF ** len(names)
    for key, grp in df[df["status"] == "ok"].groupby(_GROUP, dropna=False):
        raw = to_minimise(grp[names].to_numpy(dtype=float), dirs)
        if not np.isfinite(raw).all(axis=1).any():
            continue
        vals, lo, hi = normalise(raw)
        ref = np.full(len(names), HV_REF)
        bounds = "; ".join(f"{n}: {a:.4g}..{b:.4g}" for n, a, b in zip(names, lo, hi, strict=True))
        hv = hypervolume(vals, ref)
        entry: dict[str, Any] = {"dataset": key[0], "instrument": key[1], "method": "(all)", "hypervolume": hv,
                                 "hv_share": hv / full, "front_size": int(is_pareto_front(vals).sum()),
                                 "normalised_over": bounds, "reference_point": f"{HV_REF} x {len(names)}"}
        hv_rows.append(entry)
        for method, idx in grp.groupby("method").indices.items():
            mv = vals[idx]
            mhv = hypervolume(mv, ref)
            hv_rows.append({"dataset": key[0], "instrument": key[1], "method": method, "hypervolume": mhv,
                            "hv_share": mhv / full, "front_size": int(is_pareto_front(mv).sum()),
                            "normalised_over": bounds, "reference_point": f"{HV_REF} x {len(names)}"})
    return front, pd.DataFrame(hv_rows)


def _where(r: Any) -> str:
    return "/".join(str(v) for v in (r.dataset, r.instrument, r.family, r.size) if isinstance(v, str) and v) + f" ({r.method})"


def _compute_plots(runs: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Quality against cumulative compute (:func:`reports.plots.compute_curves_plot`), one per dataset, instrument
    and family that has records with compute."""
    made: dict[str, Path] = {}
    if "total_flops" not in runs.columns or not runs["total_flops"].notna().any():
        return made
    for i, (key, grp) in enumerate(runs.groupby(["dataset", "instrument", "family"], dropna=False, sort=True)):
        label = "/".join(str(k) for k in key if isinstance(k, str) and k)
        path = compute_curves_plot(grp, out / f"compute_{i}.png", title=f"validation MSS vs cumulative compute: {label}")
        if path is not None:
            made[f"quality vs compute: {label}"] = path
    return made


def _arm_name(r: Any) -> str:
    arm = getattr(r, "arm", None) if not isinstance(r, pd.Series) else r.get("arm")
    return str(arm) if isinstance(arm, str) and arm else str(getattr(r, "method", None) if not isinstance(r, pd.Series)
                                                              else r.get("method"))


def kd_headline(tables: VerdictTables, quality: str) -> str:
    """The answer in one paragraph: per dataset, instrument and family, KD's arm against each other method in the
    four verdict words (:data:`reports.stats.VERDICTS`), with ``KD - other`` where the verdict is a finding; the
    reasons of inconclusive pairs are in the verdict table."""
    v = tables.verdicts
    if v.empty or "vs_kd" not in v.columns or not v["vs_kd"].notna().any():
        return "KD vs others: no KD arm with another method to compare with."
    parts = []
    for key, grp in v.groupby(["dataset", "instrument", "family"], dropna=False, sort=True):
        kd = grp[grp["kd_arm"].astype(bool)]
        cmp = grp[grp["vs_kd"].notna()]
        if kd.empty or cmp.empty:
            continue
        where = "/".join(str(k) for k in key if isinstance(k, str) and k)
        said = "; ".join(f"vs {_arm_name(r)}: {r.verdict}" + (
            f" ({r.diff:+.3g} [{r.ci_low:+.3g}, {r.ci_high:+.3g}], T {r.threshold:.3g})"
            if r.verdict != "inconclusive" else "") for r in cmp.itertuples())
        parts.append(f"{where}: KD ({_arm_name(kd.iloc[0])}) {said}")
    m = tables.family.size
    family = (f"Holm over the report's {m} tested comparisons" if m else
              "no pair could be tested (see the verdict table for why)")
    return (f"Verdicts of KD on {quality} (KD - other, 95 % interval over training runs and test recordings; "
            f"{family}): " + ". ".join(parts) + ".")


TEACHERS_NOTE = (
    "An arm that starts from the teacher's weights or learns from its outputs names it: its variant (teacher.variants, "
    "when the sweep trains several sizes or budgets), size, training steps and seed; an arm run over several teachers "
    "(teacher.seeds) lists their seeds, run k using teacher k mod seeds. Scratch arms use no teacher.")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in r.items()} for r in df.to_dict("records")]


VERDICT_NOTE = (
    "One row per dataset, instrument, family and method (its configuration chosen on validation): the mean quality "
    "over its training runs with the 95 % t-interval over runs (one run: its bootstrap interval over clips), its "
    "size, and converged (no: some run was still improving). On every other method's row: KD's arm minus this "
    "method (diff, 95 % interval over runs and test recordings), the practical threshold T and the verdict (KD "
    "better / KD worse / equivalent within +-T / inconclusive), Holm over every comparison of the report; "
    "inconclusive rows say how many runs or recordings would settle them."
)

def secondary_quality(quality: str) -> str | None:
    """The second quality metric a report tests the same arms on: the next quality headline after ``quality`` (FAD
    beside MSS: their declarations' ``headline`` ranks), None when ``quality`` is not the first one."""
    heads = headline_metrics(Role.QUALITY)
    return heads[1] if len(heads) > 1 and heads[0] == quality else None

SECONDARY_NOTE = (
    "The same arms (chosen on validation MSS), tested on {q}: {q} is measured on the whole test set at once, so a run "
    "is one value and the interval rests on the spread between training runs alone (one recording). A second family "
    "of tests, Holm over its own pairs; the verdict table above (MSS) is the primary answer."
)

ACROSS_NOTE = (
    "Quality values of different instruments are not comparable (other test clips); ranks are. Per family, each arm's "
    "rank within every instrument (1 = best mean over its runs), their mean, and where KD's arm was found worse than "
    "another arm (\"KD worse\" after Holm). A rank is not a verdict: read the verdict table for what was shown."
)

SMOKE_WARNING = (
    "SMOKE PRESET: tiny data, tens of training steps and reduced-width teachers. These numbers only show that "
    "the machinery works end to end; they say nothing about the quality of any method."
)


def listening_candidates(df: pd.DataFrame, metric: str, max_listen: int) -> pd.DataFrame:
    """Who gets players on the listening page, at most ``max_listen``, best first by ``metric``.

    First the best ok candidate of every dataset, instrument, family and method (so every method a verdict
    compares can be heard), then the rest of the Pareto set. Teachers are not listed: every candidate's
    clips play beside its teacher's.
    """
    asc = direction_of(metric) is Direction.MINIMIZE
    ok = df[(df["status"] == "ok") & ~reference_mask(df)].sort_values(metric, ascending=asc)
    best = ok.groupby(["dataset", "instrument", "family", "method"], dropna=False, sort=False).head(1)
    rest = ok[ok["pareto"].fillna(False).astype(bool) & ~ok["uid"].isin(best["uid"])]
    return pd.concat([best, rest]).head(max_listen).sort_values(metric, ascending=asc)


def build_report(
    results_dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    formats: Sequence[str] | str = FORMATS,
    *,
    metric: str = "mss",
    objectives: str | Sequence[str] | None = None,
    family: str | Sequence[str] | None = None,
    instrument: str | Sequence[str] | None = None,
    max_rtf: float | None = None,
    rtf_metric: str = "rtf_stream_64",
    max_params: float | None = None,
    max_mb: float | None = None,
    allow_mixed_hardware: bool = False,
    budget_metric: str | None = None,
    per_decade: int = 2,
    n_clips: int = 3,
    max_listen: int = 12,
    top: int | None = None,
) -> dict[str, Path]:
    """Load, filter and report. Returns format (and ``plot:<name>``) -> written path.

    Args:
        results_dirs: results directories (see docs/CONTRACTS.md).
        out_dir: the report folder (created).
        formats: any of ``md``, ``html``, ``csv``, ``json`` (a list or a comma-separated string).
        metric: the leaderboard's ranking metric (also the quality metric of the KD comparisons when it
            measures audio quality; otherwise those use mss, or fad).
        objectives: 2 or 3 metrics for the Pareto fronts (default ``metric`` and ``rtf_metric``).
        family, instrument, max_rtf, rtf_metric, max_params, max_mb: filters (:func:`reports.tables.filter_frame`).
        allow_mixed_hardware: see :func:`reports.load_results`.
        budget_metric: what "matched budget" matches in KD vs others (default ``param_bytes``, else ``params``).
        per_decade: budget bands per factor of ten.
        n_clips: audio clips per listening candidate; max_listen: at most this many listening candidates
            (:func:`listening_candidates`).
        top: rows of the leaderboard in Markdown/HTML (all when None; CSV/JSON always hold all).
    """
    fmts = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise UserError(f"unknown report format(s) {bad or fmts}; choose from {', '.join(FORMATS)}")
    df = load_results(results_dirs, allow_mixed_hardware=allow_mixed_hardware)
    df = filter_frame(df, family=family, instrument=instrument, max_rtf=max_rtf, rtf_metric=rtf_metric,
                      max_params=max_params, max_mb=max_mb)
    if df.empty:
        raise UserError("no candidate passes the filters")
    df["converged"] = converged_flags(df)
    df["regressed"] = regressed_flags(df)
    # KD comparisons need an audio-quality metric: the ranking metric when it is one, else mss/fad
    quality = metric if metric in names_with_role(Role.QUALITY) and metric in df.columns else (quality_metric(df) or metric)
    per_run = df
    df = configurations(df, quality if quality in df.columns else None)  # one row per configuration (seeds averaged)
    leaderboard(df, metric)  # raises a UserError naming the metrics present when absent
    objs = _objectives_present(df, objectives, metric, rtf_metric)
    df["pareto"] = pareto_by_group(df, objs)
    board = leaderboard(df, metric)
    failed = failed_rows(df)
    budget = budget_metric or ("param_bytes" if "param_bytes" in df.columns else "params")
    if budget_metric and budget_metric not in df.columns:
        raise UserError(f"no candidate has budget metric {budget_metric!r}; metrics present: "
                        f"{', '.join(df.attrs.get('metrics', []))}")
    tables = verdict_tables(df, quality=quality, budget=budget, per_decade=per_decade)
    kd_o = flag_comparison(tables.kd_vs_others, df, {"uid": "converged", "vs_kd": "vs_kd_converged"})
    kd_s = flag_comparison(tables.kd_vs_scratch, df, {"uid": "kd_converged", "scratch_uid": "scratch_converged"})
    kd_sum = tables.kd_summary
    verdicts = tables.verdicts
    shown_verdicts = verdict_display(verdicts, quality, df.attrs.get("units", {}))
    used = teachers_used(verdicts)
    secondary = secondary_quality(quality)
    second = pd.DataFrame()
    if secondary is not None and secondary in per_run.columns and per_run[secondary].notna().any():
        # the same arms (chosen on validation), a second family of tests with Holm over its own pairs
        second = verdict_tables(configurations(per_run, secondary), quality=secondary, budget=budget,
                                per_decade=per_decade).verdicts
    shown_second = verdict_display(second, secondary or "", df.attrs.get("units", {})) if len(second) else second
    across = instrument_aggregate(verdicts, quality)
    front, hv = front_table(df, objs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots: dict[str, Path] = {}
    if "md" in fmts or "html" in fmts:
        plots = default_plots(df, out / "plots", rtf_metric=rtf_metric, objectives=[n for n, _ in objs])
        plots.update(_compute_plots(per_run, out / "plots"))
        written.update({f"plot:{k}": v for k, v in plots.items()})
    shown = board if top is None else board.head(top)
    obj_names = ", ".join(n for n, _ in objs)
    notes = [f"Pareto fronts over ({obj_names}) within each dataset/instrument; KD vs others matches budgets on "
             f"{budget} in log-spaced bands ({per_decade} per decade).",
             f"Sign convention: {SIGN_CONVENTION}",
             f"Tests: {METHOD_NOTE}",
             HV_NOTE]
    if has_repeats(df):
        notes.append(SEEDS_NOTE)
    if loaded := loaded_note(df):
        notes.append(loaded)
    headline = kd_headline(tables, quality)
    if "preset" in df.columns and (df["preset"] == "smoke").any():
        df.attrs["warnings"] = [SMOKE_WARNING]
    if "md" in fmts:
        md = ["# ddspbench report\n\n", *(f"> **Warning:** mixed: {html.escape(w, quote=False)}\n\n" for w in df.attrs.get("mixed", [])),
              *(f"> **{html.escape(w, quote=False)}**\n\n" for w in df.attrs.get("warnings", [])),
              f"**{html.escape(headline, quote=False)}**\n\n",
              "## Verdict per family: KD's arm against each method\n\n", VERDICT_NOTE, "\n\n",
              frame_markdown(shown_verdicts) if len(shown_verdicts) else "_No candidate with a quality value._\n",
              "\n",
              *(["### The teacher each arm started from\n\n", TEACHERS_NOTE, "\n\n", frame_markdown(used), "\n"]
                if len(used) else []),
              *([f"## Across instruments: rank of each arm by {quality}\n\n", ACROSS_NOTE, "\n\n",
                 frame_markdown(across), "\n"] if len(across) else []),
              *([f"## Verdict on {secondary} (secondary)\n\n", SECONDARY_NOTE.format(q=secondary), "\n\n",
                 frame_markdown(shown_second), "\n"] if len(shown_second) else []),
              *(f"{html.escape(n, quote=False)}\n\n" for n in notes),
              *([f"{UNCONVERGED_NOTE}\n\n"] if any(v is False for v in df["converged"]) else []),
              to_markdown(shown, failed)]
        if plots:
            md.append("\n## Pareto plots\n\n" + "".join(f"![{k}](plots/{p.name})\n" for k, p in plots.items()))
        md.append(f"\n## Pareto fronts ({obj_names})\n\n" + (frame_markdown(front) if len(front) else "_none_\n"))
        if len(hv):
            md.append("\n### Hypervolume per group and method\n\n" + frame_markdown(hv))
        md.append(f"\n## KD vs others at matched budget ({budget})\n\nQuality metric: `{quality}`.\n\n")
        if len(kd_sum):
            md.append("Per dataset/instrument and method: budget bands where KD's best was significantly better, "
                      "significantly worse, or not significantly different.\n\n" + frame_markdown(kd_sum) + "\n")
        md.append(frame_markdown(kd_o) if len(kd_o) else "_No candidate with both a budget and a quality value._\n")
        md.append("\n## KD vs scratch student of the same size\n\n")
        md.append(frame_markdown(kd_s) if len(kd_s) else "_No KD student with a scratch student of its size._\n")
        md.append("\n## Verdict table, every column\n\n" + (frame_markdown(verdicts) if len(verdicts) else "_none_\n"))
        md.append(f"\n**{html.escape(headline, quote=False)}**\n")
        written["md"] = out / "report.md"
        written["md"].write_text("".join(md), encoding="utf-8")
    full = leaderboard(df, metric, columns=metric_columns(df))  # files carry every metric (p99, miss rates...)
    if "csv" in fmts:
        written["csv"] = out / "leaderboard.csv"
        written["csv"].write_text(to_csv(neutralise_frame(full)), encoding="utf-8")
        written["csv_units"] = out / "leaderboard.units.json"
        written["csv_units"].write_text(json.dumps(csv_units(full), indent=1, sort_keys=True), encoding="utf-8")
    if "json" in fmts:
        obj = to_json_obj(full, failed)
        obj.update(headline=headline, quality=quality, notes=notes, sign_convention=SIGN_CONVENTION, tests=METHOD_NOTE, alpha=ALPHA,
                   rel_threshold=REL_THRESHOLD, objectives=[n for n, _ in objs], pareto_front=_records(front), hypervolume=_records(hv),
                   kd_vs_others=_records(kd_o), kd_summary=_records(kd_sum), kd_vs_scratch=_records(kd_s),
                   verdicts=_records(verdicts), budget_metric=budget, secondary_quality=secondary,
                   secondary_verdicts=_records(second), across_instruments=_records(across))
        written["json"] = out / "report.json"
        written["json"].write_text(json.dumps(obj, indent=1, allow_nan=False, default=str), encoding="utf-8")
    if "html" in fmts:
        listen = listening_candidates(df, metric, max_listen)
        written["html"] = write_html(out, df=df, board=shown, failed=failed, plots=plots, fronts=front, hypervolumes=hv,
                                     kd_others=kd_o, kd_summary=kd_sum, kd_scratch=kd_s, listen=listen, quality=quality,
                                     verdicts=shown_verdicts, headline=headline, verdict_note=VERDICT_NOTE,
                                     teachers=used, teachers_note=TEACHERS_NOTE,
                                     across=across, across_note=ACROSS_NOTE, secondary=secondary,
                                     secondary_verdicts=shown_second, secondary_note=SECONDARY_NOTE.format(q=secondary),
                                     n_clips=n_clips, notes=notes, objectives=[n for n, _ in objs], budget=budget,
                                     per_decade=per_decade)
    return written
