"""``rtf_offline``: real-time factor of the whole clip in one call."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric


def compute(ctx: Any) -> Measured:
    off = ctx.speed()["offline"]
    secs = ctx.test_set.f0_hz.shape[-1] / 250.0
    return Measured(off["rtf"], f"whole {secs:g} s clip, median of {off['repeats']}, {ctx.speed_suffix()}")


RTF_OFFLINE = declare_metric("rtf_offline", unit="s/s", role=Role.SPEED, group="rtf", column=6, terminal_column=5,
                             compute=compute,
                             description="real-time factor, whole 4 s clip, median over repeats (processing s per audio s)")
