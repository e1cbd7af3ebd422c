"""The HTML listening report: one self-contained folder (``index.html`` + PNG + WAV, relative links).

Sections: a provenance line (and a warning when mixed hardware was allowed), "how to read this
report" (what a row, a size name, MSS, FAD with the embedding the records actually used, RTF,
intervals, the Pareto star and budget bands mean), the leaderboard (key columns first: rank, Pareto
star, candidate, family, method, settings, the ranked metric), the Pareto plots, the Pareto front table
with hypervolumes, KD versus the other methods at matched budget, the KD-worse-than-scratch flags,
failed candidates, and a listening section: for each method's best and each Pareto candidate a few test clips with audio
players and spectrograms for the target, the teacher and the candidate side by side.

The page is rendered from ``reports/templates/index.html.j2`` by jinja2 with autoescaping, so every
value from records (candidate ids, method parameters, instruments, errors...) is escaped; only the
shipped stylesheet is inserted as is. WAV files are copied into the folder; nothing is fetched from
elsewhere (no CDN, no script; a Content-Security-Policy forbids both). File names inside the folder
are slugs. Tables from other modules (Pareto fronts, hypervolumes, KD comparisons) are rendered
generically, column by column, whatever fields they carry.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import soundfile as sf

from ddspbench.reports.load import is_reference, reference_mask
from ddspbench.reports.plots import spectrogram_png
from ddspbench.reports.tables import ID_COLUMNS, candidate_label, display_value, format_value, header

__all__ = ["slug", "write_html", "listening_items", "TEMPLATES"]

TEMPLATES = Path(__file__).with_name("templates")
_CSP = ("default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'")


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=False, lstrip_blocks=False)


def slug(text: str, max_len: int = 40) -> str:
    """A safe file name for any text: alphanumerics, ``-`` and ``_``, plus a short hash for uniqueness."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_")[:max_len] or "x"
    return f"{clean}-{hashlib.sha1(str(text).encode()).hexdigest()[:8]}"


def _href(path: Path, root: Path) -> str:
    return quote(path.relative_to(root).as_posix())


