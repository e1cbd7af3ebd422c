"""Fill every registry: import the packages whose modules register plug-ins.

``baselines`` and ``compressors`` import each of their plug-in modules explicitly in their
``__init__``; ``suite.data`` registers the datasets and f0 trackers; ``suite.metrics`` the
embeddings. Call :func:`load_catalog` before looking anything up by name.
"""

from __future__ import annotations

import importlib

__all__ = ["load_catalog", "PLUGIN_PACKAGES"]

PLUGIN_PACKAGES = ("suite.records", "suite.data.builders", "suite.metrics", "baselines", "compressors")

_loaded = False


def load_catalog() -> None:
    """Import every plug-in package once (idempotent)."""
    global _loaded
    if _loaded:
        return
    for name in PLUGIN_PACKAGES:
        importlib.import_module(name)
    _loaded = True
