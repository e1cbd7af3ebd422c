"""What the benchmark scripts share: the issue-3 goals, the load average, writing a results page.

``GOALS`` are the single-thread RTF goals of issue 3 (targets, not measurements), keyed by
``"offline"`` (one 4 s clip) and the streaming buffer size in samples as a string (``"64"``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["GOALS", "cpu_name", "load_average", "write_results"]

GOALS: dict[str, dict[str, float]] = {
    "hpn/full": {"offline": 0.05, "64": 0.15},
    "wavetable/full": {"64": 0.2},
    "hpn/reduced": {"64": 0.05},
    "wavetable/reduced": {"64": 0.05},
    "ddx7/reduced": {"64": 0.05},
}


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (else what platform knows)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, ...]:
    """The 1/5/15-minute load averages, rounded (recorded before and after every run)."""
    return tuple(round(x, 2) for x in os.getloadavg())


def write_results(out: Path, data: dict[str, Any], to_markdown: Callable[[dict[str, Any]], str]) -> None:
    """``out`` (Markdown) and the same name with ``.json`` beside it; prints the page."""
    out.write_text(to_markdown(data))
    out.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print(out.read_text())
