"""Seeds of the per-clip noise streams, shared by the families (which draw them) and the evaluation (which
asks for them), so neither has to import the other."""

from __future__ import annotations

__all__ = ["stream_seeds"]


def stream_seeds(seed: int, start: int, count: int) -> list[int]:
    """The stream seeds of items ``start .. start + count - 1`` of a long list seeded by ``seed``.

    ``init_state(n, seed=stream_seeds(s, 0, n))`` equals ``init_state(n, seed=s)``, and a clip keeps its
    noise however the list is cut into batches (pass ``stream_seeds(s, first_index, batch)``).
    """
    return [int(seed) * 1_000_003 + int(start) + j for j in range(int(count))]
