"""``miss_rate_stream_<b>``: share of buffers that missed their deadline, one metric per streaming buffer size."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import STREAM_BUFFERS, Measured, Role, declare_metric


def compute(ctx: Any, buffer: int) -> Measured:
    s = ctx.speed()["stream"][buffer]
    return Measured(s["miss_rate"], f"{buffer}-sample buffers, state carried, {s['buffers']} buffers, {ctx.speed_suffix()}")


def _declare(b: int) -> None:
    declare_metric(f"miss_rate_stream_{b}", unit="1", role=Role.SPEED, group="stream", buffer=b,
                   compute=lambda ctx: compute(ctx, b),
                   description=f"{DESCRIPTION.format(b=b)}")


DESCRIPTION = "share of {b}-sample buffers that took longer than their duration"
for _b in STREAM_BUFFERS:
    _declare(_b)
