"""Harmonic-plus-Noise (HpN) DDSP synthesizer, the reference's main family.

Paper: Engel et al., "DDSP: Differentiable Digital Signal Processing", ICLR 2020; sizes and details
as in Giudici et al., "Distilling DDSP", JAES 2025 (github.com/gregogiudici/distilling-ddsp).
REFERENCE §2: a GRU decoder with three heads (amplitude 1, harmonic_distribution 100, noise_bands 65)
drives an additive bank of 100 harmonics plus filtered noise, followed by a learnable reverb.
Full (hidden 512): 4,314,408 parameters; reduced (hidden 16): 23,512.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ddspbench.baselines import dsp
from ddspbench.baselines._base import DecoderFamily, SizeSpec, register_sizes
from ddspbench.suite.registry import FAMILIES
from ddspbench.suite.traits import FamilyTraits

__all__ = ["HarmonicPlusNoise"]


@register_sizes
@FAMILIES.register("hpn", description="Harmonic-plus-Noise DDSP (GRU decoder, 100 harmonics, 65 noise bands, reverb)")
class HarmonicPlusNoise(DecoderFamily):
    """Harmonic-plus-Noise synthesizer.

    Args:
        hidden: width of every decoder layer (512 full, 16 reduced).
        widths: per-layer widths instead of ``hidden`` (a pruned decoder):
            ``{"f0_mlp": [a, b, c], "loudness_mlp": [a, b, c], "gru": g, "out_mlp": [a, b, c]}``.
        n_harmonics: harmonics in the additive bank (100).
        n_bands: noise filter bands evenly spanning 0..8 kHz (65).
    """

    family: ClassVar[str] = "hpn"
    traits: ClassVar[FamilyTraits] = FamilyTraits(size_keys=("hidden", "widths"), engine="harmonic")
    control_names: ClassVar[tuple[str, ...]] = ("amplitude", "harmonic_distribution", "noise_bands")
    tonal_head: ClassVar[str] = "harmonic_distribution"
    tonal_key: ClassVar[str] = "n_harmonics"
    SIZE_SPECS: ClassVar[tuple[SizeSpec, ...]] = (
        SizeSpec("full", {"hidden": 512}, 4_314_408, note="hidden 512 (reference implementation: 4,314,408 params)"),
        SizeSpec("reduced", {"hidden": 16}, 23_512, note="hidden 16 (reference implementation: 23,512 params)"),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        config = self._normalise(dict(kwargs))
        self._build(config)
        self.register_buffer("_harmonics", torch.arange(1, config["n_harmonics"] + 1, dtype=torch.float32),
                             persistent=False)
        self._finish_init(config)

    @classmethod
    def _default_tonal(cls) -> int:
        return 100

    def _tonal(self, sc: Mapping[str, Tensor], f0: Tensor, phase: Tensor) -> Tensor:
        k = sc["harmonic_distribution"].shape[-1]
        if self._harmonics.shape[0] != k:  # the head was resized in place (DSP-aware pruning)
            self._harmonics = torch.arange(1, k + 1, dtype=torch.float32, device=self._harmonics.device)
        amps = dsp.harmonic_amplitudes(sc["amplitude"], sc["harmonic_distribution"], f0, self.sample_rate,
                                       harmonics=self._harmonics)
        return dsp.harmonic_bank(phase, amps, self._harmonics)
