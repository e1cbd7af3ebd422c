"""``param_bytes``: bytes of parameters and buffers as held in memory."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def compute(ctx: Any) -> Measured:
    from ddspbench.suite.metrics import memory

    return Measured(float(memory.param_bytes(ctx.model)), "parameters + buffers + packed int8 weights, bytes in memory")


PARAM_BYTES = declare_metric("param_bytes", unit="B", role=Role.MEMORY, group="memory", headline=1, column=8,
                             terminal_column=2, compute=compute,
                             description="bytes of parameters and buffers as stored in memory")
