"""``peak_rss_bytes``: peak RSS of a fresh process streaming through the native engine."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def compute(ctx: Any) -> Measured:
    from ddspbench.suite.metrics import memory
    from ddspbench.suite.traits import engine_support

    why = engine_support(ctx.model)
    if why is not None:
        return Measured(None, f"not measured: {why}")
    pr = ctx.in_child(memory.peak_engine_rss)
    if isinstance(pr, str):
        return Measured(None, pr)
    return Measured(float(pr["peak_rss_bytes"]), f"4 s clip streamed at {pr['buffer']}-sample buffers, "
                                                 f"{pr['method']}, threads={pr['threads']}")


PEAK_RSS_BYTES = declare_metric("peak_rss_bytes", unit="B", role=Role.MEMORY, group="memory", compute=compute,
                                description="peak RSS of a fresh process streaming 4 s through the native engine at "
                                            "64-sample buffers (memory_profiler + VmHWM), weights included, no "
                                            "baseline subtracted")
