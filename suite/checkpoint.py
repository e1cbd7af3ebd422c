"""Checkpoints that rebuild their model without the user restating it.

A checkpoint is a ``torch.save``d dict of plain types and tensors only (so it loads with
``torch.load(..., weights_only=True)``)::

    {"format": "ddspbench.ckpt/1", "family": "hpn", "size": "full", "config": {...constructor kwargs...},
     "transforms": [{"name": "quantize_dynamic", "params": {...}}, ...],
     "state_dict": {...}, "meta": {...JSON-able: training step, method, provenance...}}

Rebuilding is ``FAMILIES.get(family)(**config)``, then every structural transform in order
(``TRANSFORMS``, e.g. dynamic int8 quantization, which swaps layer types), then ``load_state_dict``.
A transform records itself on the model by appending to ``model.ddsp_transforms``; widths changed
by pruning live in ``config`` (the families accept per-layer widths).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from suite.errors import UserError
from suite.registry import FAMILIES, Registry

__all__ = ["CKPT_FORMAT", "TRANSFORMS", "save_checkpoint", "load_checkpoint", "model_identity", "apply_transform"]

CKPT_FORMAT = "ddspbench.ckpt/1"

TRANSFORMS: Registry[Callable[..., nn.Module]] = Registry("checkpoint transform", from_catalog=True)
"""Structural transforms re-applied on load: name -> fn(model, **params) -> model."""


def model_identity(model: nn.Module) -> dict[str, Any]:
    """The family, size and config a model was built with (what :func:`load_checkpoint` needs)."""
    family = getattr(model, "family", None)
    config = getattr(model, "config", None)
    if not family or config is None:
        raise TypeError(f"{type(model).__name__} is not a ddspbench model (needs .family and .config)")
    return {
        "family": family,
        "size": getattr(model, "size_name", "custom"),
        "config": copy.deepcopy(dict(config)),
        "transforms": copy.deepcopy(list(getattr(model, "ddsp_transforms", []))),
    }


def apply_transform(model: nn.Module, name: str, **params: Any) -> nn.Module:
    """Apply a registered structural transform and record it on the model."""
    out = TRANSFORMS.get(name)(model, **params)
    out.ddsp_transforms = [*getattr(model, "ddsp_transforms", []), {"name": name, "params": dict(params)}]  # type: ignore[assignment]
    for attr in ("family", "size_name", "config"):
        if hasattr(model, attr) and not hasattr(out, attr):
            setattr(out, attr, getattr(model, attr))
    return out


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temp file + rename) and return its path."""
    ident = model_identity(model)
    state = model.state_dict()
    export = getattr(model, "checkpoint_state", None)  # a transform may need plain tensors instead
    if callable(export):
        state = export()
    payload = {"format": CKPT_FORMAT, **ident, "state_dict": state, "meta": dict(meta or {})}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, p)
    return p


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint; returns ``(model in eval mode, meta)``.

    Raises :class:`UserError` (one line) for a missing, corrupt or foreign file.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise UserError(f"{p}: not a loadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != CKPT_FORMAT:
        raise UserError(f"{p}: not a ddspbench checkpoint")
    model = FAMILIES.get(payload["family"])(**payload["config"])
    model.size_name = payload.get("size", "custom")
    for t in payload.get("transforms", []):
        model = apply_transform(model, t["name"], **t.get("params", {}))
    loader = getattr(model, "load_checkpoint_state", None)
    if callable(loader):
        loader(payload["state_dict"])
    else:
        model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, dict(payload.get("meta", {}))
