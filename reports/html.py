"""The HTML listening report: one self-contained folder (``index.html`` + PNG + WAV, relative links).

Sections: a provenance line (and a warning when mixed hardware was allowed), the leaderboard, the
Pareto plots, the Pareto front table with hypervolumes, KD versus the other methods at matched budget,
the KD-worse-than-scratch flags, failed candidates, and a listening section: for each Pareto
candidate a few test clips with audio players and spectrograms for the target, the teacher and the
candidate side by side. WAV files are copied into the folder; nothing is fetched from elsewhere (no
CDN, no script). Every piece of text that comes from records (candidate ids, method parameters,
instruments, errors...) goes through :func:`html.escape`; file names inside the folder are slugs.
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import soundfile as sf

from reports.plots import spectrogram_png
from reports.tables import ID_COLUMNS, format_value, header

__all__ = ["slug", "write_html", "listening_items"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1400px;color:#222;
padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.teacher td{font-weight:600;background:#fafaf0}tr.flag td{background:#fde8e8}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em}.muted{color:#666;font-size:12px}
.plots img{max-width:49%;border:1px solid #eee}
.clip td{text-align:center}.clip audio{width:260px;display:block;margin:0 auto 4px}
.clip img{width:260px;height:120px;display:block;margin:0 auto}
.ci{display:block;color:#777;font-size:10px;white-space:nowrap}
.scroll{max-height:520px;overflow:auto;border:1px solid #eee}thead th{position:sticky;top:0}
nav a{margin-right:1em}
code{background:#f5f5f5;padding:0 3px;word-break:break-all}
"""
_CSP = ("default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'")


def slug(text: str, max_len: int = 40) -> str:
    """A safe file name for any text: alphanumerics, ``-`` and ``_``, plus a short hash for uniqueness."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_")[:max_len] or "x"
    return f"{clean}-{hashlib.sha1(str(text).encode()).hexdigest()[:8]}"


def _e(value: Any) -> str:
    return html.escape(format_value(value) if not isinstance(value, str) else value, quote=True)


def _href(path: Path, root: Path) -> str:
    return html.escape(quote(path.relative_to(root).as_posix()), quote=True)


def _table(heads: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] | None = None,
           numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in heads), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{_e(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if j in numeric else f"<td>{_e(c)}</td>" for j, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _frame_table(df: pd.DataFrame, flag_col: str | None = None, drop: Sequence[str] = ()) -> str:
    if df is None or df.empty:
        return '<p class="muted">Nothing to show.</p>'
    df = df.drop(columns=[c for c in drop if c in df.columns])
    df = df.loc[:, df.notna().any(axis=0)]  # e.g. instrument when no record names one
    cols = list(df.columns)
    rows = [[format_value(v) for v in r] for r in df.itertuples(index=False)]
    classes = ["flag" if flag_col and bool(v) else "" for v in df[flag_col]] if flag_col else None
    num = {i for i, c in enumerate(cols) if pd.api.types.is_float_dtype(df[c])}
    return '<div class="scroll">' + _table(cols, rows, classes, num) + "</div>"


def _leaderboard_html(board: pd.DataFrame) -> str:
    """The ranked table: units in headers, intervals on a second line of their cell, teacher rows bold."""
    if board.empty:
        return '<p class="muted">No candidate passes the filters.</p>'
    units = board.attrs.get("units", {})
    mets = list(board.attrs.get("metric_order") or [])
    ids = [c for c in board.columns if c == "rank" or (c in ID_COLUMNS and board[c].notna().any())]
    heads = ids + [header(m, units) for m in mets] + (["Pareto"] if "pareto" in board.columns else [])
    out = ['<div class="scroll"><table><thead><tr>', *(f"<th>{_e(h)}</th>" for h in heads), "</tr></thead><tbody>"]
    for _, r in board.iterrows():
        cls = "teacher" if r.get("method") == "teacher" else ""
        cells = [f'<td class="num">{_e(r[c])}</td>' if c == "rank" else f"<td>{_e(r[c])}</td>" for c in ids]
        for m in mets:
            lo, hi = r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high")
            ci = (f'<span class="ci">[{_e(lo)}, {_e(hi)}]</span>'
                  if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi) else "")
            cells.append(f'<td class="num">{_e(r[m])}{ci}</td>')
        if "pareto" in board.columns:
            cells.append(f"<td>{'&#9733;' if r['pareto'] else ''}</td>")
        out.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _wav_files(folder: Any, n: int) -> list[Path]:
    if not isinstance(folder, str) or not Path(folder).is_dir():
        return []
    return sorted(Path(folder).glob("*.wav"))[:n]


def _teacher_for(df: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    teachers = df[(df["method"] == "teacher") & (df["status"] == "ok")]
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
        teacher = _teacher_for(df, row) if row["method"] != "teacher" else None
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


class _Assets:
    """Copies wav files into the report folder (once each) and renders their spectrograms."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[Path, tuple[Path, Path | None]] = {}

    def add(self, src: Path, group: str) -> tuple[Path, Path | None]:
        src = src.resolve()
        if src in self.done:
            return self.done[src]
        folder = self.root / "audio" / slug(group)
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / f"{slug(src.stem)}.wav"
        shutil.copyfile(src, dst)
        spec: Path | None
        try:
            audio, sr = sf.read(str(src), dtype="float32", always_2d=False)
            spec = spectrogram_png(np.asarray(audio), sr, dst.with_suffix(".png"))
        except (RuntimeError, ValueError, sf.LibsndfileError):
            spec = None
        self.done[src] = (dst, spec)
        return dst, spec


