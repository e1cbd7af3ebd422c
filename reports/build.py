"""``build_report``: results directories -> Markdown, CSV, JSON and HTML reports in one folder.

Written files (those of the requested formats): ``report.md`` (leaderboard, Pareto fronts, KD vs
others, KD vs scratch, failed candidates; plots linked), ``leaderboard.csv``, ``report.json``,
``index.html`` (with ``audio/`` and ``plots/``). Plots (``plots/*.png``) are made for ``md`` and
``html``.

Pareto fronts are computed within each (dataset, instrument) group, because quality numbers of
different test sets are not comparable; each group's hypervolume uses the reference point
:func:`reports.pareto.reference_point` of that group's ok candidates (teacher included), and every
method's own front is scored against the same point, so hypervolumes compare methods within a group.
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

from reports.compare import kd_summary, kd_vs_others, kd_vs_scratch
from reports.convergence import UNCONVERGED_NOTE, converged_flags, flag_comparison
from reports.html import write_html
from reports.load import load_results
from reports.pareto import (
    direction_of,
    hypervolume,
    is_pareto_front,
    parse_objectives,
    reference_point,
    to_minimise,
)
from reports.plots import default_plots, memory_metric, quality_metric
from reports.tables import (
    failed_rows,
    filter_frame,
    frame_markdown,
    json_value,
    leaderboard,
    to_csv,
    to_json_obj,
    to_markdown,
)
from suite.errors import UserError
from suite.records import Direction

__all__ = ["FORMATS", "build_report", "pareto_by_group", "front_table"]

FORMATS: tuple[str, ...] = ("md", "html", "csv", "json")
_GROUP = ["dataset", "instrument"]
_QUALITY = ("mss", "mss_teacher", "fad", "fad_inf", "kad")


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


def front_table(df: pd.DataFrame, objectives: Sequence[tuple[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(front rows, hypervolume per group and method) for the frame's ``pareto`` column."""
    names, dirs = [n for n, _ in objectives], [d for _, d in objectives]
    front = df[df["pareto"]][[*_GROUP, "uid", "method", "family", "size", *names]]
    front = front.sort_values([*_GROUP, names[0]], na_position="first").reset_index(drop=True)
    hv_rows: list[dict[str, Any]] = []
    for key, grp in df[df["status"] == "ok"].groupby(_GROUP, dropna=False):
        vals = to_minimise(grp[names].to_numpy(dtype=float), dirs)
        if not np.isfinite(vals).all(axis=1).any():
            continue
        ref = reference_point(vals)
        entry: dict[str, Any] = {"dataset": key[0], "instrument": key[1], "method": "(all)",
                                 "hypervolume": hypervolume(vals, ref), "front_size": int(is_pareto_front(vals).sum())}
        hv_rows.append(entry)
        for method, mg in grp.groupby("method"):
            mv = to_minimise(mg[names].to_numpy(dtype=float), dirs)
            hv_rows.append({"dataset": key[0], "instrument": key[1], "method": method,
                            "hypervolume": hypervolume(mv, ref), "front_size": int(is_pareto_front(mv).sum())})
    return front, pd.DataFrame(hv_rows)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in r.items()} for r in df.to_dict("records")]


SMOKE_WARNING = (
    "SMOKE PRESET: tiny data, tens of training steps and reduced-width teachers. These numbers only show that "
    "the machinery works end to end; they say nothing about the quality of any method."
)


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
    max_listen: int = 8,
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
        n_clips: audio clips per listening candidate; max_listen: at most this many listening candidates.
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
    # KD comparisons need an audio-quality metric: the ranking metric when it is one, else mss/fad
    quality = metric if metric in _QUALITY and metric in df.columns else (quality_metric(df) or metric)
    leaderboard(df, metric)  # raises a UserError naming the metrics present when absent
    objs = _objectives_present(df, objectives, metric, rtf_metric)
    df["pareto"] = pareto_by_group(df, objs)
    board = leaderboard(df, metric)
    failed = failed_rows(df)
    budget = budget_metric or ("param_bytes" if "param_bytes" in df.columns else "params")
    if budget_metric and budget_metric not in df.columns:
        raise UserError(f"no candidate has budget metric {budget_metric!r}; metrics present: "
                        f"{', '.join(df.attrs.get('metrics', []))}")
    kd_o = kd_vs_others(df, quality=quality, budget=budget, per_decade=per_decade)
    kd_s = kd_vs_scratch(df, quality=quality)
    kd_o = flag_comparison(kd_o, df, {"uid": "converged", "vs_kd": "vs_kd_converged"})
    kd_s = flag_comparison(kd_s, df, {"uid": "kd_converged", "scratch_uid": "scratch_converged"})
    kd_sum = kd_summary(kd_o)
    front, hv = front_table(df, objs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots: dict[str, Path] = {}
    if "md" in fmts or "html" in fmts:
        plots = default_plots(df, out / "plots", rtf_metric=rtf_metric)
        written.update({f"plot:{k}": v for k, v in plots.items()})
    shown = board if top is None else board.head(top)
    obj_names = ", ".join(n for n, _ in objs)
    notes = [f"Pareto fronts over ({obj_names}) within each dataset/instrument; KD vs others matches budgets on "
             f"{budget} in log-spaced bands ({per_decade} per decade)."]
    if "preset" in df.columns and (df["preset"] == "smoke").any():
        df.attrs["warnings"] = [SMOKE_WARNING]
    if "md" in fmts:
        md = ["# ddspbench report\n\n", *(f"> **Warning:** mixed: {html.escape(w, quote=False)}\n\n" for w in df.attrs.get("mixed", [])),
              *(f"> **{html.escape(w, quote=False)}**\n\n" for w in df.attrs.get("warnings", [])),
              f"{notes[0]}\n\n", *([f"{UNCONVERGED_NOTE}\n\n"] if any(v is False for v in df["converged"]) else []),
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
        worse = kd_s[kd_s["kd_worse"]] if len(kd_s) else kd_s
        if len(worse):
            where = ["/".join(str(v) for v in (r.dataset, r.instrument, r.family, r.size) if isinstance(v, str) and v)
                     + f" ({r.method})" for r in worse.itertuples()]
            md.append("\n**KD made the student worse than scratch in:** " + html.escape("; ".join(where), quote=False) + "\n")
        written["md"] = out / "report.md"
        written["md"].write_text("".join(md), encoding="utf-8")
    if "csv" in fmts:
        written["csv"] = out / "leaderboard.csv"
        written["csv"].write_text(to_csv(board), encoding="utf-8")
    if "json" in fmts:
        obj = to_json_obj(board, failed)
        obj.update(objectives=[n for n, _ in objs], pareto_front=_records(front), hypervolume=_records(hv),
                   kd_vs_others=_records(kd_o), kd_summary=_records(kd_sum), kd_vs_scratch=_records(kd_s), budget_metric=budget)
        written["json"] = out / "report.json"
        written["json"].write_text(json.dumps(obj, indent=1, allow_nan=False, default=str), encoding="utf-8")
    if "html" in fmts:
        asc = direction_of(metric) is Direction.MINIMIZE
        listen = df[df["pareto"] & (df["method"] != "teacher")].sort_values(metric, ascending=asc).head(max_listen)
        written["html"] = write_html(out, df=df, board=shown, failed=failed, plots=plots, fronts=front, hypervolumes=hv,
                                     kd_others=kd_o, kd_summary=kd_sum, kd_scratch=kd_s, listen=listen, quality=quality,
                                     n_clips=n_clips, notes=notes)
    return written
