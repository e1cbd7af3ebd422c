"""Sweeps: Optuna multi-objective search over the registries, resumable, and distributed on PostgreSQL.

- :mod:`suite.sweep.config`: the typed configuration (preset + YAML + flags), validated.
- :mod:`suite.sweep.space`: the define-by-run search space, the covering set, the samplers.
- :mod:`suite.sweep.storage`: storage URLs (journal file, SQLite, PostgreSQL), password masking, locks.
- :mod:`suite.sweep.runner`: create/resume a study, run trials in one or many processes, recover dead ones.
- :mod:`suite.sweep.progress`: the rich progress display (quiet when stdout is not a terminal).
- :mod:`suite.sweep.names`: every registry name a config uses, checked once.
- :mod:`suite.sweep.orchestrate`: a sweep from its settings to its report (what the ``sweep`` and ``worker`` commands run).

One candidate of a trial is built and measured by :mod:`suite.pipeline`; presets are in :mod:`suite.presets`.
"""

from __future__ import annotations

from ddspbench.suite.sweep.config import SweepConfig, config_from_dict, load_yaml
from ddspbench.suite.sweep.space import CandidateSpec, covering_trials, resolve_space, suggest_candidate
from ddspbench.suite.sweep.storage import default_storage_url, mask_url

__all__ = [
    "SweepConfig",
    "CandidateSpec",
    "config_from_dict",
    "load_yaml",
    "resolve_space",
    "suggest_candidate",
    "covering_trials",
    "default_storage_url",
    "mask_url",
]
