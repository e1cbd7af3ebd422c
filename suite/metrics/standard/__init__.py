"""The standard metrics, one declaration per file (:mod:`suite.metrics.declare`).

Each module declares its metric(s) when imported; this package imports them all, in the order reports and
metric groups list them (so the imports are not sorted). A plug-in metric declares itself the same way from
its own module.
"""
# isort: skip_file

from __future__ import annotations

from ddspbench.suite.metrics.standard import (  # noqa: F401 - each import declares its metric(s)
    mss,
    mss_teacher,
    fad,
    fad_inf,
    kad,
    rtf_offline,
    params,
    params_trainable,
    param_bytes,
    checkpoint_bytes,
    peak_mem_bytes,
    engine_bytes,
    peak_rss_bytes,
    flops_per_s,
    train_seconds,
    rtf_stream,
    p99_ms_stream,
    miss_rate_stream,
)

__all__ = ["mss", "mss_teacher", "fad", "fad_inf", "kad", "rtf_offline", "params", "params_trainable", "param_bytes", "checkpoint_bytes", "peak_mem_bytes", "engine_bytes", "peak_rss_bytes", "flops_per_s", "train_seconds", "rtf_stream", "p99_ms_stream", "miss_rate_stream"]
