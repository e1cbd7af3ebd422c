"""``rtf_stream_<b>``: streaming real-time factor, one metric per streaming buffer size."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import STREAM_BUFFERS, Measured, Role, declare_metric


def compute(ctx: Any, buffer: int) -> Measured:
    s = ctx.speed()["stream"][buffer]
    return Measured(s["rtf"], f"{buffer}-sample buffers, state carried, {s['buffers']} buffers, {ctx.speed_suffix()}")


def _declare(b: int) -> None:
    declare_metric(f"rtf_stream_{b}", unit="s/s", role=Role.SPEED, group="stream", buffer=b,
                   compute=lambda ctx: compute(ctx, b), column={64: 4, 256: 5}.get(b), terminal_column=1 if b == 64 else None,
                   description=f"{DESCRIPTION.format(b=b)}")


DESCRIPTION = "streaming real-time factor at {b}-sample buffers, state carried, median"
for _b in STREAM_BUFFERS:
    _declare(_b)
