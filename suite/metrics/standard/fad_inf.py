"""``fad_inf``: FAD extrapolated to infinitely many clips (can be negative)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric

NAME = "fad_inf"


def compute(ctx: Any) -> Measured:
    out, defs = ctx.compared()
    if out is None:
        return Measured(None, defs[NAME])
    interval = out.get("intervals", {}).get(NAME)
    return Measured(out.get(NAME), defs[NAME], interval=list(interval) if interval is not None else None)


FAD_INF = declare_metric(NAME, unit="1", role=Role.QUALITY, signed=True, compute=compute,
                         description="FAD extrapolated to infinite sample size (FAD-infinity)")