def _frame_table(df: pd.DataFrame | None, flag_col: str | None = None, drop: Sequence[str] = (),
                 units: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Any frame as template data, column by column (all-empty columns left out; bytes in kB/MB)."""
    if df is None or df.empty:
        return None
    units = units or {}
    df = df.drop(columns=[c for c in drop if c in df.columns])
    df = df.loc[:, df.notna().any(axis=0)]  # e.g. instrument when no record names one
    cols = [str(c) for c in df.columns]
    num = [pd.api.types.is_float_dtype(df[c]) or pd.api.types.is_integer_dtype(df[c]) for c in df.columns]
    flags = [bool(v) for v in df[flag_col]] if flag_col and flag_col in df.columns else [False] * len(df)
    rows = []
    for flag, r in zip(flags, df.itertuples(index=False)):
        cells = [{"text": display_value(v, units.get(c)) if isinstance(v, (int, float, np.number)) else format_value(v),
                  "num": n} for c, v, n in zip(cols, r, num)]
        rows.append({"cls": "flag" if flag else "", "cells": cells})
    return {"cols": cols, "rows": rows}


def _cell(text: str, cls: str, ci: str = "", parts: list[str] | None = None) -> dict[str, Any]:
    return {"text": text, "cls": cls, "ci": ci, "parts": parts or []}


def _leaderboard(board: pd.DataFrame) -> dict[str, Any]:
    """The ranked table as template data: key columns first, units in headers, intervals under values."""
    units = board.attrs.get("units", {})
    mets = list(board.attrs.get("metric_order") or [])
    ranked = board.attrs.get("ranked_by") or (mets[0] if mets else "")
    refs = set(board.attrs.get("reference_uids", ()))  # reports.tables.leaderboard: the teachers, by their tags
    present = [c for c in ID_COLUMNS if c in board.columns and board[c].notna().any()
               and board[c].astype(str).str.len().gt(0).any()]
    lead = [c for c in ("uid", "family", "method", "hparams") if c in present]
    tail_ids = [c for c in present if c not in lead]
    order: list[tuple[str, str]] = [("rank", "rank")]
    if "pareto" in board.columns:
        order.append(("pareto", "star"))
    order += [(c, "id") for c in lead]
    order += [(m, "metric") for m in mets if m == ranked]
    order += [(c, "id") for c in tail_ids if c == "size"]
    order += [(m, "metric") for m in mets if m != ranked]
    order += [(c, "id") for c in tail_ids if c != "size"]
    if "export" in board.columns and board["export"].notna().any():  # artifacts `ddspbench export` wrote
        order.append(("export", "id"))
    labels = {"uid": "candidate", "hparams": "settings", "rank": "#"}
    heads = []
    for col, kind in order:
        if kind == "star":
            heads.append({"label": "★", "cls": "star", "title": "on the Pareto front"})
        elif kind == "metric":
            heads.append({"label": header(col, units), "cls": "", "title": ""})
        else:
            heads.append({"label": labels.get(col, col), "cls": "", "title": ""})
    rows = []
    for _, r in board.iterrows():
        cells: list[dict[str, Any]] = []
        for col, kind in order:
            if kind == "star":
                cells.append(_cell("★" if r["pareto"] else "", "star"))
            elif kind == "metric":
                unit = units.get(col)
                lo, hi = r.get(f"{col}_ci_low"), r.get(f"{col}_ci_high")
                ci = (f"[{display_value(lo, unit)}, {display_value(hi, unit)}]"
                      if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi) else "")
                cells.append(_cell(display_value(r[col], unit), "num", ci=ci))
            elif col == "hparams":
                text = format_value(r[col])
                cells.append(_cell(text, "settings", parts=text.split()))
            else:
                text = candidate_label(r) if col == "uid" else format_value(r[col])
                cells.append(_cell(text, "num" if col == "rank" else "id"))
        rows.append({"cls": "teacher" if str(r.get("uid")) in refs else "", "cells": cells})
    return {"heads": heads, "rows": rows, "ranked_by": ranked,
            "units_note": "byte counts in kB/MB of 1000" if any(units.get(m) == "B" for m in mets) else ""}


def _defs(df: pd.DataFrame, metric: str) -> list[str]:
    """The distinct definitions the ok rows recorded for ``metric`` (e.g. the FAD embedding ``logmel/1``)."""
    out: set[str] = set()
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    for defs in ok.get("metric_defs", pd.Series(dtype=object)):
        d = defs.get(metric) if isinstance(defs, dict) else None
        if d:
            out.add(str(d))
    return sorted(out)


def _howto(df: pd.DataFrame, board: pd.DataFrame, objectives: Sequence[str], budget: str | None,
           per_decade: int | None) -> dict[str, Any]:
    fad = _defs(df, "fad")
    examples: list[str] = []
    if "hparams" in board.columns:
        refs = set(board.attrs.get("reference_uids", ()))  # the teachers, by their tags
        for method, grp in board.groupby("method", sort=True):
            text = next((t for t in grp["hparams"] if isinstance(t, str) and t), "")
            if text and not refs & set(grp["uid"].astype(str)):
                examples.append(f"{method}: {text}")
    note = ""
    if fad and not any(d.startswith("aisfx") for d in fad):
        note = "the command-line default embedding is aisfx, so these values do not compare with aisfx FADs"
    return {"fad_embeddings": fad, "fad_note": note, "mss_defs": _defs(df, "mss"), "objectives": list(objectives),
            "budget": budget, "per_decade": per_decade, "settings_examples": examples[:4]}


def _wav_files(folder: Any, n: int) -> list[Path]:
    if not isinstance(folder, str) or not Path(folder).is_dir():
        return []
    return sorted(Path(folder).glob("*.wav"))[:n]


def _teacher_for(df: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    teachers = df[reference_mask(df) & (df["status"] == "ok")]
    for keys in (("results_dir", "dataset", "family"), ("results_dir", "dataset"), ("dataset",)):
        match = teachers
        for k in keys:
            match = match[match[k] == row[k]]
        if len(match):
            return match.iloc[0]
    return None


def listening_items(df: pd.DataFrame, candidates: pd.DataFrame, n_clips: int) -> list[dict[str, Any]]:
    """For each candidate row with rendered audio: its clips, each with candidate/target/teacher wav paths."""
    items = []
    for _, row in candidates.iterrows():
        files = _wav_files(row.get("audio_dir"), n_clips)
        if not files:
            continue
        teacher = _teacher_for(df, row) if not is_reference(row.get("tags")) else None
        clips = []
        for f in files:
            tgt = Path(str(row["target_audio_dir"])) / f.name if isinstance(row.get("target_audio_dir"), str) else None
            tea = Path(str(teacher["audio_dir"])) / f.name if teacher is not None and isinstance(
                teacher.get("audio_dir"), str) else None
            clips.append({"clip": f.stem, "candidate": f,
                          "target": tgt if tgt is not None and tgt.is_file() else None,
                          "teacher": tea if tea is not None and tea.is_file() else None})
        items.append({"row": row, "teacher": teacher, "clips": clips})
    return items


PLAYBACK_PEAK = 10 ** (-1 / 20)
"""Copies for the page never exceed -1 dBFS: a candidate that rendered above full scale is attenuated for
playback (and says by how much), so an untrained model's loud noise cannot hurt a listener."""


class _Assets:
    """Copies wav files into the report folder (once each), attenuated where they exceed full scale, and
    renders their spectrograms."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[Path, dict[str, Any]] = {}
        shutil.rmtree(root / "audio", ignore_errors=True)  # no stale players from an earlier front

    def add(self, src: Path, group: str) -> dict[str, Any]:
        src = src.resolve()
        if src in self.done:
            return self.done[src]
        folder = self.root / "audio" / slug(group)
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / f"{slug(src.stem)}.wav"
        info: dict[str, Any] = {"wav": dst, "spec": None, "peak_dbfs": None, "gain_db": 0.0}
        try:
            audio, sr = sf.read(str(src), dtype="float32", always_2d=False)
        except (RuntimeError, ValueError, sf.LibsndfileError):
            shutil.copyfile(src, dst)
        else:
            audio = np.nan_to_num(np.asarray(audio, dtype=np.float32))
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            info["peak_dbfs"] = 20 * np.log10(peak) if peak > 0 else None
            if peak > 1.0:
                info["gain_db"] = 20 * np.log10(PLAYBACK_PEAK / peak)
                sf.write(str(dst), audio * (PLAYBACK_PEAK / peak), sr, subtype="FLOAT")
            else:
                shutil.copyfile(src, dst)
            try:
                info["spec"] = spectrogram_png(audio, sr, dst.with_suffix(".png"))
            except (RuntimeError, ValueError):
                info["spec"] = None
        self.done[src] = info
        return info


def _player(assets: _Assets, src: Path | None, group: str, label: str) -> dict[str, Any]:
    if src is None:
        return {"label": label, "wav": None, "spec": None, "level": ""}
    info = assets.add(src, group)
    level = ""
    if info["gain_db"] < 0:
        level = (f"peak {info['peak_dbfs']:+.1f} dBFS (above full scale): played {-info['gain_db']:.1f} dB quieter "
                 "than rendered")
    return {"label": label, "wav": _href(info["wav"], assets.root),
            "spec": _href(info["spec"], assets.root) if info["spec"] else None, "level": level}


def _group(prefix: str, name: str) -> str:
    """A short folder name for a group of players (never a whole path: a hash of long names)."""
    if len(name) > 24 or "/" in name or "\\" in name:
        name = hashlib.sha1(name.encode()).hexdigest()[:10]
    return name if name.startswith(prefix) else f"{prefix}-{name}"


def _listening(items: list[dict[str, Any]], root: Path, quality: str | None) -> list[dict[str, Any]]:
    assets = _Assets(root)
    out = []
    for item in items:
        row, teacher = item["row"], item["teacher"]
        instrument = row.get("instrument")
        clips = [{"clip": c["clip"],
                  "target": _player(assets, c["target"], _group("target", str(row['target_audio_dir'])), "target"),
                  "teacher": _player(assets, c["teacher"], _group("teacher", str(teacher['uid']) if teacher is not None else ""),
                                     "teacher"),
                  "candidate": _player(assets, c["candidate"], _group("cand", str(row['uid'])), "candidate")}
                 for c in item["clips"]]
        out.append({
            "uid": str(row["uid"]), "method": str(row["method"]), "family": str(row["family"]),
            "size": format_value(row["size"]), "dataset": format_value(row["dataset"]),
            "instrument": instrument if isinstance(instrument, str) and instrument else "",
            "metric": f"{quality} = {format_value(row.get(quality))}" if quality else "",
            "teacher": str(teacher["uid"]) if teacher is not None else "",
            "hparams": format_value(row.get("hparams") or ""),
            "method_params": str(row.get("method_params") or "{}"), "clips": clips,
        })
    return out


def write_html(
    out_dir: str | Path,
    *,
    df: pd.DataFrame,
    board: pd.DataFrame,
    failed: pd.DataFrame,
    plots: dict[str, Path],
    fronts: pd.DataFrame,
    hypervolumes: pd.DataFrame | None = None,
    kd_others: pd.DataFrame,
    kd_summary: pd.DataFrame | None = None,
    kd_scratch: pd.DataFrame,
    listen: pd.DataFrame,
    quality: str | None,
    n_clips: int = 3,
    title: str = "ddspbench report",
    notes: Sequence[str] = (),
    objectives: Sequence[str] = (),
    budget: str | None = None,
    per_decade: int | None = None,
    verdicts: pd.DataFrame | None = None,
    headline: str = "",
    verdict_note: str = "",
    teachers: pd.DataFrame | None = None,
    teachers_note: str = "",
    across: pd.DataFrame | None = None,
    across_note: str = "",
    secondary: str | None = None,
    secondary_verdicts: pd.DataFrame | None = None,
    secondary_note: str = "",
) -> Path:
    """Write ``index.html`` (and its audio/spectrogram files) into ``out_dir``; return its path."""
    from markupsafe import Markup

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    prov = df.drop_duplicates(subset=[c for c in ("machine", "threads", "device") if c in df.columns])
    prov_txt = "; ".join(
        f"machine {format_value(r.get('machine'))} ({format_value(r.get('cpu_model'))}), "
        f"{format_value(r.get('threads'))} thread(s), {format_value(r.get('device'))}, "
        f"torch {format_value(r.get('torch_version'))}"
        for _, r in prov.iterrows()
    )
    units = dict(df.attrs.get("units", {}))
    page = _environment().get_template("index.html.j2").render(
        title=title, csp=_CSP, css=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        summary={"n": len(df), "ok": int((df["status"] == "ok").sum()), "failed": len(failed),
                 "dirs": ", ".join(df.attrs.get("results_dirs", [])), "provenance": prov_txt},
        mixed=list(df.attrs.get("mixed", [])), warnings=list(df.attrs.get("warnings", [])), notes=list(notes),
        headline=headline, verdicts=_frame_table(verdicts), verdict_note=verdict_note,
        teachers=_frame_table(teachers), teachers_note=teachers_note,
        across=_frame_table(across), across_note=across_note, secondary=secondary or "",
        secondary_verdicts=_frame_table(secondary_verdicts), secondary_note=secondary_note,
        howto=_howto(df, board, objectives or [], budget, per_decade),
        board=_leaderboard(board),
        plots=[{"name": name, "href": _href(p, root)} for name, p in plots.items()],
        fronts=_frame_table(fronts, units=units), hypervolumes=_frame_table(hypervolumes, units=units),
        kd_summary=_frame_table(kd_summary, units=units),
        kd_others=_frame_table(kd_others, drop=("band", "vs_kd"), units=units),
        kd_scratch=_frame_table(kd_scratch, "kd_worse", units=units), failed=_frame_table(failed, units=units),
        listen=_listening(listening_items(df, listen, n_clips), root, quality),
    )
    index = root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
