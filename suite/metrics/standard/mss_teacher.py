"""``mss_teacher``: multi-scale spectral distance to the teacher's audio (paired per clip)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric
from ddspbench.suite.metrics.standard.mss import mss_against


def compute(ctx: Any) -> Measured:
    return mss_against(ctx, ctx.teacher_audio())


MSS_TEACHER = declare_metric("mss_teacher", unit="1", role=Role.QUALITY, paired=True, column=3, compute=compute,
                             description="multi-scale spectral distance to the teacher's audio, mean over test clips")
