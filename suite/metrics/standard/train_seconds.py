"""``train_seconds``: wall time spent training the candidate; set by whoever trained it (no compute here)."""

from __future__ import annotations

from ddspbench.suite.metrics.declare import Role, declare_metric

TRAIN_SECONDS = declare_metric("train_seconds", unit="s", role=Role.COST,
                               description="wall time spent training this candidate (teacher excluded)")
