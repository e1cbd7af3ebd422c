"""The DDSP model families (the uncompressed reference points), one module per family.

Importing this package registers every family in ``suite.registry.FAMILIES`` and every named
size in ``suite.registry.SIZES``.
"""

from __future__ import annotations

from baselines.hpn import HarmonicPlusNoise

__all__ = ["HarmonicPlusNoise"]
