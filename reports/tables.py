"""Leaderboards: filtering, ranking, and writing them as Markdown, CSV, JSON or a rich table.

Markdown and HTML headers carry units (``mss [1]``, ``param_bytes [B]``; the terminal table names them in its caption); CSV columns are plain
names (``mss``, ``mss_ci_low``, ``prune.ratio``) with the units in a sidecar (:func:`csv_units`, written as
``leaderboard.units.json``) and in ``report.json``. A frame of configurations
(:func:`reports.seeds.configurations`) adds ``n_seeds``: metrics are then means over seeds and, for
several seeds, intervals are t-intervals over seeds. Where a record gave a confidence interval for a metric,
Markdown and the rich table show it as ``value [low, high]`` and CSV/JSON carry ``<metric>_ci_low`` /
``<metric>_ci_high``. Every row names its method's settings (``hparams``: ``ratio=0.6 finetune_steps=0``;
CSV/JSON also one value per ``<step>.<name>``). Failed candidates are never ranked; they are listed
separately with their errors.

Budget filters: ``max_rtf`` applies to ``rtf_metric`` (default ``rtf_stream_64``), ``max_params`` to
``params``, ``max_mb`` to ``param_bytes`` in megabytes of 10**6 bytes. A candidate missing the filtered
metric does not pass the filter. The teacher passes every filter (it is the reference row).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ddspbench.reports.load import metric_columns, reference_mask
from ddspbench.reports.pareto import direction_of
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics.declare import columns
from ddspbench.suite.records import Direction

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "verdict_display",
    "teachers_used",
    "candidate_label",
    "print_verdicts",
    "DEFAULT_COLUMNS",
    "ID_COLUMNS",
    "filter_frame",
    "leaderboard",
    "failed_rows",
    "header",
    "format_value",
    "to_markdown",
    "markdown_table",
    "frame_markdown",
    "display_rows",
    "to_csv",
    "csv_units",
    "human_bytes",
    "to_json_obj",
    "print_leaderboard",
]

DEFAULT_COLUMNS: tuple[str, ...] = columns("column")
"""The leaderboard's default metric columns (each declaration's ``column``)."""
ID_COLUMNS: tuple[str, ...] = ("uid", "method", "family", "size", "hparams", "instrument", "dataset")
_SHOWN_IDS: tuple[str, ...] = (*ID_COLUMNS, "n_seeds")

def _default_columns() -> tuple[str, ...]:
    """:data:`DEFAULT_COLUMNS`, read again (a plug-in metric may have declared a column since)."""
    return columns("column")


def _terminal_columns() -> tuple[str, ...]:
    """The terminal leaderboard's budget columns (each declaration's ``terminal_column``)."""
    return columns("terminal_column")


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [s.strip() for s in items if s and s.strip()]
    return items or None


def filter_frame(
    df: pd.DataFrame,
    *,
    family: str | Sequence[str] | None = None,
    instrument: str | Sequence[str] | None = None,
    max_rtf: float | None = None,
    rtf_metric: str = "rtf_stream_64",
    max_params: float | None = None,
    max_mb: float | None = None,
) -> pd.DataFrame:
    """Rows of ``df`` that pass the filters (see the module docstring). ``attrs`` are kept."""
    keep = pd.Series(True, index=df.index)
    fams, insts = _as_list(family), _as_list(instrument)
    if fams:
        keep &= df["family"].isin(fams)
    if insts:
        keep &= df["instrument"].isin(insts)
    is_teacher = reference_mask(df)
    failed = df["status"] != "ok"
    for value, col, scale in ((max_rtf, rtf_metric, 1.0), (max_params, "params", 1.0), (max_mb, "param_bytes", 1e6)):
        if value is None:
            continue
        if col not in df.columns:
            raise UserError(f"cannot filter on {col!r}: no candidate has that metric")
        within = df[col].to_numpy(dtype=float) <= value * scale
        keep &= within | is_teacher | failed  # failed rows have no budget to compare; list them anyway
    out = df[keep].copy()
    out.attrs = dict(df.attrs)
    return out


def leaderboard(df: pd.DataFrame, metric: str = "mss", columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Ok rows ranked by ``metric`` (best first; ties broken by uid), with a ``rank`` column.

    Columns: rank, the identity columns, ``metric`` then the other metric columns (``columns`` or
    the present ones of :data:`DEFAULT_COLUMNS`), with their ``_ci_low``/``_ci_high`` where present.
    """
    if metric not in df.columns:
        have = ", ".join(metric_columns(df)) or "none"
        raise UserError(f"no candidate has metric {metric!r}; metrics present: {have}")
    asc = direction_of(metric) is Direction.MINIMIZE
    ok = df[(df["status"] == "ok") & df[metric].notna()]
    ok = ok.sort_values([metric, "uid"], ascending=[asc, True])
    wanted = list(columns) if columns else [c for c in _default_columns() if c in df.columns]
    mets = [metric] + [c for c in wanted if c != metric and c in df.columns]
    cols = [c for c in (*ID_COLUMNS, "n_seeds") if c in df.columns]
    for m in mets:
        cols.append(m)
        cols += [c for c in (f"{m}_ci_low", f"{m}_ci_high") if c in df.columns]
    extra = [c for c in ("pareto", "hparam_values", "converged", "export") if c in df.columns]
    out = ok[cols + extra].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    refs = sorted(str(u) for u in ok.loc[reference_mask(ok), "uid"]) if "uid" in ok.columns else []
    out.attrs = {**df.attrs, "ranked_by": metric, "metric_order": mets, "reference_uids": refs}
    return out


