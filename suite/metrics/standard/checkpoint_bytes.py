"""``checkpoint_bytes``: bytes of the serialized checkpoint file."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def compute(ctx: Any) -> Measured:
    from ddspbench.suite.metrics import memory

    return Measured(float(memory.checkpoint_bytes(ctx.checkpoint())), "size of the ddspbench checkpoint file")


CHECKPOINT_BYTES = declare_metric("checkpoint_bytes", unit="B", role=Role.MEMORY, group="memory", compute=compute,
                                  description="bytes of the serialized checkpoint file")
