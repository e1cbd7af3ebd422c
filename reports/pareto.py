"""Pareto fronts and hypervolume, in plain numpy.

Every objective is first turned into one to *minimise* (a maximised objective is negated), following
Optuna's direction model (:class:`suite.records.Direction`). Then:

* :func:`is_pareto_front` marks the non-dominated rows of an ``(n, k)`` array. Point ``a`` dominates
  ``b`` when ``a <= b`` in every objective and ``a < b`` in at least one. Consequences, by design:
  exact duplicates do not dominate each other, so **all copies of a non-dominated point are on the
  front**; a point that ties another in one objective but is worse in another is dominated. Rows with
  a non-finite value (NaN/inf: a failed or unmeasured candidate) are never on a front and never
  dominate anything.
* :func:`non_dominated_ranks` peels fronts one after the other (rank 0 = the Pareto front).
* :func:`hypervolume` is the exact volume dominated by a set of points and bounded by a reference
  point (2-D by a sweep, 3-D by slicing along the third objective), the usual quality indicator of a
  front: larger is better.
* :func:`normalise` min-max scales objectives to [0, 1] so that a hypervolume against the reference
  point :data:`HV_REF` (1.1 in every objective) reads as a share of a fixed box.
* :func:`pareto_mask` does the above on a results DataFrame, by metric names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ddspbench.suite.errors import UserError
from ddspbench.suite.records import STANDARD_METRICS, Direction

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Objective",
    "direction_of",
    "parse_objectives",
    "to_minimise",
    "is_pareto_front",
    "non_dominated_ranks",
    "hypervolume",
    "reference_point",
    "HV_REF",
    "normalise",
    "pareto_mask",
    "pareto_objectives",
]

Objective = tuple[str, Direction]
_BLOCK = 256  # rows compared at once in is_pareto_front (memory ~ n * _BLOCK * k bytes)


def pareto_objectives(quality: str, objectives: list[str]) -> list[str]:
    """A study's objectives as a report's Pareto objectives: the quality metric first, at most three."""
    return [quality, *[o for o in objectives if o != quality]][:3]


def direction_of(metric: str) -> Direction:
    """The direction of a standard metric (unknown names are a user mistake)."""
    spec = STANDARD_METRICS.get(metric)
    if spec is None:
        raise UserError(f"unknown metric {metric!r}; known: {', '.join(sorted(STANDARD_METRICS))}")
    return spec.direction


def parse_objectives(objectives: str | Sequence[str | Objective]) -> list[Objective]:
    """``"mss,rtf_stream_64"`` or a list of names / ``(name, Direction)`` pairs -> objectives.

    Names take their direction from :data:`suite.records.STANDARD_METRICS`.
    """
    items: Sequence[str | Objective]
    items = [s.strip() for s in objectives.split(",") if s.strip()] if isinstance(objectives, str) else objectives
    out: list[Objective] = []
    for item in items:
        if isinstance(item, tuple):
            out.append((item[0], Direction(item[1])))
        else:
            out.append((item, direction_of(item)))
    if not 2 <= len(out) <= 3:
        raise UserError(f"Pareto fronts take 2 or 3 objectives, got {len(out)}: {[o[0] for o in out]}")
    names = [o[0] for o in out]
    if len(set(names)) != len(names):
        raise UserError(f"objectives repeat a metric: {names}")
    return out


def to_minimise(values: ArrayLike, directions: Sequence[Direction]) -> np.ndarray:
    """A float copy of ``values`` (n, k) with every maximised column negated."""
    arr = np.array(values, dtype=float, copy=True)
    if arr.ndim != 2 or arr.shape[1] != len(directions):
        raise ValueError(f"values must be (n, {len(directions)}), got {arr.shape}")
    for j, d in enumerate(directions):
        if Direction(d) is Direction.MAXIMIZE:
            arr[:, j] = -arr[:, j]
    return arr


def is_pareto_front(values: ArrayLike) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n, k), all objectives minimised.

    Duplicated non-dominated points are all on the front; rows with a non-finite value never are.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"values must be 2-D (n, k), got shape {arr.shape}")
    n = arr.shape[0]
    valid = np.isfinite(arr).all(axis=1)
    mask = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return mask
    pts = arr[idx]
    dominated = np.zeros(idx.size, dtype=bool)
    # dominated[i] = any j: pts[j] <= pts[i] everywhere and < somewhere; in blocks of rows i to bound memory
    for start in range(0, idx.size, _BLOCK):
        block = pts[start : start + _BLOCK]
        le = (pts[:, None, :] <= block[None, :, :]).all(axis=2)  # le[j, i]: j weakly better than i
        lt = (pts[:, None, :] < block[None, :, :]).any(axis=2)
        dominated[start : start + _BLOCK] = (le & lt).any(axis=0)
    mask[idx] = ~dominated
    return mask


def non_dominated_ranks(values: ArrayLike) -> np.ndarray:
    """Front number of each row (0 = Pareto front, 1 = front once that is removed, ...; -1 = invalid)."""
    arr = np.asarray(values, dtype=float)
    ranks = np.full(arr.shape[0], -1, dtype=int)
    remaining = np.isfinite(arr).all(axis=1)
    rank = 0
    while remaining.any():
        sub = np.where(remaining[:, None], arr, np.nan)
        front = is_pareto_front(sub)
        ranks[front] = rank
        remaining &= ~front
        rank += 1
    return ranks


def _hv2(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact 2-D hypervolume (minimisation) of points that strictly dominate ``ref``."""
    if points.shape[0] == 0:
        return 0.0
    order = np.lexsort((points[:, 1], points[:, 0]))  # by x, then y
    volume = 0.0
    best_y = ref[1]
    for x, y in points[order]:
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(volume)