def failed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The failed candidates with their errors."""
    cols = [c for c in (*ID_COLUMNS, "error") if c in df.columns]
    return df.loc[df["status"] != "ok", cols].reset_index(drop=True)


def header(metric: str, units: dict[str, str]) -> str:
    """A column header with its unit: ``"mss [1]"``."""
    unit = units.get(metric)
    return f"{metric} [{unit}]" if unit else metric


def format_value(x: Any) -> str:
    """A compact, readable number (4 significant digits; thousands separators for large counts)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        return f"{x:.4g}"
    return str(x)


def human_bytes(x: Any) -> str:
    """A byte count for people: ``512 B``, ``159 kB``, ``1.68 MB`` (powers of 10**3)."""
    if x is None or not isinstance(x, (int, float, np.integer, np.floating)) or not math.isfinite(float(x)):
        return ""
    v = float(x)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.0f} B"


def display_value(x: Any, unit: str | None) -> str:
    """A cell for people: bytes in kB/MB, other numbers by :func:`format_value`."""
    return human_bytes(x) if unit == "B" else format_value(x)


def _cell(row: pd.Series, m: str, unit: str | None = None, intervals: bool = True) -> str:
    text = display_value(row[m], unit)
    lo, hi = row.get(f"{m}_ci_low"), row.get(f"{m}_ci_high")
    if intervals and text and lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
        text += f" [{display_value(lo, unit)}, {display_value(hi, unit)}]"
    return text


def _signed(x: Any) -> str:
    return f"{x:+.3g}" if isinstance(x, (int, float, np.floating)) and math.isfinite(float(x)) else ""


def _converged_text(row: pd.Series) -> str:
    c = row.get("converged")
    text = "" if c is None or (isinstance(c, float) and math.isnan(c)) else ("yes" if c else "no")
    if row.get("regressed") is True:
        text = f"{text}, regressed".lstrip(", ")
    return text


