"""DSP-aware pruning: a smaller synthesizer (fewer harmonics, noise bands or wavetables).

Each synth component removed also removes its row of the decoder's output head, so the head and the
synth's work both shrink. What is kept is decided from the model's own average controls on the
training data (up to 16 clips):

* ``n_harmonics`` (HpN): the synth numbers harmonics ``1..K`` (harmonic ``k`` sits at ``k f0``), so
  only a prefix can be kept; the lowest ``K`` are kept and the report gives the share of the average
  harmonic energy ``E_k = mean_t (a_t d_{t,k})^2`` they carry.
* ``n_bands`` (HpN, Wavetable): bands span 0..8 kHz evenly whatever their number, so the band grid
  is resampled: new band ``j`` at position ``j (N-1)/(K-1)`` of the old grid gets the linear
  interpolation of the two neighbouring head rows (weights and bias); the report gives the
  relative error of the interpolated average band magnitudes.
* ``n_wavetables`` (Wavetable): the four fixed sine tables stay; of the learnable tables, the ``K-4``
  with the highest average attention are kept (with their head rows).

The model records ``kept_controls`` (control name -> kept indices or a resampling matrix) so that
control distillation can compare the teacher's controls on the same components.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ddspbench.compressors._base import CompressContext
from ddspbench.compressors._rebuild import rebuild
from ddspbench.suite.errors import UserError

__all__ = ["dsp_prune", "average_controls", "band_resampler"]


@torch.no_grad()
def average_controls(model: Any, ctx: CompressContext, max_clips: int = 16) -> dict[str, torch.Tensor]:
    """Mean synth-space controls over frames and clips of the training data: name -> ``(k,)``."""
    clips = ctx.require_train_set("DSP-aware pruning")
    n = min(len(clips), max_clips)
    clips = clips.subset(slice(0, n))
    if ctx.frames:
        clips = clips.crop(min(int(ctx.frames), int(clips.f0_hz.shape[1])))
    was = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    try:
        for b in clips.batches(8):
            f0 = torch.as_tensor(b["f0_hz"], dtype=torch.float32)
            loud = torch.as_tensor(b["loudness_db"], dtype=torch.float32)
            sc = model.synth_controls(model(f0, loud)["controls"])
            for name, v in sc.items():
                if name == "harmonic_distribution":
                    dist = v / v.sum(-1, keepdim=True)
                    sums["harmonic_energy"] = sums.get("harmonic_energy", 0) + ((sc["amplitude"] * dist) ** 2).sum((0, 1))
                if name == "wave_attention":
                    v = v / v.sum(-1, keepdim=True)
                sums[name] = sums.get(name, 0) + v.sum((0, 1))
    finally:
        model.train(was)
    frames = n * int(clips.f0_hz.shape[1])
    return {k: v / frames for k, v in sums.items()}


def band_resampler(n_old: int, n_new: int) -> torch.Tensor:
    """``(n_new, n_old)`` linear-interpolation matrix from an even grid of ``n_old`` points to ``n_new``."""
    pos = torch.linspace(0, n_old - 1, n_new, dtype=torch.float64)
    lo = pos.floor().long().clamp(max=n_old - 1)
    hi = (lo + 1).clamp(max=n_old - 1)
    frac = pos - lo.double()
    m = torch.zeros(n_new, n_old, dtype=torch.float64)
    m[torch.arange(n_new), lo] += 1 - frac
    m[torch.arange(n_new), hi] += frac
    return m.float()


def _new_head(old: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    head = nn.Linear(old.in_features, weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return head


def dsp_prune(model: Any, ctx: CompressContext, *, n_harmonics: int | None = None, n_bands: int | None = None,
              n_wavetables: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Shrink the synth of ``model`` (modified, then rebuilt from its config); returns it and a report."""
    family = getattr(model, "family", None)
    heads: Any = getattr(getattr(model, "decoder", None), "heads", None)
    if family not in ("hpn", "wavetable") or not isinstance(heads, nn.ModuleDict):
        raise UserError(f"DSP-aware pruning applies to hpn and wavetable models, not {family}")
    if n_harmonics is not None and family != "hpn":
        raise UserError("n_harmonics applies to the hpn family")
    if n_wavetables is not None and family != "wavetable":
        raise UserError("n_wavetables applies to the wavetable family")
    avg = average_controls(model, ctx)
    old: Any
    report: dict[str, Any] = {}
    kept: dict[str, Any] = dict(getattr(model, "kept_controls", {}) or {})

    if n_harmonics is not None:
        old = heads["harmonic_distribution"]
        k = int(n_harmonics)
        if not 1 <= k <= old.out_features:
            raise UserError(f"n_harmonics must be in 1..{old.out_features}, got {k}")
        energy = avg["harmonic_energy"]
        heads["harmonic_distribution"] = _new_head(old, old.weight[:k], old.bias[:k])
        kept["harmonic_distribution"] = list(range(k))
        report["harmonics"] = {"from": old.out_features, "to": k,
                               "energy_kept": float(energy[:k].sum() / energy.sum().clamp_min(1e-12))}

    if n_bands is not None:
        old = heads["noise_bands"]
        k = int(n_bands)
        if not 2 <= k <= old.out_features:
            raise UserError(f"n_bands must be in 2..{old.out_features}, got {k}")
        m = band_resampler(old.out_features, k)
        heads["noise_bands"] = _new_head(old, m @ old.weight, m @ old.bias)
        mean_bands = avg["noise_bands"]
        back = band_resampler(k, old.out_features) @ (m @ mean_bands)
        kept["noise_bands"] = m
        report["bands"] = {"from": old.out_features, "to": k,
                           "mean_magnitude_rel_error": float((back - mean_bands).abs().sum() / mean_bands.abs().sum().clamp_min(1e-12))}

    if n_wavetables is not None:
        old = heads["wave_attention"]
        n_fixed = int(model.wavetables_fixed.shape[0])
        k = int(n_wavetables)
        if not n_fixed + 1 <= k <= old.out_features:
            raise UserError(f"n_wavetables must be in {n_fixed + 1}..{old.out_features}, got {k}")
        att = avg["wave_attention"]
        learn = torch.argsort(att[n_fixed:], descending=True)[: k - n_fixed].sort().values
        rows = torch.cat([torch.arange(n_fixed), learn + n_fixed])
        heads["wave_attention"] = _new_head(old, old.weight[rows], old.bias[rows])
        with torch.no_grad():
            model.wavetables = nn.Parameter(model.wavetables[learn].clone())
        kept["wave_attention"] = rows.tolist()
        report["wavetables"] = {"from": old.out_features, "to": k, "kept": rows.tolist(),
                                "attention_kept": float(att[rows].sum() / att.sum().clamp_min(1e-12))}

    fresh: Any = rebuild(model)
    fresh.kept_controls = kept
    return fresh, report
