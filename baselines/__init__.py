"""The DDSP model families (the uncompressed reference points), one module per family.

Importing this package registers every family in ``suite.registry.FAMILIES`` and every named
size in ``suite.registry.SIZES``.
"""

from __future__ import annotations

from ddspbench.baselines.ddx7 import DDX7
from ddspbench.baselines.hpn import HarmonicPlusNoise
from ddspbench.baselines.wavetable import Wavetable

__all__ = ["DDX7", "HarmonicPlusNoise", "Wavetable"]
