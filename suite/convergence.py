"""The convergence rule of a training run, from its learning curve alone (no torch: reports use it too).

A learning curve is ``[[step, validation MSS], ...]``. Validation MSS on a few clips is noisy (a DDX7
run's curve moves by 10 % from one validation to the next), and a run can get worse after its best,
so the rule looks at a smoothed curve and says both things (docs/CONTRACTS.md, "Convergence"):

* **Smoothing.** Each point is replaced by the median of itself and its neighbours (three points; the
  last point: the median of the last three).
* **Improvement per doubling of steps.** With ``N`` the run's last step, ``before`` the smoothed value at
  the validation nearest ``N / 2`` and ``after`` the smoothed value at ``N``, ``improvement = (before -
  after) / before``: what the second half of the run, a doubling of its steps, bought. The run has
  **not converged** when it exceeds :data:`CONVERGENCE_THRESHOLD` (5 %): another doubling is likely to
  pay. ``None`` (unknown) with fewer than :data:`MIN_POINTS` validations or none in the first half.
* **Ended above its best.** ``ended_above_best = (last - best) / best`` of the raw curve; ``regressed``
  when it exceeds :data:`REGRESSION_THRESHOLD` (5 %). With best-checkpoint selection (the default) the
  evaluated weights are the best ones, so this flags a noisy or degrading run, not a worse model.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["CONVERGENCE_THRESHOLD", "REGRESSION_THRESHOLD", "MIN_POINTS", "RULE", "convergence", "plateau_stop",
           "plateau_rule"]

CONVERGENCE_THRESHOLD = 0.05
"""Relative improvement of the smoothed validation MSS over the last doubling of steps above which a run has not
converged."""
REGRESSION_THRESHOLD = 0.05
"""Relative distance of the last validation MSS above the best one above which a run is flagged ``regressed``."""
MIN_POINTS = 4
"""Validations a curve needs for a verdict."""
RULE = (f"smoothed (median of 3) validation MSS; not converged when the last doubling of steps (N/2 to N) improved it "
        f"by more than {CONVERGENCE_THRESHOLD:.0%}; regressed when the last validation is more than "
        f"{REGRESSION_THRESHOLD:.0%} above the best")


def _smoothed(values: Sequence[float], k: int) -> float:
    n = len(values)
    window = values[max(0, k - 1): k + 2] if k < n - 1 else values[max(0, n - 3):]
    return float(statistics.median(window))


def convergence(curve: Sequence[Sequence[float]], steps: int | None = None) -> dict[str, Any]:
    """The verdict of one run from its learning curve (module docstring).

    Returns ``{"converged", "improvement", "before_step", "before", "after_step", "after", "best_step", "best",
    "last", "ended_above_best", "regressed", "rule"}`` (``None`` where the curve cannot tell).
    """
    out: dict[str, Any] = {"converged": None, "improvement": None, "before_step": None, "before": None,
                           "after_step": None, "after": None, "best_step": None, "best": None, "last": None,
                           "ended_above_best": None, "regressed": None, "rule": RULE}
    pts = sorted((int(s), float(v)) for s, v in curve if v is not None and math.isfinite(float(v)))
    if not pts:
        return out
    vals = [v for _, v in pts]
    best_i = min(range(len(pts)), key=lambda i: (vals[i], pts[i][0]))
    last = vals[-1]
    above = (last - vals[best_i]) / vals[best_i] if vals[best_i] > 0 else 0.0
    out.update(best_step=pts[best_i][0], best=vals[best_i], last=last, ended_above_best=above,
               regressed=bool(above > REGRESSION_THRESHOLD))
    n_last = int(steps) if steps is not None else pts[-1][0]
    first_half = [i for i, (s, _) in enumerate(pts) if s <= n_last / 2]
    if len(pts) < MIN_POINTS or not first_half:
        return out
    k = min(first_half, key=lambda i: abs(pts[i][0] - n_last / 2))
    before, after = _smoothed(vals, k), _smoothed(vals, len(pts) - 1)
    improvement = (before - after) / before if before > 0 else 0.0
    out.update(converged=bool(improvement <= CONVERGENCE_THRESHOLD), improvement=improvement, before_step=pts[k][0],
               before=before, after_step=pts[-1][0], after=after)
    return out


def plateau_rule(patience: int, min_delta: float) -> str:
    """The early-stopping rule of :func:`plateau_stop` in words (training reports record it)."""
    return (f"stop when the causal median-of-3 smoothed validation MSS has not improved on its best before the last "
            f"{patience} validations by more than {min_delta:.1%}; the checkpoint is still the best-validation one")


def plateau_stop(curve: Sequence[Sequence[float]], patience: int, min_delta: float) -> dict[str, Any] | None:
    """Whether a run may stop after the last validation of ``curve`` (``[[step, validation MSS], ...]`` so far).

    Each validation is smoothed causally, the median of itself and the two before it (a run cannot see the next
    one), so one lucky or unlucky validation neither stops nor keeps a run going. The run has plateaued when the
    best smoothed value of its last ``patience`` validations is not below ``(1 - min_delta)`` times the best
    smoothed value before them. The same rule for every run of a comparison; the run keeps its best-validation
    checkpoint, so stopping can only lose what later steps would have gained.

    Returns ``None`` (go on), or ``{"step", "best_recent", "best_before", "rule"}`` when the run should stop.
    """
    pts = sorted((int(st), float(v)) for st, v in curve if v is not None and math.isfinite(float(v)))
    if patience < 1 or len(pts) < patience + 3:  # two points to start the smoothing, one before the window
        return None
    vals = [v for _, v in pts]
    smooth = [float(statistics.median(vals[max(0, i - 2): i + 1])) for i in range(len(vals))]
    before, recent = min(smooth[2:-patience]), min(smooth[-patience:])
    if recent < (1.0 - min_delta) * before:
        return None
    return {"step": pts[-1][0], "best_recent": recent, "best_before": before, "rule": plateau_rule(patience, min_delta)}
