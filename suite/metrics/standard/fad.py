"""``fad``: Frechet Audio Distance between the target and the model's clips (set-level, not paired)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric

NAME = "fad"


def compute(ctx: Any) -> Measured:
    out, defs = ctx.compared()
    if out is None:
        return Measured(None, defs[NAME])
    interval = out.get("intervals", {}).get(NAME)
    return Measured(out.get(NAME), defs[NAME], interval=list(interval) if interval is not None else None)


FAD = declare_metric(NAME, unit="1", role=Role.QUALITY, headline=2, column=2, terminal_column=3, compute=compute,
                     description="Frechet Audio Distance between target and model clips (embedding in metric_defs)")
