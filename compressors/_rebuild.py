"""Rebuilding a structurally changed model from its own config (pruning, DSP-aware pruning).

A pruned model re-reads its config (``sync_config``) and a fresh model of that config takes its
weights, which proves the config describes the architecture ``load_checkpoint`` will build.
Weight norm (DDX7) is folded into plain weights for pruning and put back on the rebuilt model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import FAMILIES

__all__ = ["rebuild", "weight_norm_api", "strip_weight_norm", "reapply_weight_norm"]


def weight_norm_api(m: nn.Module) -> str | None:
    """``"legacy"`` (``weight_g``/``weight_v`` hooks), ``"param"`` (parametrizations) or ``None``."""
    if hasattr(m, "weight_g") and hasattr(m, "weight_v"):
        return "legacy"
    if parametrize.is_parametrized(m, "weight"):
        return "param"
    return None


def strip_weight_norm(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Fold weight norm into plain weights (torch-pruning slices ``weight``, not ``g``/``v``).

    Returns the modules that had it, with the API they used.
    """
    found = [(m, api) for m in model.modules() if (api := weight_norm_api(m)) is not None]
    for m, api in found:
        if api == "legacy":
            torch.nn.utils.remove_weight_norm(m)
        else:
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return found


def reapply_weight_norm(found: list[tuple[nn.Module, str]]) -> None:
    """Weight norm again on plain weights: ``v = w``, ``g = ||w||`` per output channel."""
    for m, api in found:
        if api == "legacy":
            torch.nn.utils.weight_norm(m)
        else:
            weight_norm(m)


def rebuild(pruned: Any) -> nn.Module:
    """A fresh model built from the pruned model's re-read config, carrying the pruned weights.

    Proves the config describes the pruned architecture (what :func:`suite.checkpoint.load_checkpoint`
    will do). When ``pruned`` holds plain weights (weight norm folded for pruning), the fresh
    model's weight-normed layers get them back as ``v = w``, ``g = ||w||``.
    """
    sync = getattr(pruned, "sync_config", None)
    if not callable(sync):
        raise UserError(f"{type(pruned).__name__} cannot re-read its config after pruning (no sync_config)")
    config = sync()
    fresh: Any = FAMILIES.get(pruned.family)(**config)
    plain = not any(weight_norm_api(m) for m in pruned.modules())
    found = strip_weight_norm(fresh) if plain else []
    fresh.load_state_dict(pruned.state_dict())
    reapply_weight_norm(found)
    for attr in ("size_name", "ddsp_transforms", "kept_controls"):
        if hasattr(pruned, attr):
            setattr(fresh, attr, getattr(pruned, attr))
    fresh.train(pruned.training)
    return fresh
