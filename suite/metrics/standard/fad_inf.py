"""``fad_inf``: FAD extrapolated to infinitely many clips (can be negative)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric
from ddspbench.suite.metrics.standard.fad import from_comparison

NAME = "fad_inf"


def compute(ctx: Any) -> Measured:
    return from_comparison(ctx, NAME)


FAD_INF = declare_metric(NAME, unit="1", role=Role.QUALITY, signed=True, compute=compute,
                         description="FAD extrapolated to infinite sample size (FAD-infinity)")
