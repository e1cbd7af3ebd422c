"""``params_trainable``: trainable parameter count."""

from __future__ import annotations

from ddspbench.suite.metrics.declare import Role, declare_metric
from ddspbench.suite.metrics.standard.params import count

PARAMS_TRAINABLE = declare_metric("params_trainable", unit="count", role=Role.COST, group="size",
                                  compute=lambda ctx: count(ctx, "params_trainable"),
                                  description="trainable parameter count")
