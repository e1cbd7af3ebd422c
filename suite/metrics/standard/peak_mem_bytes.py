"""``peak_mem_bytes``: peak inference RSS of a fresh process, baseline subtracted."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def compute(ctx: Any) -> Measured:
    from ddspbench.suite.metrics import memory

    pm = ctx.in_child(memory.peak_inference_memory)
    if isinstance(pm, str):
        return Measured(None, pm)
    return Measured(float(pm["peak_mem_bytes"]), f"4 s clip on CPU, {pm['method']}, threads={pm['threads']}")


PEAK_MEM_BYTES = declare_metric("peak_mem_bytes", unit="B", role=Role.MEMORY, group="memory", headline=2, column=9,
                                compute=compute,
                                description="peak inference RSS minus baseline, fresh subprocess, 4 s clip")
