"""``p99_ms_stream_<b>``: 99th percentile time of one buffer, one metric per streaming buffer size."""

from __future__ import annotations

from ddspbench.suite.metrics.standard.rtf_stream import declare_per_buffer

declare_per_buffer("p99_ms", "ms", "99th percentile processing time of one {b}-sample buffer")
