"""``engine_bytes``: what the native engine holds for one stream."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def compute(ctx: Any) -> Measured:
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.metrics import memory

    try:
        eb = memory.engine_bytes(ctx.model, 64)
    except UserError as exc:  # a model the engine cannot run: say why in the row, keep the rest
        return Measured(None, f"not measured: {exc}")
    # the definition is the same for every candidate (records are compared by it); the parts are in the total
    return Measured(float(eb["total"]), "native engine, one stream, 64-sample buffers: weights as stored + constants "
                                        "+ streaming state + scratch, bytes")


ENGINE_BYTES = declare_metric("engine_bytes", unit="B", role=Role.MEMORY, group="memory", compute=compute,
                              description="bytes the native engine holds for one stream at 64-sample buffers: weights "
                                          "as stored, constants, streaming state, per-call scratch (from the engine's "
                                          "arrays)")
