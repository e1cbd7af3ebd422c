"""Wavetable DDSP synthesizer.

Paper: Shan et al., "Differentiable Wavetable Synthesis", ICASSP 2022; the variant and sizes of
Giudici et al., "Distilling DDSP", JAES 2025. REFERENCE §2: the HpN decoder with heads amplitude (1),
wave_attention (20), noise_bands (65); 20 wavetables of 512 samples, of which tables 0-3 are fixed
sines of 1-4 cycles (not trainable) and 4-19 learnable (N(0, 0.01) init, tanh at use); a
linear-interpolated wavetable oscillator; filtered noise and the reverb as in HpN.
Full (hidden 512): 4,283,608 parameters (4,281,560 trainable); reduced (hidden 16): 32,392 (30,344).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ddspbench.baselines import dsp
from ddspbench.baselines._base import DecoderFamily, SizeSpec, register_sizes
from ddspbench.suite.registry import FAMILIES
from ddspbench.suite.traits import FamilyTraits

__all__ = ["Wavetable", "TABLE_LENGTH", "N_FIXED_TABLES"]

TABLE_LENGTH = 512
N_FIXED_TABLES = 4


@register_sizes
@FAMILIES.register("wavetable", description="Wavetable DDSP (GRU decoder, 20 x 512 wavetables, 65 noise bands, reverb)")
class Wavetable(DecoderFamily):
    """Wavetable synthesizer.

    Args:
        hidden: width of every decoder layer (512 full, 16 reduced).
        widths: per-layer widths instead of ``hidden`` (see :class:`baselines.hpn.HarmonicPlusNoise`).
        n_wavetables: wavetables (20); the first ``min(4, n)`` are the fixed sines.
        n_bands: noise filter bands (65).

    Parameters ``wavetables_fixed`` ``(min(4, n), 512)`` (``requires_grad=False``, counted in the
    total) and ``wavetables`` ``(n - 4, 512)`` (raw; ``tanh`` is applied at use).
    """

    family: ClassVar[str] = "wavetable"
    traits: ClassVar[FamilyTraits] = FamilyTraits(size_keys=("hidden", "widths"), engine="wavetable")
    control_names: ClassVar[tuple[str, ...]] = ("amplitude", "wave_attention", "noise_bands")
    tonal_head: ClassVar[str] = "wave_attention"
    tonal_key: ClassVar[str] = "n_wavetables"
    SIZE_SPECS: ClassVar[tuple[SizeSpec, ...]] = (
        SizeSpec("full", {"hidden": 512}, 4_283_608, 4_281_560,
                 note="hidden 512 (reference implementation: 4,283,608 params, 4,281,560 trainable)"),
        SizeSpec("reduced", {"hidden": 16}, 32_392, 30_344,
                 note="hidden 16 (reference implementation: 32,392 params, 30,344 trainable)"),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        config = self._normalise(dict(kwargs))
        self._build(config)
        n = config["n_wavetables"]
        n_fixed = min(N_FIXED_TABLES, n)
        t = torch.arange(TABLE_LENGTH, dtype=torch.float32) / TABLE_LENGTH
        sines = torch.stack([torch.sin(2 * math.pi * (k + 1) * t) for k in range(n_fixed)])
        self.wavetables_fixed = nn.Parameter(sines, requires_grad=False)
        self.wavetables = nn.Parameter(torch.randn(n - n_fixed, TABLE_LENGTH) * 0.01)
        self._finish_init(config)

    @classmethod
    def _default_tonal(cls) -> int:
        return 20

    def tables(self) -> Tensor:
        """All wavetables as used by the oscillator ``(n_wavetables, 512)``."""
        return torch.cat([self.wavetables_fixed, torch.tanh(self.wavetables)], dim=0)

    def _tonal(self, sc: Mapping[str, Tensor], f0: Tensor, phase: Tensor) -> Tensor:
        att = sc["wave_attention"]
        weights = att * (sc["amplitude"] / att.sum(-1, keepdim=True))  # normalised attention x amplitude
        return dsp.wavetable_oscillator(phase, self.tables().to(weights.dtype), weights)
