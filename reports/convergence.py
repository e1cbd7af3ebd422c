"""Convergence flags of the candidates, read from their records (issue 13).

Every trained model's record carries the verdict of :func:`suite.train.convergence` inside its
``method_params`` (a compressor's training report ``train``/``finetune`` has ``convergence``; a
teacher's ``train`` likewise). A candidate is

* ``False`` (not converged) when any training run it went through is flagged not converged;
* ``True`` when it has at least one verdict and all of them say converged;
* ``None`` when nothing was trained (quantization alone) or no verdict could be made.

The report shows the flag beside the leaderboard and beside every KD comparison, so "KD lost"
can be told from "nobody trained long enough".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pandas as pd

__all__ = ["verdicts", "candidate_converged", "converged_flags", "combine_flags", "flag_comparison", "UNCONVERGED_NOTE"]

UNCONVERGED_NOTE = (
    "`converged = no`: the candidate's validation MSS still improved by more than 5% over the last 20% of its "
    "training steps (docs/CONTRACTS.md, Convergence): a comparison involving it may reflect too short a budget, "
    "not the method."
)


def verdicts(method_params: Any) -> Iterator[dict[str, Any]]:
    """Every convergence verdict (``{"converged": ..., ...}``) found anywhere inside a record's ``method_params``
    (a dict, or its JSON text as :func:`reports.load_results` keeps it)."""
    if isinstance(method_params, str):
        try:
            method_params = json.loads(method_params)
        except ValueError:
            return
    stack = [method_params]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            verdict = node.get("convergence")
            if isinstance(verdict, Mapping) and "converged" in verdict:
                yield dict(verdict)
            stack.extend(v for k, v in node.items() if k != "convergence")
        elif isinstance(node, list):
            stack.extend(node)


def candidate_converged(method_params: Any) -> bool | None:
    """One candidate's flag from its ``method_params`` (see the module docstring)."""
    flags = [v["converged"] for v in verdicts(method_params) if v.get("converged") is not None]
    if not flags:
        return None
    return all(bool(f) for f in flags)


def converged_flags(df: pd.DataFrame) -> pd.Series:
    """Per row of a records frame (:func:`reports.load_results`): ``True``/``False``/``None``, named ``converged``."""
    if "method_params" not in df.columns:
        return pd.Series([None] * len(df), index=df.index, dtype=object, name="converged")
    return pd.Series([candidate_converged(v) for v in df["method_params"]], index=df.index, dtype=object,
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
