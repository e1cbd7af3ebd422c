"""``kad``: Kernel Audio Distance (an unbiased estimator: can be negative)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric

NAME = "kad"


def compute(ctx: Any) -> Measured:
    out, defs = ctx.compared()
    if out is None:
        return Measured(None, defs[NAME])
    interval = out.get("intervals", {}).get(NAME)
    return Measured(out.get(NAME), defs[NAME], interval=list(interval) if interval is not None else None)


KAD = declare_metric(NAME, unit="1", role=Role.QUALITY, signed=True, compute=compute,
                     description="Kernel Audio Distance (100 x unbiased MMD^2, Gaussian kernel, median bandwidth) "
                                 "between target and model clips")
