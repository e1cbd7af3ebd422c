"""Cells a spreadsheet would run: text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return.

A candidate id, an error message or a method parameter read from a records file is data, but a
spreadsheet opening ``leaderboard.csv`` treats ``=HYPERLINK(...)`` as a formula. Such text gets a
leading ``'`` (the usual neutraliser); numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["FORMULA_STARTS", "neutralise_cell", "neutralise_frame"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would take as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells and column names are neutralised (attrs kept)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise_cell)
    out.columns = [neutralise_cell(c) for c in out.columns]
    out.attrs = dict(df.attrs)
    return out