def _player(assets: _Assets, src: Path | None, group: str, label: str) -> str:
    if src is None:
        return f'<td class="muted">no {_e(label)} audio</td>'
    wav, spec = assets.add(src, group)
    img = f'<img src="{_href(spec, assets.root)}" alt="{_e(label)} spectrogram">' if spec else ""
    return (f'<td><audio controls preload="metadata" title="{_e(label)}" src="{_href(wav, assets.root)}">'
            f"</audio>{img}</td>")


def _listening(items: list[dict[str, Any]], root: Path, quality: str | None) -> str:
    if not items:
        return '<p class="muted">No rendered audio found for the Pareto candidates.</p>'
    assets = _Assets(root)
    out = []
    for item in items:
        row, teacher = item["row"], item["teacher"]
        metrics = f"{quality} = {format_value(row.get(quality))}" if quality else ""
        instrument = row.get("instrument")
        inst = f" · instrument {_e(instrument)}" if isinstance(instrument, str) and instrument else ""
        out.append('<div class="candidate">')
        out.append(f"<h3>{_e(row['uid'])}</h3>")
        out.append(
            f'<p class="muted">method <b>{_e(row["method"])}</b> · family {_e(row["family"])} · size '
            f'{_e(row["size"])}{inst} · dataset {_e(row["dataset"])} · {_e(metrics)}'
            f"{' · teacher ' + _e(teacher['uid']) if teacher is not None else ''}</p>"
            f"<details><summary class=\"muted\">method parameters</summary>"
            f"<code>{_e(row.get('method_params') or '{}')}</code></details>"
        )
        out.append('<table class="clip"><thead><tr><th>clip</th><th>target</th><th>teacher</th>'
                   "<th>candidate</th></tr></thead><tbody>")
        for c in item["clips"]:
            out.append(
                f"<tr><td>{_e(c['clip'])}</td>"
                + _player(assets, c["target"], f"target-{row['target_audio_dir']}", "target")
                + _player(assets, c["teacher"], f"teacher-{teacher['uid'] if teacher is not None else ''}", "teacher")
                + _player(assets, c["candidate"], f"cand-{row['uid']}", "candidate")
                + "</tr>"
            )
        out.append("</tbody></table></div>")
    return "".join(out)


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
) -> Path:
    """Write ``index.html`` (and its audio/spectrogram files) into ``out_dir``; return its path."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    prov = df.drop_duplicates(subset=[c for c in ("machine", "threads", "device") if c in df.columns])
    prov_txt = "; ".join(
        f"machine {format_value(r.get('machine'))} ({format_value(r.get('cpu_model'))}), "
        f"{format_value(r.get('threads'))} thread(s), {format_value(r.get('device'))}, "
        f"torch {format_value(r.get('torch_version'))}"
        for _, r in prov.iterrows()
    )
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{len(df)} candidates ({int((df["status"] == "ok").sum())} ok, {len(failed)} failed) '
        f"from {_e(', '.join(df.attrs.get('results_dirs', [])))}. Measured on: {_e(prov_txt)}.</p>",
    ]
    for w in df.attrs.get("mixed", []):
        parts.append(f'<p class="warn">Mixed hardware or metric definitions (allowed by the user): {_e(w)}</p>')
    for w in df.attrs.get("warnings", []):
        parts.append(f'<p class="warn"><strong>{_e(w)}</strong></p>')
    for n in notes:
        parts.append(f'<p class="muted">{_e(n)}</p>')
    parts.append('<nav><a href="#leaderboard">Leaderboard</a><a href="#plots">Pareto plots</a>'
                 '<a href="#fronts">Pareto fronts</a><a href="#kd">KD vs others</a><a href="#scratch">KD vs scratch</a>'
                 '<a href="#failed">Failed</a><a href="#listen">Listening</a></nav>')
    parts.append(f"<h2 id=\"leaderboard\">Leaderboard</h2><p class=\"muted\">Ranked by {_e(board.attrs.get('ranked_by', ''))}; "
                 "intervals are 95% bootstrap intervals over test clips where the record has them.</p>")
    parts.append(_leaderboard_html(board))
    parts.append('<h2 id="plots">Pareto plots</h2><div class="plots">')
    for name, p in plots.items():
        parts.append(f'<img src="{_href(p, root)}" alt="{_e(name)}">')
    parts.append("</div>")
    parts.append('<h2 id="fronts">Pareto fronts</h2>' + _frame_table(fronts))
    if hypervolumes is not None and len(hypervolumes):
        parts.append("<h3>Hypervolume per group and method</h3><p class=\"muted\">Exact volume dominated by each "
                     "method's candidates up to a reference point just beyond the group's worst values "
                     "(larger is better; comparable within a group only).</p>" + _frame_table(hypervolumes))
    parts.append("<h2 id=\"kd\">KD vs others at matched budget</h2><p class=\"muted\">Best candidate of each method per "
                 "budget band; <code>vs_kd_diff</code> &gt; 0 means the best KD candidate of the band is better "
                 "(bootstrap over test clips).</p>"
                 + (_frame_table(kd_summary) if kd_summary is not None and len(kd_summary) else "")
                 + _frame_table(kd_others, drop=("band", "vs_kd")))
    parts.append("<h2 id=\"scratch\">KD vs scratch student of the same size</h2><p class=\"muted\">Highlighted rows: KD made "
                 "the student worse than training it from scratch.</p>" + _frame_table(kd_scratch, "kd_worse"))
    parts.append(f"<h2 id=\"failed\">Failed candidates ({len(failed)})</h2>" + _frame_table(failed))
    parts.append('<h2 id="listen">Listening: Pareto candidates</h2><p class="muted">Spectrograms: 0 to 8 kHz '
                 "bottom to top, 80 dB range, time left to right.</p>")
    parts.append(_listening(listening_items(df, listen, n_clips), root, quality))
    parts.append("</body></html>\n")
    index = root / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
