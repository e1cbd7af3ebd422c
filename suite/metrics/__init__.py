"""Metrics: pure functions (MSS, FAD, KAD, speed, memory, size) with I/O and caching around them.

Importing this package registers the FAD embedding back-ends in ``suite.registry.EMBEDDINGS``
(``logmel``, ``aisfx``, and the optional ``vggish``/``pann``/``encodec``/``clap``). Each metric a record can carry
is declared once, in its own file under ``standard/`` (:mod:`suite.metrics.declare`: unit, direction, role,
pairing, report placement, computation); ``suite.records`` imports them.
"""

from __future__ import annotations

from ddspbench.suite.metrics import embeddings, pretrained

__all__ = ["embeddings", "pretrained"]
