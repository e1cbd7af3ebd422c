"""Imports every dataset builder and f0 tracker module so they register (filled in by the data work)."""

from __future__ import annotations
