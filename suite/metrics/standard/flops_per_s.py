"""``flops_per_s``: decoder FLOPs per second of audio."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def compute(ctx: Any) -> Measured:
    from ddspbench.suite.metrics.size import decoder_flops

    fl = decoder_flops(ctx.model)
    return Measured(fl["flops_per_s"], f"{fl['scope']} FLOPs/s (FlopCounterMode + formula); not counted: {fl['not_counted']}")


FLOPS_PER_S = declare_metric("flops_per_s", unit="FLOP/s", role=Role.COST, group="size", compute=compute,
                             description="decoder FLOPs per second of audio (GRU included)")