def hypervolume(values: ArrayLike, ref: ArrayLike) -> float:
    """Exact hypervolume of ``values`` (n, k), k in {1, 2, 3}, all minimised, w.r.t. ``ref``.

    The volume of the union of the boxes ``[p, ref]``. Points that do not strictly dominate ``ref``
    in every objective, and rows with non-finite values, add nothing. Dominated points may be
    passed; they add nothing either.
    """
    arr = np.asarray(values, dtype=float)
    r = np.asarray(ref, dtype=float)
    if arr.ndim != 2 or r.shape != (arr.shape[1],):
        raise ValueError(f"values (n, k) and ref (k,) do not match: {arr.shape} vs {r.shape}")
    k = arr.shape[1]
    keep = np.isfinite(arr).all(axis=1) & (arr < r).all(axis=1)
    pts = arr[keep]
    if pts.shape[0] == 0:
        return 0.0
    if k == 1:
        return float(r[0] - pts[:, 0].min())
    if k == 2:
        return _hv2(pts, r)
    if k == 3:
        # Slice along z: between consecutive z levels the dominated area is the 2-D hypervolume of the
        # points whose z is at or below the slab's lower edge.
        order = np.argsort(pts[:, 2], kind="stable")
        pts = pts[order]
        zs = np.append(pts[:, 2], r[2])
        volume = 0.0
        for i in range(pts.shape[0]):
            depth = zs[i + 1] - zs[i]
            if depth > 0:
                volume += _hv2(pts[: i + 1, :2], r[:2]) * depth
        return float(volume)
    raise ValueError(f"hypervolume is implemented for 1 to 3 objectives, got {k}")


def reference_point(values: ArrayLike, margin: float = 0.1) -> np.ndarray:
    """A reference point just worse than the worst finite value in each objective (minimised).

    ``worst + margin * (worst - best)``; where an objective has no spread, ``worst + margin * |worst|``
    (or ``+ margin`` at zero). Reports use it so every front point contributes some volume.
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr).all(axis=1)]
    if arr.shape[0] == 0:
        raise ValueError("no finite points to place a reference point after")
    hi, lo = arr.max(axis=0), arr.min(axis=0)
    span = hi - lo
    pad = np.where(span > 0, span, np.where(hi != 0, np.abs(hi), 1.0)) * margin
    return hi + pad


HV_REF = 1.1
"""Reference point (in every objective) of hypervolumes on :func:`normalise`-d objectives."""


def normalise(values: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-max normalise each column of ``values`` (n, k) over its finite rows: ``(x - lo) / (hi - lo)``.

    Returns ``(normalised, lo, hi)``; a column without spread maps to 0; rows with a non-finite value
    stay non-finite. With every objective minimised, 0 is the best value seen and 1 the worst, so a
    hypervolume against :data:`HV_REF` in every objective has a fixed, readable scale.
    """
    arr = np.asarray(values, dtype=float)
    fin = arr[np.isfinite(arr).all(axis=1)]
    if fin.shape[0] == 0:
        raise ValueError("no finite rows to normalise over")
    lo, hi = fin.min(axis=0), fin.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (arr - lo) / span, lo, hi


def pareto_mask(df: pd.DataFrame, objectives: str | Sequence[str | Objective]) -> pd.Series:
    """Which rows of a results DataFrame are on the Pareto front over ``objectives``.

    Failed rows and rows missing any objective are never on it.
    """
    import pandas as pd

    objs = parse_objectives(objectives)
    missing = [name for name, _ in objs if name not in df.columns]
    if missing:
        raise UserError(f"no candidate has metric(s) {missing}; cannot build a Pareto front over them")
    vals = to_minimise(df[[name for name, _ in objs]].to_numpy(dtype=float), [d for _, d in objs])
    if "status" in df.columns:
        vals[(df["status"] != "ok").to_numpy()] = np.nan
    return pd.Series(is_pareto_front(vals), index=df.index, name="pareto")
