"""``params``: parameter count (int8-packed weights counted as the floats they stand for)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def count(ctx: Any, name: str) -> Measured:
    from ddspbench.suite.metrics.size import count_params

    return Measured(float(ctx.once("params", lambda: count_params(ctx.model))[name]),
                    "parameters incl. int8-packed weights (float-equivalent count)")


PARAMS = declare_metric("params", unit="count", role=Role.COST, group="size", column=7, terminal_column=4,
                        compute=lambda ctx: count(ctx, "params"), description="parameter count (total)")
