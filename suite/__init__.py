"""ddspbench: the harness (registry, data, training loop, metrics, sweep, results store, CLI)."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
