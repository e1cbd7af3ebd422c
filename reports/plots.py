"""Pareto plots and spectrograms (matplotlib, Agg backend, PNG files).

Each method keeps one marker and one colour across every plot of a report (assigned in sorted
method order), the teacher is a large black star, failed candidates are not drawn, and the Pareto
front of the plotted pair of objectives is drawn as a staircase through its points. Axes spanning
more than a factor of 20 are drawn on a log scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reports.pareto import direction_of, is_pareto_front, to_minimise
from suite.records import Direction

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["method_styles", "pareto_plot", "spectrogram_png", "quality_metric", "memory_metric", "default_plots"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def method_styles(methods: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Method -> (marker, colour), stable for a given set of methods; the teacher is a black star."""
    styles: dict[str, tuple[str, str]] = {}
    others = sorted({m for m in methods if m != "teacher"})
    for i, m in enumerate(others):
        styles[m] = (_MARKERS[i % (len(_MARKERS) - 1)], _COLOURS[i % len(_COLOURS)])
    styles["teacher"] = ("*", "#000000")
    return styles


def quality_metric(df: pd.DataFrame) -> str | None:
    """``mss`` if any candidate has it, else ``fad``, else None."""
    for m in ("mss", "fad"):
        if m in df.columns and df[m].notna().any():
            return m
    return None


def memory_metric(df: pd.DataFrame) -> str | None:
    """``param_bytes`` if any candidate has it, else ``peak_mem_bytes``, else None."""
    for m in ("param_bytes", "peak_mem_bytes"):
        if m in df.columns and df[m].notna().any():
            return m
    return None


def _axis_label(metric: str, units: dict[str, str]) -> str:
    unit = units.get(metric, "")
    better = "lower" if direction_of(metric) is Direction.MINIMIZE else "higher"
    return f"{metric} [{unit}] ({better} is better)" if unit else f"{metric} ({better} is better)"


def pareto_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    out_path: str | Path,
    *,
    title: str | None = None,
    styles: dict[str, tuple[str, str]] | None = None,
) -> Path | None:
    """Scatter ``y`` against ``x`` for the ok rows, by method, with the 2-D Pareto front drawn.

    Returns the PNG path, or None when no row has both metrics.
    """
    if x not in df.columns or y not in df.columns:
        return None
    ok = df[(df["status"] == "ok") & df[x].notna() & df[y].notna()]
    if ok.empty:
        return None
    plt = _pyplot()
    styles = styles or method_styles(list(df["method"].unique()))
    units = df.attrs.get("units", {})
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    try:
        for method, grp in sorted(ok.groupby("method"), key=lambda kv: (kv[0] == "teacher", kv[0])):
            marker, colour = styles.get(method, ("o", "#333333"))
            size = 180 if method == "teacher" else 42
            ax.scatter(grp[x], grp[y], marker=marker, c=colour, s=size, label=method, alpha=0.85,
                       edgecolors="white" if method != "teacher" else "black", linewidths=0.6, zorder=3)
        vals = ok[[x, y]].to_numpy(dtype=float)
        dirs = [direction_of(x), direction_of(y)]
        front = is_pareto_front(to_minimise(vals, dirs))
        pts = vals[front]
        if len(pts):
            pts = pts[np.argsort(pts[:, 0] * (1 if dirs[0] is Direction.MINIMIZE else -1))]
            ax.step(pts[:, 0], pts[:, 1], where="post", color="#444444", lw=1.2, ls="--", zorder=2,
                    label="Pareto front")
            ax.scatter(pts[:, 0], pts[:, 1], s=140, facecolors="none", edgecolors="#444444", lw=1.0, zorder=4)
        for axis, col in (("x", x), ("y", y)):
            v = ok[col].to_numpy(dtype=float)
            v = v[v > 0]
            if v.size and v.max() / v.min() > 20:
                (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        ax.set_xlabel(_axis_label(x, units))
        ax.set_ylabel(_axis_label(y, units))
        ax.set_title(title or f"{y} vs {x}")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
        fig.tight_layout()
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def spectrogram_png(audio: np.ndarray, sr: int, out_path: str | Path, *, floor_db: float = 80.0) -> Path:
    """A log-magnitude spectrogram image (dB, 512-point Hann STFT, hop 128, low frequencies at the bottom).

    Written pixel for pixel with :func:`matplotlib.image.imsave` (no axes: the page says what the
    axes are), which is about a hundred times faster than drawing a figure.
    """
    from matplotlib.image import imsave

    x = np.asarray(audio, dtype=float)
    if x.ndim > 1:
        x = x.mean(axis=1)
    n_fft, hop = 512, 128
    x = np.pad(x, (n_fft // 2, n_fft // 2 + max(0, n_fft - x.size)))
    n_frames = 1 + (x.size - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n_frames]
    db = 20 * np.log10(np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)).T + 1e-7)
    top = float(db.max()) if db.size else 0.0
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    imsave(out, db[::-1], cmap="magma", vmin=top - floor_db, vmax=top, format="png")
    return out


def default_plots(df: pd.DataFrame, out_dir: str | Path, rtf_metric: str = "rtf_stream_64") -> dict[str, Path]:
    """The standard plots per (dataset, instrument) group: quality vs streaming RTF, quality vs parameter
    bytes and quality vs peak inference memory (those that are measured).

    Quality numbers of different test sets are not comparable, so each group gets its own plots
    (file names carry the group when there is more than one). Returns name -> PNG path.
    """
    import re

    out_dir = Path(out_dir)
    quality = quality_metric(df)
    if quality is None:
        return {}
    styles = method_styles(list(df["method"].unique()))
    rtf = rtf_metric if rtf_metric in df.columns else next(
        (c for c in df.attrs.get("metrics", []) if c.startswith("rtf_stream_")), None)
    pairs = [(rtf, "streaming RTF")] if rtf else []
    for mem in ("param_bytes", "peak_mem_bytes"):  # stored size and measured inference peak
        if mem in df.columns and df[mem].notna().any():
            pairs.append((mem, "memory"))
    groups = list(df.groupby(["dataset", "instrument"], dropna=False, sort=True))
    made: dict[str, Path] = {}
    for (dataset, instrument), grp in groups:
        label = f"{dataset} / {instrument}" if isinstance(instrument, str) and instrument else str(dataset)
        tag = re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_")[:40] if len(groups) > 1 else ""
        for x, what in pairs:
            name = f"{quality}_vs_{x}" + (f"_{tag}_{len(made)}" if tag else "")
            title = f"{quality} vs {what} ({x})" + (f": {label}" if len(groups) > 1 else "")
            path = pareto_plot(grp, x, quality, out_dir / f"pareto_{name}.png", title=title, styles=styles)
            if path is not None:
                made[name] = path
    return made
