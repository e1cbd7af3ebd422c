"""``p99_ms_stream_<b>``: 99th percentile time of one buffer, one metric per streaming buffer size."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import STREAM_BUFFERS, Measured, Role, declare_metric


def compute(ctx: Any, buffer: int) -> Measured:
    s = ctx.speed()["stream"][buffer]
    return Measured(s["p99_ms"], f"{buffer}-sample buffers, state carried, {s['buffers']} buffers, {ctx.speed_suffix()}")


def _declare(b: int) -> None:
    declare_metric(f"p99_ms_stream_{b}", unit="ms", role=Role.SPEED, group="stream", buffer=b,
                   compute=lambda ctx: compute(ctx, b),
                   description=f"{DESCRIPTION.format(b=b)}")


DESCRIPTION = "99th percentile processing time of one {b}-sample buffer"
for _b in STREAM_BUFFERS:
    _declare(_b)
