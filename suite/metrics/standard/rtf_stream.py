"""``rtf_stream_<b>``: streaming real-time factor, one metric per streaming buffer size."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import STREAM_BUFFERS, Measured, Role, declare_metric


def stream_measure(ctx: Any, kind: str, buffer: int) -> Measured:
    """One figure (``rtf``, ``p99_ms``, ``miss_rate``) of the evaluation's streaming measurement at ``buffer``."""
    s = ctx.speed()["stream"][buffer]
    return Measured(s[kind], f"{buffer}-sample buffers, state carried, {s['buffers']} buffers, {ctx.speed_suffix()}")


def declare_per_buffer(kind: str, unit: str, description: str, **placed: dict[int, int]) -> None:
    """Declare ``<kind>_stream_<b>`` for every streaming buffer ``b`` (``description`` with ``{b}``); ``placed``:
    ``column``/``terminal_column`` by buffer."""
    for b in STREAM_BUFFERS:
        where: dict[str, Any] = {k: at.get(b) for k, at in placed.items()}
        declare_metric(f"{kind}_stream_{b}", unit=unit, role=Role.SPEED, group="stream", buffer=b,
                       compute=lambda ctx, b=b: stream_measure(ctx, kind, b), description=description.format(b=b),
                       **where)


declare_per_buffer("rtf", "s/s", "streaming real-time factor at {b}-sample buffers, state carried, median",
                   column={64: 4, 256: 5}, terminal_column={64: 1})
