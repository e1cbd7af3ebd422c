"""Metrics: pure functions (MSS, FAD, KAD, speed, memory, size) with I/O and caching around them.

Importing this package registers the FAD embedding back-ends in ``suite.registry.EMBEDDINGS``
(``logmel``, ``aisfx``, and the optional ``vggish``/``pann``/``encodec``/``clap``).
"""

from __future__ import annotations

from ddspbench.suite.metrics import embeddings, pretrained

__all__ = ["embeddings", "pretrained"]
