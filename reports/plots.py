"""Pareto plots and spectrograms (matplotlib, Agg backend, PNG files).

Every plot of a report uses the same encoding: the colour is the method (assigned in sorted method
order), the marker is the family, the teacher is drawn larger with a black edge, failed candidates are
not drawn. The study's own Pareto set (the leaderboard's ``pareto`` column, over all the report's
objectives) is ringed on every view, so a plot never contradicts the leaderboard; a 2-D view of a 3-D
front shows ringed points that look dominated in that view, which is why the rings are the study's and
not the plot's. Points carry their candidate ids (all of them up to :data:`LABEL_ALL`, otherwise the
Pareto set and the teachers). Byte axes read in kB/MB; axes spanning more than a factor of 20 are drawn
on a log scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ddspbench.reports.load import reference_mask
from ddspbench.reports.pareto import direction_of, hypervolume, reference_point, to_minimise
from ddspbench.reports.tables import human_bytes
from ddspbench.suite.metrics.declare import Role, headline_metrics
from ddspbench.suite.records import Direction

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["method_styles", "family_markers", "pareto_plot", "spectrogram_png", "quality_metric", "memory_metric",
           "default_plots", "hypervolume_history_plot", "LABEL_ALL"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p")
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")
LABEL_ALL = 30  # label every point up to this many; above it only the Pareto set and the teachers


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def method_styles(methods: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Method -> (marker, colour), stable for a given set of methods; the teacher is black.

    (The marker is a default; :func:`pareto_plot` draws families by :func:`family_markers`.)
    """
    styles: dict[str, tuple[str, str]] = {}
    others = sorted({m for m in methods if m != "teacher"})
    for i, m in enumerate(others):
        styles[m] = (_MARKERS[i % len(_MARKERS)], _COLOURS[i % len(_COLOURS)])
    styles["teacher"] = ("*", "#000000")
    return styles


def family_markers(families: Sequence[Any]) -> dict[str, str]:
    """Family -> marker, stable for a given set of families."""
    return {f: _MARKERS[i % len(_MARKERS)] for i, f in enumerate(sorted({str(f) for f in families}))}


def quality_metric(df: pd.DataFrame) -> str | None:
    """The first quality headline metric any candidate has (``mss``, else ``fad``: their declarations' ``headline``),
    else None."""
    for m in headline_metrics(Role.QUALITY):
        if m in df.columns and df[m].notna().any():
            return m
    return None


def memory_metric(df: pd.DataFrame) -> str | None:
    """The first memory headline metric any candidate has (``param_bytes``, else ``peak_mem_bytes``), else None."""
    for m in headline_metrics(Role.MEMORY):
        if m in df.columns and df[m].notna().any():
            return m
    return None


def _axis_label(metric: str, units: dict[str, str]) -> str:
    unit = units.get(metric, "")
    better = "lower" if direction_of(metric) is Direction.MINIMIZE else "higher"
    return f"{metric} [{unit}] ({better} is better)" if unit else f"{metric} ({better} is better)"


def _format_axis(ax: Any, axis: str, unit: str, log: bool) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, ScalarFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if unit == "B":
        target.set_major_formatter(FuncFormatter(lambda v, _pos: human_bytes(v)))
        if log:
            target.set_minor_formatter(NullFormatter())
        else:
            target.set_major_locator(MaxNLocator(nbins=5))
    elif not log:
        fmt = ScalarFormatter(useOffset=False)
        fmt.set_scientific(False)
        target.set_major_formatter(fmt)


