"""``fad``: Frechet Audio Distance between the target and the model's clips (set-level, not paired)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric

NAME = "fad"


def from_comparison(ctx: Any, name: str) -> Measured:
    """One distance of the evaluation's embedding comparison (FAD, FAD-infinity, KAD: computed together, once)."""
    out, defs = ctx.compared()
    if out is None:
        return Measured(None, defs[name])
    interval = out.get("intervals", {}).get(name)
    return Measured(out.get(name), defs[name], interval=list(interval) if interval is not None else None)


def compute(ctx: Any) -> Measured:
    return from_comparison(ctx, NAME)


FAD = declare_metric(NAME, unit="1", role=Role.QUALITY, headline=2, column=2, terminal_column=3, compute=compute,
                     description="Frechet Audio Distance between target and model clips (embedding in metric_defs)")
