"""``kad``: Kernel Audio Distance (an unbiased estimator: can be negative)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric
from ddspbench.suite.metrics.standard.fad import from_comparison

NAME = "kad"


def compute(ctx: Any) -> Measured:
    return from_comparison(ctx, NAME)


KAD = declare_metric(NAME, unit="1", role=Role.QUALITY, signed=True, compute=compute,
                     description="Kernel Audio Distance (100 x unbiased MMD^2, Gaussian kernel, median bandwidth) "
                                 "between target and model clips")