def pareto_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    out_path: str | Path,
    *,
    title: str | None = None,
    styles: dict[str, tuple[str, str]] | None = None,
    markers: dict[str, str] | None = None,
    front_label: str = "Pareto set of the study",
) -> Path | None:
    """Scatter ``y`` against ``x`` for the ok rows: colour by method, marker by family, candidate ids as
    labels, the rows with a true ``pareto`` column ringed.

    Returns the PNG path, or None when no row has both metrics.
    """
    if x not in df.columns or y not in df.columns:
        return None
    ok = df[(df["status"] == "ok") & df[x].notna() & df[y].notna()]
    if ok.empty:
        return None
    plt = _pyplot()
    from matplotlib.lines import Line2D

    styles = styles or method_styles(list(df["method"].unique()))
    markers = markers or family_markers(list(df["family"].dropna().unique()))
    units = df.attrs.get("units", {})
    front = ok["pareto"].fillna(False).astype(bool) if "pareto" in ok.columns else None
    fig, ax = plt.subplots(figsize=(9.0, 5.2), dpi=110)
    try:
        refs = set(ok.loc[reference_mask(ok), "method"])  # the teachers' method names, by their tags
        for (method, family), grp in sorted(ok.groupby(["method", "family"]), key=lambda kv: (kv[0][0] in refs, kv[0])):
            colour = styles.get(method, ("o", "#333333"))[1]
            teacher = method in refs
            ax.scatter(grp[x], grp[y], marker=markers.get(str(family), "o"), c=colour, s=170 if teacher else 46,
                       alpha=0.9, edgecolors="black" if teacher else "white", linewidths=1.0 if teacher else 0.6, zorder=3)
        if front is not None and front.any():
            pts = ok[front]
            ax.scatter(pts[x], pts[y], s=300, facecolors="none", edgecolors="#c00000", lw=1.4, zorder=4)
        for axis, col in (("x", x), ("y", y)):
            v = ok[col].to_numpy(dtype=float)
            v = v[v > 0]
            _format_axis(ax, axis, units.get(col, ""), bool(v.size and v.max() / v.min() > 20))
        label_all = len(ok) <= LABEL_ALL
        to_axes = ax.transData + ax.transAxes.inverted()  # scales are set: where each point sits in the axes
        for _, r in ok.iterrows():
            on_front = bool(front is not None and front.loc[r.name])
            if label_all or on_front or r["method"] in refs:
                right = to_axes.transform((float(r[x]), float(r[y])))[0] > 0.7  # labels stay inside the axes
                ax.annotate(str(r["uid"]), (r[x], r[y]), xytext=(-5 if right else 5, 4), textcoords="offset points",
                            ha="right" if right else "left", fontsize=7, color="#333333", zorder=5)
        ax.set_xlabel(_axis_label(x, units))
        ax.set_ylabel(_axis_label(y, units))
        ax.set_title(title or f"{y} vs {x}", fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        method_handles = [Line2D([], [], ls="", marker="o", color=styles.get(m, ("o", "#333333"))[1], label=m)
                          for m in sorted(ok["method"].unique(), key=lambda m: (m in refs, m))]
        family_handles = [Line2D([], [], ls="", marker=markers.get(str(f), "o"), color="#555555", label=str(f))
                          for f in sorted(ok["family"].dropna().astype(str).unique())]
        if front is not None and front.any():
            family_handles.append(Line2D([], [], ls="", marker="o", markersize=12, markerfacecolor="none",
                                         markeredgecolor="#c00000", label=front_label))
        first = ax.legend(handles=method_handles, title="method", fontsize=7, title_fontsize=7, loc="upper left",
                          bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
        ax.add_artist(first)
        ax.legend(handles=family_handles, title="family", fontsize=7, title_fontsize=7, loc="lower left",
                  bbox_to_anchor=(1.01, 0.0), framealpha=0.9)
        return _save(fig, out_path)
    finally:
        plt.close(fig)


def _fit_titles(fig: Any) -> bool:
    """Wrap every axes title that reaches past the figure's edges (a long group label or list of arms: a centred
    title is clipped, not shrunk, by the layout), measured by the figure's own renderer at the axes' current place;
    True when some title was wrapped (the layout should then be redone)."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    wrapped = False
    for ax in fig.axes:
        title = ax.title
        text = title.get_text()
        box = title.get_window_extent(renderer)
        if not text or (box.x0 >= 0 and box.x1 <= width):
            continue
        centre = (box.x0 + box.x1) / 2
        room = 0.96 * 2 * max(1.0, min(centre, width - centre))
        chars = max(20, int(len(text) * room / box.width))
        title.set_text("\n".join(textwrap.wrap(text.replace("\n", " "), chars)))
        wrapped = True
    return wrapped


def _save(fig: Any, out_path: str | Path) -> Path:
    """Lay out and write a finished figure as PNG (the figure is closed by the caller)."""
    fig.tight_layout()
    if _fit_titles(fig):
        fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def hypervolume_history_plot(df: pd.DataFrame, objectives: Sequence[str], out_path: str | Path, *,
                             title: str | None = None) -> Path | None:
    """The hypervolume of the first k trials' candidates against k (Optuna's hypervolume history, from records).

    One line per (dataset, instrument) group, each relative to its final value (1.0 at the end) and
    measured against the group's reference point (:func:`reports.pareto.reference_point`) of all its
    ok candidates: a curve still climbing at the end says more trials would still move the front.
    Teachers (no trial number) are left out. Returns None without at least two trials with every objective.
    """
    names = [o for o in objectives if o in df.columns]
    if len(names) != len(objectives) or "trial" not in df.columns:
        return None
    ok = df[(df["status"] == "ok") & df["trial"].notna() & ~reference_mask(df)]
    ok = ok.dropna(subset=names)
    if ok["trial"].nunique() < 2:
        return None
    plt = _pyplot()
    dirs = [direction_of(n) for n in names]
    fig, ax = plt.subplots(figsize=(9.0, 3.6), dpi=110)
    try:
        for (dataset, instrument), grp in ok.groupby(["dataset", "instrument"], dropna=False, sort=True):
            grp = grp.sort_values("trial")
            vals = to_minimise(grp[names].to_numpy(dtype=float), dirs)
            ref = reference_point(vals)
            hv = np.array([hypervolume(vals[: k + 1], ref) for k in range(len(vals))])
            if hv[-1] <= 0:
                continue
            label = f"{dataset} / {instrument}" if isinstance(instrument, str) and instrument else str(dataset)
            ax.step(grp["trial"].to_numpy(dtype=float), hv / hv[-1], where="post", label=label)
        ax.set_xlabel("trial number")
        ax.set_ylabel("hypervolume / final (higher is better)")
        ax.set_ylim(0, 1.05)
        ax.set_title(title or f"Hypervolume history over ({', '.join(names)})", fontsize=10)
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=7, loc="lower right")
        return _save(fig, out_path)
    finally:
        plt.close(fig)


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


def default_plots(df: pd.DataFrame, out_dir: str | Path, rtf_metric: str = "rtf_stream_64",
                  objectives: Sequence[str] = ()) -> dict[str, Path]:
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
    markers = family_markers(list(df["family"].dropna().unique()))
    front_label = f"Pareto over ({', '.join(objectives)})" if objectives else "Pareto set of the study"
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
            path = pareto_plot(grp, x, quality, out_dir / f"pareto_{name}.png", title=title, styles=styles,
                               markers=markers, front_label=front_label)
            if path is not None:
                made[name] = path
    if objectives:
        path = hypervolume_history_plot(df, objectives, out_dir / "hypervolume_history.png")
        if path is not None:
            made["hypervolume_history"] = path
    return made


def compute_curves_plot(runs: pd.DataFrame, out_path: str | Path, *, title: str | None = None) -> Path | None:
    """Validation MSS against cumulative training FLOPs, one line per training run, coloured by arm.

    A run's x starts at what it inherited (its teacher's training: ``total_flops - own_flops``) and advances by its
    FLOPs per step (``own_flops / own_steps``), so KD and pruning start where their teacher's training ended and
    scratch at zero: quality against the compute it really cost. Rows need the record's compute and a learning
    curve; methods without training (int8) have no curve and are listed in the title. None when no row has both.
    """
    from ddspbench.reports.convergence import training_reports

    need = {"own_flops", "own_steps", "total_flops", "training"}
    if not need <= set(runs.columns):
        return None
    ok = runs[(runs["status"] == "ok") & ~reference_mask(runs)]
    arm_col = ok["arm"] if "arm" in ok.columns else ok["method"]
    lines: list[tuple[str, np.ndarray, np.ndarray]] = []
    untrained: set[str] = set()
    for (_, r), arm in zip(ok.iterrows(), arm_col, strict=True):
        own, steps, total = (float(r[c]) if r[c] == r[c] else math.nan for c in ("own_flops", "own_steps", "total_flops"))
        reps = training_reports(r["training"])
        curve = reps[-1].get("curve") if reps else None
        if not curve or not (steps > 0) or not math.isfinite(own) or not math.isfinite(total):
            if math.isfinite(total):
                untrained.add(str(arm))
            continue
        pts = np.asarray([(float(s), float(v)) for s, v in curve if v is not None], dtype=float)
        if not len(pts):
            continue
        x = (total - own) + pts[:, 0] * (own / steps)
        lines.append((str(arm), x, pts[:, 1]))
    if not lines:
        return None
    plt = _pyplot()
    styles = method_styles(sorted({a for a, _, _ in lines}))
    fig, ax = plt.subplots(figsize=(9.0, 5.2), dpi=110)
    try:
        seen: set[str] = set()
        for arm, x, y in sorted(lines, key=lambda t: t[0]):
            ax.plot(x, y, color=styles[arm][1], lw=1.1, alpha=0.8, label=None if arm in seen else arm)
            ax.scatter(x[-1:], y[-1:], color=styles[arm][1], s=14, zorder=3)
            seen.add(arm)
        ax.set_xscale("symlog", linthresh=max(1.0, min(float(x[x > 0].min()) for _, x, _ in lines if (x > 0).any())))
        ax.set_xlabel("cumulative training FLOPs incl. the teacher's (counted: matrix products, convolutions)")
        ax.set_ylabel("validation MSS (during training)")
        extra = f"; no training, not shown: {', '.join(sorted(untrained))}" if untrained else ""
        ax.set_title((title or "quality vs cumulative compute") + extra, fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(title="arm", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _save(fig, out_path)
    finally:
        plt.close(fig)