def _si(x: float, unit: str) -> str:
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def compute_text(r: pd.Series | dict[str, Any]) -> str:
    """A row's training compute per run, including its teacher's: ``1,200 + 1,200 steps; 0.45 TFLOP`` (own + the
    teacher's steps where the arm used a teacher; FLOPs of both), empty for rows recorded before compute was kept."""
    def num(c: str) -> float:
        v = r.get(c)
        return float(v) if isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v)) else math.nan

    own, total = num("own_steps"), num("total_steps")
    if math.isnan(total):
        return ""
    steps = (f"{format_value(own)} + {format_value(total - own)} steps" if not math.isnan(own) and total > own
             else f"{format_value(total)} steps")
    flops = num("total_flops")
    return steps + (f"; {_si(flops, 'FLOP')}" if not math.isnan(flops) else "; FLOPs unknown")


def _why_inconclusive(r: pd.Series) -> str:
    """The short reason an inconclusive verdict gives in the verdict table (the full note is in the JSON/CSV)."""
    note = str(r.get("note") or "")
    runs, recs = r.get("runs_needed"), r.get("recordings_needed")
    if "one run per arm" in note:
        return "1 run per arm"
    if "not the same test clips" in note:
        return "different test clips"
    if "no per-clip" in note:
        return "no per-clip values"
    ways = [f"~{int(runs)} runs/arm" if isinstance(runs, (int, float)) and runs == runs else "",
            f"~{int(recs)} recordings" if isinstance(recs, (int, float)) and recs == recs else ""]
    ways = [w for w in ways if w]
    if ways:
        return " or ".join(ways) + " would settle it"
    return "more runs and recordings both needed" if r.get("power_note") else "after Holm"


def verdict_display(verdicts: pd.DataFrame, quality: str, units: dict[str, str] | None = None) -> pd.DataFrame:
    """The verdict table for people, ten columns at most (the full table stays in the JSON/CSV):
    family, arm (KD's marked; a method's variant such as scratch at the teacher+student budget is its own arm), size,
    params, training compute per run including the teacher's (:func:`compute_text`; left out for records from before
    it was kept), runs, quality with its 95 % interval over runs, ``KD - arm`` with its 95 % interval and the
    equivalence margin T, the verdict (with why for an inconclusive one), converged. Dataset and instrument lead as a
    column only when the table holds several."""
    if verdicts.empty:
        return pd.DataFrame()
    units = units or {}
    rows = []
    many = verdicts[["dataset", "instrument"]].astype(str).drop_duplicates().shape[0] > 1
    datasets = verdicts["dataset"].astype(str).nunique()
    kd_uids = set(verdicts.attrs.get("distillation_uids", ()))  # reports.compare.verdict_tables: KD methods' rows
    for _, r in verdicts.iterrows():
        kd = bool(r.get("kd_arm"))
        verdict = (r.get("verdict") if isinstance(r.get("vs_kd"), str) else
                   "KD's arm" if kd else "KD, not chosen (validation)" if str(r.get("uid")) in kd_uids else "")
        if verdict == "inconclusive":
            verdict = f"inconclusive ({_why_inconclusive(r)})"
        lo, hi = r.get(f"{quality}_ci_low"), r.get(f"{quality}_ci_high")
        q = format_value(r.get(quality))
        if isinstance(lo, float) and isinstance(hi, float) and math.isfinite(lo) and math.isfinite(hi):
            q += f" [{format_value(lo)}, {format_value(hi)}]"
        diff = _signed(r.get("diff"))
        if diff and _signed(r.get("ci_low")):
            diff += f" [{_signed(r.get('ci_low'))}, {_signed(r.get('ci_high'))}]"
        if diff and format_value(r.get("threshold")):
            diff += f", T {format_value(r.get('threshold'))}"
        row = {"instrument": _where(r, datasets)} if many else {}
        arm = r.get("arm") if isinstance(r.get("arm"), str) else r["method"]
        row.update({
            "family": r.get("family"),
            "arm": f"{arm} (KD)" if kd else arm,
            "size": r.get("size"),
            "params": format_value(r.get("params")),
            "compute incl. teacher": compute_text(r),
            "runs": format_value(r.get("n_seeds")),
            f"{quality} (95 % CI)": q,
            "KD - arm (95 % CI), T": diff,
            "verdict (of KD)": verdict,
            "converged": _converged_text(r),
        })
        rows.append(row)
    out = pd.DataFrame(rows)
    if not out["compute incl. teacher"].astype(bool).any():  # records from before compute was kept
        out = out.drop(columns=["compute incl. teacher"])
    return out.drop(columns=["size"]) if many else out


