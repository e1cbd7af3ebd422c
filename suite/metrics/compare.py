"""Compare two sets of per-clip embeddings: FAD, KAD, FAD-infinity and bootstrap intervals in one call.

The glue between :mod:`suite.metrics.fad` (pure maths) and its users (``ddspbench fad``,
:func:`suite.evaluate.evaluate_model`). Sets are lists of per-clip embedding matrices (n_i, D).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ddspbench.suite.metrics import fad as F

__all__ = ["MIN_CLIPS", "compare_sets", "single_thread_blas"]

MIN_CLIPS = 2


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run NumPy's BLAS/LAPACK on one thread: small (D ~ 100-500) eigen-problems are 10-20x faster
    than with OpenBLAS's default thread pool on a busy 2-core machine (threadpoolctl comes with
    scikit-learn, a librosa dependency; without it this does nothing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def compare_sets(
    clips_a: Sequence[np.ndarray],
    clips_b: Sequence[np.ndarray],
    *,
    bootstrap: int = 0,
    with_inf: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """FAD and KAD of set B against reference set A, optionally FAD-infinity and 95 % intervals.

    Returns:
        ``{"fad", "kad", "n_clips": [a, b], "n_frames": [a, b], "dim"}`` plus ``"fad_inf"`` (and
        ``"fad_inf_fit"``) with ``with_inf``, and ``"intervals": {"fad": [lo, hi], "kad": [lo, hi]}``
        with ``bootstrap > 0`` resamples.

    Raises:
        ValueError: fewer than :data:`MIN_CLIPS` clips in a set, or mismatched dimensions.
    """
    with single_thread_blas():
        return _compare(clips_a, clips_b, bootstrap=bootstrap, with_inf=with_inf, seed=seed)


def _compare(
    clips_a: Sequence[np.ndarray], clips_b: Sequence[np.ndarray], *, bootstrap: int, with_inf: bool, seed: int
) -> dict[str, Any]:
    if len(clips_a) < MIN_CLIPS or len(clips_b) < MIN_CLIPS:
        raise ValueError(f"FAD needs at least {MIN_CLIPS} clips in each set, got {len(clips_a)} and {len(clips_b)}")
    a, b = np.concatenate(clips_a), np.concatenate(clips_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    bandwidth = F.median_bandwidth(b)  # kadtk: the evaluated set's median pairwise distance
    out: dict[str, Any] = {
        "fad": F.fad(a, b),
        "kad": F.kad(a, b, bandwidth=bandwidth),
        "n_clips": [len(clips_a), len(clips_b)],
        "n_frames": [int(a.shape[0]), int(b.shape[0])],
        "dim": int(a.shape[1]),
        "kad_bandwidth": bandwidth,
    }
    if with_inf:
        try:
            res = F.fad_inf(a, b, seed=seed)
            out["fad_inf"] = res.score
            out["fad_inf_fit"] = {"slope": res.slope, "r2": res.r2, "points": [list(p) for p in res.points]}
        except ValueError as exc:
            out["fad_inf"] = None
            out["fad_inf_fit"] = {"error": str(exc)}
    if bootstrap > 0:
        out["intervals"] = {
            "fad": list(F.bootstrap_interval(F.fad_fast, clips_a, clips_b, n_boot=bootstrap, seed=seed, lower_bound=0.0)),
            "kad": list(
                F.bootstrap_interval(
                    lambda x, y: F.kad(x, y, bandwidth=bandwidth), clips_a, clips_b, n_boot=bootstrap, seed=seed
                )
            ),
        }
    return out
