"""Fill every registry: import the packages whose modules register plug-ins.

``baselines`` and ``compressors`` import each of their plug-in modules explicitly in their
``__init__``; ``suite.data`` registers the datasets and f0 trackers; ``suite.metrics`` the
embeddings; ``baselines.export`` the export back-ends the speed metrics time. The global registries
of :mod:`suite.registry` call :func:`load_catalog` at their first lookup, so no other code needs to.
"""

from __future__ import annotations

import importlib

__all__ = ["load_catalog", "PLUGIN_PACKAGES"]

PLUGIN_PACKAGES = ("ddspbench.suite.records", "ddspbench.suite.data.builders", "ddspbench.suite.metrics", "ddspbench.baselines", "ddspbench.baselines.export", "ddspbench.baselines.native",
                   "ddspbench.compressors")

_state = "empty"


def load_catalog() -> None:
    """Import every plug-in package once (idempotent; a lookup made while the packages import is served
    with what is registered so far instead of importing them again)."""
    global _state
    if _state != "empty":
        return
    _state = "loading"
    try:
        for name in PLUGIN_PACKAGES:
            importlib.import_module(name)
    except BaseException:
        _state = "empty"
        raise
    _state = "loaded"
