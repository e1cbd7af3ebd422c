"""Convergence flags of the candidates, read from their records.

Every trained model's record carries its learning curve in the training summary of the step that trained it
(:attr:`suite.recipe.StepReport.training`: ``curve`` and ``steps``; a teacher's training step likewise); the
functions here take those summaries (``ResultRecord.training``, the ``training`` column of a results frame). The verdict is computed here from the curve by the one rule, :func:`suite.convergence.convergence`
(smoothed curve, improvement per doubling of steps, "ended above its best"), so records written under an
earlier rule are judged by the current one; a training report without a curve keeps its stored verdict.
A candidate is

* ``False`` (not converged) when any training run it went through is flagged not converged;
* ``True`` when it has at least one verdict and all of them say converged;
* ``None`` when nothing was trained (quantization alone) or no verdict could be made.

The report shows the flag beside the leaderboard and beside every KD comparison, so "KD lost"
can be told from "nobody trained long enough".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd

from ddspbench.suite.convergence import convergence

__all__ = ["verdicts", "training_reports", "selected_validation", "candidate_converged", "candidate_regressed", "converged_flags", "regressed_flags",
           "combine_flags", "flag_comparison", "UNCONVERGED_NOTE"]

UNCONVERGED_NOTE = (
    "`converged = no`: the candidate's smoothed validation MSS still improved by more than 5% over the last doubling "
    "of its training steps (docs/CONTRACTS.md, Convergence): a comparison involving it may reflect too short a budget, "
    "not the method. `regressed`: some run ended more than 5% above its best validation MSS (with best-checkpoint "
    "selection the best weights were evaluated)."
)


def verdicts(training: Any) -> Iterator[dict[str, Any]]:
    """Every convergence verdict (``{"converged": ..., ...}``) of a record's training summaries (a list of them, or
    any nesting of dicts and lists that holds them)."""
    stack = [training]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            curve = node.get("curve")
            verdict = node.get("convergence")
            if isinstance(curve, list) and curve and isinstance(verdict, Mapping):
                steps = node.get("steps")
                yield convergence(curve, int(steps) if isinstance(steps, (int, float)) else None)
            elif isinstance(verdict, Mapping) and "converged" in verdict:
                yield dict(verdict)
            stack.extend(v for k, v in node.items() if k not in ("convergence", "curve"))
        elif isinstance(node, list):
            stack.extend(node)


def candidate_converged(training: Any) -> bool | None:
    """One candidate's flag from its training summaries (see the module docstring)."""
    flags = [v["converged"] for v in verdicts(training) if v.get("converged") is not None]
    if not flags:
        return None
    return all(bool(f) for f in flags)


def training_reports(training: Any) -> list[dict[str, Any]]:
    """The training reports (dicts with a learning ``curve`` or a ``best_valid``) among a record's training summaries,
    in the order of the chain's steps (depth first, insertion order); the last one trained the final model."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "curve" in node or "best_valid" in node:
                found.append(dict(node))
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(training)
    return found


def selected_validation(training: Any) -> tuple[float | None, str | None]:
    """The validation MSS of the weights a candidate was evaluated at, and which checkpoint they were (``best`` or
    ``last``): from the last training report of its chain. Records written before best-checkpoint selection were
    evaluated at the last step: their ``last_valid``. ``(None, None)`` when nothing was trained."""
    reports = training_reports(training)
    if not reports:
        return None, None
    rep = reports[-1]
    which = rep.get("checkpoint") or "last"
    value = rep.get("selected_valid") if "selected_valid" in rep else rep.get(f"{which}_valid")
    return (float(value) if isinstance(value, (int, float)) else None), str(which)


def candidate_regressed(training: Any) -> bool | None:
    """True when some training run of the candidate ended more than 5 % above its best validation MSS."""
    flags = [v["regressed"] for v in verdicts(training) if v.get("regressed") is not None]
    return any(bool(f) for f in flags) if flags else None


def regressed_flags(df: pd.DataFrame) -> pd.Series:
    """Per row of a records frame: :func:`candidate_regressed`, named ``regressed``."""
    if "training" not in df.columns:
        return pd.Series([None] * len(df), index=df.index, dtype=object, name="regressed")
    return pd.Series([candidate_regressed(v) for v in df["training"]], index=df.index, dtype=object,
                     name="regressed")


def converged_flags(df: pd.DataFrame) -> pd.Series:
    """Per row of a records frame (:func:`reports.load_results`): ``True``/``False``/``None``, named ``converged``."""
    if "training" not in df.columns:
        return pd.Series([None] * len(df), index=df.index, dtype=object, name="converged")
    return pd.Series([candidate_converged(v) for v in df["training"]], index=df.index, dtype=object,
                     name="converged")


def combine_flags(flags: Iterable[Any]) -> bool | None:
    """One flag for several runs of one configuration (its seeds): ``False`` when any is not converged, ``True``
    when all are converged, ``None`` otherwise (some unknown, or none)."""
    vals = [None if f is None or (isinstance(f, float) and f != f) else bool(f) for f in flags]
    if any(v is False for v in vals):
        return False
    return True if vals and all(v is True for v in vals) else None


def flag_comparison(frame: pd.DataFrame, df: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` (a comparison table) with a flag column beside each uid column: ``columns`` maps a uid column of
    ``frame`` to the name of its flag column. ``df`` must hold ``uid`` and ``converged``."""
    if frame.empty or "converged" not in df.columns:
        return frame
    by_uid = dict(zip(df["uid"], df["converged"]))
    out = frame.copy()
    for uid_col, flag_col in columns.items():
        if uid_col not in out.columns:
            continue
        flags = [by_uid.get(u) if isinstance(u, str) else None for u in out[uid_col]]
        out.insert(int(out.columns.get_loc(uid_col)) + 1, flag_col, pd.Series(flags, index=out.index, dtype=object))
    return out
