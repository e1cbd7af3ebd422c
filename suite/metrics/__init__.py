"""Metrics: pure functions (MSS, FAD, KAD, speed, memory, size) with I/O and caching around them."""

from __future__ import annotations
