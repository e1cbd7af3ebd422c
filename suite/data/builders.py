"""Imports every dataset builder and f0 tracker module so that they register.

``suite.catalog.load_catalog()`` imports this module; importing a builder module registers its
dataset in ``DATASETS`` and the tracker module its trackers in ``F0_TRACKERS``.
"""

from __future__ import annotations

from ddspbench.suite.data import f0, folder, soundfont, synthetic

__all__ = ["f0", "folder", "soundfont", "synthetic"]
