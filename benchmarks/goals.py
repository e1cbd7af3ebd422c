"""The single-thread RTF goals of issue 3, in one place for every benchmark script (targets, not measurements).

Keys: ``"offline"`` (one 4 s clip) and the streaming buffer size in samples as a string (``"64"``).
"""

from __future__ import annotations

__all__ = ["GOALS"]

GOALS: dict[str, dict[str, float]] = {
    "hpn/full": {"offline": 0.05, "64": 0.15},
    "wavetable/full": {"64": 0.2},
    "hpn/reduced": {"64": 0.05},
    "wavetable/reduced": {"64": 0.05},
    "ddx7/reduced": {"64": 0.05},
}