def _where(r: pd.Series, datasets: int) -> str:
    """A row's instrument, as ``dataset/instrument`` when the table holds several datasets (narrow tables otherwise)."""
    parts = (r.get("dataset"), r.get("instrument")) if datasets > 1 else (r.get("instrument"),)
    return "/".join(str(v) for v in parts if isinstance(v, str) and v) or str(r.get("dataset") or "")


def teachers_used(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Which teacher the arms of the verdict table started from (its weights or its outputs), one row per family and
    teacher: the teacher (variant, size, training steps, and its seed or the seeds of the teachers the runs used), the
    arms that used it, and where several instruments share the description, which ones (each instrument trains its
    own teachers on its own data). Arms that used no teacher (scratch) are left out; empty when no arm used one."""
    if verdicts.empty or "teacher" not in verdicts.columns:
        return pd.DataFrame()
    used = verdicts[verdicts["teacher"].map(lambda t: isinstance(t, str) and bool(t))]
    if used.empty:
        return pd.DataFrame()
    many = verdicts[["dataset", "instrument"]].astype(str).drop_duplicates().shape[0] > 1
    datasets = verdicts["dataset"].astype(str).nunique()
    groups: dict[tuple[str, str], dict[str, list[str]]] = {}
    for _, r in used.iterrows():
        arm = r.get("arm") if isinstance(r.get("arm"), str) else r["method"]
        g = groups.setdefault((str(r.get("family")), str(r["teacher"])), {"arms": [], "where": []})
        for key, value in (("arms", f"{arm} (KD)" if r.get("kd_arm") else arm), ("where", _where(r, datasets))):
            if value not in g[key]:
                g[key].append(value)
    rows = []
    for (family, teacher), g in groups.items():
        row = {"family": family, "teacher": teacher, "arms": ", ".join(g["arms"])}
        if many:
            row["instruments"] = ", ".join(g["where"])
        rows.append(row)
    return pd.DataFrame(rows)


def _shown_ids(board: pd.DataFrame) -> list[str]:
    return [c for c in board.columns if c == "rank" or (c in _SHOWN_IDS and board[c].notna().any()
                                                          and board[c].astype(str).str.len().gt(0).any())]


def candidate_label(row: pd.Series) -> str:
    """How a leaderboard names a row: its candidate id, or for a configuration run with several seeds
    ``"t0003 (3 seeds)"``, so a mean over seeds never reads as one trial."""
    uid = format_value(row.get("uid"))
    n = row.get("n_seeds")
    return f"{uid} ({int(n)} seeds)" if isinstance(n, (int, float, np.integer)) and n == n and n > 1 else uid


def display_rows(board: pd.DataFrame, intervals: bool = True) -> tuple[list[str], list[list[str]]]:
    """Headers (with units) and formatted cells of a leaderboard, intervals folded into their cells."""
    units = board.attrs.get("units", {})
    mets = board.attrs.get("metric_order") or [c for c in board.columns if c in units]
    ids = _shown_ids(board)
    heads = ids + [header(m, units) for m in mets]
    if "pareto" in board.columns:
        heads.append("pareto")
    flagged = "converged" in board.columns and board["converged"].notna().any()
    if flagged:
        heads.append("converged")
    exported = "export" in board.columns and board["export"].notna().any()
    if exported:
        heads.append("export")
    rows = []
    for _, r in board.iterrows():
        cells = ([candidate_label(r) if c == "uid" else format_value(r[c]) for c in ids]
                 + [_cell(r, m, units.get(m), intervals) for m in mets])
        if "pareto" in board.columns:
            cells.append("yes" if r["pareto"] else "")
        if flagged:
            cells.append(format_value(r["converged"]))
        if exported:
            cells.append(format_value(r["export"]))
        rows.append(cells)
    return heads, rows


def markdown_table(heads: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; pipes, newlines and HTML (``<``, ``>``, ``&``) in cells are escaped."""

    def esc(v: Any) -> str:
        text = html.escape(str(v), quote=False).replace("\\", "\\\\").replace("|", "\\|")
        return text.replace("\n", " ").replace("\r", " ")

    lines = ["| " + " | ".join(esc(h) for h in heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def frame_markdown(df: pd.DataFrame) -> str:
    """Any small frame as a Markdown table (numbers formatted with :func:`format_value`; all-empty columns left out)."""
    df = df.loc[:, df.notna().any(axis=0)] if len(df) else df
    return markdown_table(list(df.columns), [[format_value(v) for v in r] for r in df.itertuples(index=False)])


def to_markdown(board: pd.DataFrame, failed: pd.DataFrame | None = None, title: str = "Leaderboard") -> str:
    """A leaderboard (and failed candidates) as Markdown."""
    heads, rows = display_rows(board)
    out = [f"## {title}\n", f"Ranked by `{board.attrs.get('ranked_by', '')}` ({len(board)} candidates).\n\n"]
    out.append(markdown_table(heads, rows) if rows else "_No candidate passes the filters._\n")
    if failed is not None and len(failed):
        out.append(f"\n## Failed candidates ({len(failed)})\n\n")
        out.append(markdown_table(list(failed.columns), [[format_value(v) for v in r] for r in failed.itertuples(index=False)]))
    return "".join(out)


def _hparam_frame(board: pd.DataFrame) -> pd.DataFrame:
    """One column per hyperparameter (``prune.ratio``...) from the ``hparam_values`` dicts."""
    if "hparam_values" not in board.columns:
        return pd.DataFrame(index=board.index)
    values = [v if isinstance(v, dict) else {} for v in board["hparam_values"]]
    return pd.DataFrame(values, index=board.index).reindex(columns=sorted({k for v in values for k in v}))


def to_csv(board: pd.DataFrame) -> str:
    """A leaderboard as CSV: plain column names, raw numbers, one column per hyperparameter.

    Units are not in the headers (``df["mss"]`` works); :func:`csv_units` gives them.
    """
    flat = board.drop(columns=[c for c in ("hparam_values",) if c in board.columns])
    hp = _hparam_frame(board)
    return pd.concat([flat, hp.drop(columns=[c for c in hp.columns if c in flat.columns])], axis=1).to_csv(index=False)


def csv_units(board: pd.DataFrame) -> dict[str, str]:
    """Column -> unit of the metric columns (and their interval bounds) of :func:`to_csv`'s output."""
    units = board.attrs.get("units", {})
    out: dict[str, str] = {}
    for c in board.columns:
        base = c.removesuffix("_ci_low").removesuffix("_ci_high")
        if base in units:
            out[c] = units[base]
    return out


def json_value(v: Any) -> Any:
    """A pandas/numpy cell as a plain JSON value (non-finite floats and missing values become None)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.bool_):
        return bool(v)
    return None if v is None or v is pd.NA else v


def to_json_obj(board: pd.DataFrame, failed: pd.DataFrame | None = None) -> dict[str, Any]:
    """A JSON-able leaderboard: ranked rows with metrics, intervals and units, plus failed rows."""
    units = board.attrs.get("units", {})
    mets = board.attrs.get("metric_order", [])

    rows = []
    for _, r in board.iterrows():
        rows.append({
            **{c: json_value(r[c]) for c in board.columns if c in ("rank", "pareto", "converged") or c in _SHOWN_IDS},
            "hyperparameters": {k: json_value(v) for k, v in (r.get("hparam_values") or {}).items()},
            "metrics": {m: json_value(r[m]) for m in mets},
            "intervals": {m: [json_value(r[f"{m}_ci_low"]), json_value(r[f"{m}_ci_high"])]
                          for m in mets if f"{m}_ci_low" in board.columns and np.isfinite(r[f"{m}_ci_low"])},
        })
    fails = [] if failed is None else [{k: json_value(v) for k, v in r.items()} for r in failed.to_dict("records")]
    return {"ranked_by": board.attrs.get("ranked_by"), "units": {m: units.get(m, "") for m in mets},
            "rows": rows, "failed": fails, "mixed": list(board.attrs.get("mixed", []))}


_ABBREV: dict[str, str] = {
    "rank": "#", "uid": "candidate", "hparams": "settings", "pareto": "★",
    "rtf_stream_64": "rtf64", "rtf_stream_256": "rtf256", "rtf_stream_512": "rtf512", "rtf_offline": "rtf_off",
    "param_bytes": "bytes", "peak_mem_bytes": "peak", "mss_teacher": "mss_t",
}
# columns in the order they are given up when the terminal is too narrow (first dropped first)
_DROP_ORDER: tuple[str, ...] = ("instrument", "rtf_offline", "params", "size", "fad", "param_bytes")
_SETTINGS_WIDTH = 26  # the terminal's settings column is cut (with an ellipsis) beyond this


def _fit_columns(heads: list[str], rows: list[list[str]], width: int, keep: set[int]) -> tuple[list[int], list[int]]:
    """Columns to show so that the table fits ``width`` characters (rich's borders included), and each
    column's width: optional columns are dropped first, then the settings, candidate and method texts are
    cut (with an ellipsis, never below 8 characters); numbers are never cut."""
    widths = [max([len(_ABBREV.get(h, h))] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    widths = [min(w, _SETTINGS_WIDTH) if h == "hparams" else w for w, h in zip(widths, heads)]
    shown = list(range(len(heads)))

    def total(cols: list[int]) -> int:
        return sum(widths[i] + 3 for i in cols) + 1

    for name in _DROP_ORDER:
        if total(shown) <= width:
            break
        shown = [i for i in shown if heads[i] != name or i in keep]
    while total(shown) > width and len(shown) > len(keep):  # then the right-most optional column
        shown.remove(next(i for i in reversed(shown) if i not in keep))
    for name in ("uid", "hparams", "method", "family", "size"):
        if name in heads and heads.index(name) in shown and total(shown) > width:
            i = heads.index(name)
            widths[i] = max(8, len(_ABBREV.get(name, name)), widths[i] - (total(shown) - width))
    return shown, widths


def print_leaderboard(
    df: pd.DataFrame, console: Console | None = None, top: int = 20, metric: str = "mss"
) -> pd.DataFrame:
    """Print the ``top`` candidates by ``metric`` as a rich table (and failed ones below it).

    ``df`` is a results frame (:func:`reports.load_results`) or an already ranked leaderboard. The
    table fits the console's width: headers are abbreviated (units in a caption), intervals and then
    the least important columns are left out (dropped ones are named below the table), and no cell
    wraps. A smoke preset's rows get a caption saying their numbers are not results.
    Returns the printed leaderboard.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    if "rank" in df.columns:
        board = df
    else:  # a terminal is narrow: the ranked metric and a few budget columns
        if "n_seeds" not in df.columns:
            from ddspbench.reports.seeds import configurations

            df = configurations(df, None)  # one row per configuration, seeds averaged
        present = [c for c in _terminal_columns() if c in df.columns and c != metric]
        board = leaderboard(df, metric, columns=present[:3])
        attrs = dict(board.attrs)
        board = board.drop(columns=["dataset"])  # the terminal is narrow; files keep it
        board.attrs = attrs
    shown_board = board.head(top)
    units = board.attrs.get("units", {})
    mets = list(board.attrs.get("metric_order", []))
    width = console.width
    names: list[str] = []
    cols: list[int] = []
    col_widths: list[int] = []
    rows: list[list[str]] = []
    for intervals in (True, False):
        _, rows = display_rows(shown_board, intervals=intervals)
        names = _shown_ids(shown_board) + mets + (["pareto"] if "pareto" in board.columns else [])
        # the family stays: without it a DDX7 row reads as if it ranked among HpN rows
        keep = {i for i, n in enumerate(names) if n in ("rank", "uid", "family", "method", "hparams", metric, "pareto")}
        cols, col_widths = _fit_columns(names, rows, width, keep)
        if len(cols) == len(names) or not intervals:
            break
    dropped = [names[i] for i in range(len(names)) if i not in cols]
    title = f"Leaderboard by {board.attrs.get('ranked_by', metric)} (top {min(top, len(board))} of {len(board)})"
    table = Table(title=title, title_justify="left", caption_justify="left")
    numeric = set(mets) | {"rank"}
    for i in cols:
        table.add_column(Text(_ABBREV.get(names[i], names[i])), justify="right" if names[i] in numeric else "left",
                         overflow="ellipsis", no_wrap=True, width=col_widths[i])
    refs = set(board.attrs.get("reference_uids", ()))  # leaderboard(): the teachers' rows, by their tags
    for cells, uid in zip(rows, shown_board["uid"].astype(str)):  # Text(): candidate names are data, never rich markup
        table.add_row(*(Text(cells[i]) for i in cols), style="bold" if uid in refs else None)
    notes = []
    # byte cells carry their own unit (413 kB), so only the other units go into the caption
    unit_notes = [f"{_ABBREV.get(m, m)} [{units[m]}]" for m in mets
                  if units.get(m) and units[m] != "B" and names.index(m) in cols]
    if unit_notes:
        notes.append("units: " + ", ".join(unit_notes))
    if dropped:
        notes.append("not shown (narrow terminal): " + ", ".join(dropped))
    if "preset" in df.columns and (df["preset"] == "smoke").any():
        notes.append("smoke preset: these numbers only show that the machinery works")
    if notes:
        table.caption = Text("\n".join(notes))
    console.print(table)
    if "rank" not in df.columns:
        failed = failed_rows(df)
        if len(failed):
            ft = Table(title=f"Failed candidates ({len(failed)})", title_justify="left")
            for c in failed.columns:
                ft.add_column(Text(_ABBREV.get(c, c)), overflow="fold")
            for r in failed.itertuples(index=False):
                ft.add_row(*[Text(format_value(v)) for v in r])
            console.print(ft)
    return board


def print_verdicts(report_json: str | Path, console: Console | None = None) -> None:
    """Print a report's headline and its verdict table (:func:`verdict_display`) in the terminal, from the
    ``report.json`` :func:`reports.build_report` wrote; nothing when it holds no comparison."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    data = json.loads(Path(report_json).read_text(encoding="utf-8"))
    rows = data.get("verdicts") or []
    if not rows:
        return
    console = console or Console()
    quality = str(data.get("quality") or "mss")
    shown = verdict_display(pd.DataFrame(rows), quality, data.get("units") or {})
    # a terminal is narrow: the arm's mean without its interval, no size or params (report.md has them)
    shown[f"{quality} (95 % CI)"] = shown[f"{quality} (95 % CI)"].astype(str).str.split(" [", n=1, regex=False).str[0]
    shown = shown.rename(columns={f"{quality} (95 % CI)": quality, "verdict (of KD)": "verdict"})
    keep = [c for c in ("instrument", "family", "arm", "runs", quality, "KD - arm (95 % CI), T", "verdict")
            if c in shown.columns]
    table = Table(title="Verdict per family: KD's arm against each method", title_justify="left")
    for c in keep:
        table.add_column(Text(c), overflow="fold", no_wrap=c not in ("verdict", "arm", "KD - arm (95 % CI), T"))
    for r in shown[keep].itertuples(index=False):
        table.add_row(*(Text(format_value(v)) for v in r))
    console.print(Text(str(data.get("headline", ""))))
    console.print(table)
