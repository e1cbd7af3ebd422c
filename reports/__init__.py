"""Reports: ResultRecords -> pandas -> leaderboards, Pareto fronts, KD-vs-others, and an HTML listening page.

Reads records only (:mod:`suite.records`); never imports models, torch or compressors.

Public API (docs/CONTRACTS.md, "Reports API"): :func:`load_results`, :func:`build_report`,
:func:`print_leaderboard`.
"""

from __future__ import annotations

from ddspbench.reports.build import FORMATS, SMOKE_WARNING, build_report
from ddspbench.reports.load import load_results
from ddspbench.reports.pareto import hypervolume, is_pareto_front, non_dominated_ranks
from ddspbench.reports.tables import leaderboard, print_leaderboard

__all__ = [
    "SMOKE_WARNING",
    "FORMATS",
    "build_report",
    "hypervolume",
    "is_pareto_front",
    "leaderboard",
    "load_results",
    "non_dominated_ranks",
    "print_leaderboard",
]
