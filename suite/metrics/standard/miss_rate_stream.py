"""``miss_rate_stream_<b>``: share of buffers that missed their deadline, one metric per streaming buffer size."""

from __future__ import annotations

from ddspbench.suite.metrics.standard.rtf_stream import declare_per_buffer

declare_per_buffer("miss_rate", "1", "share of {b}-sample buffers that took longer than their duration")
