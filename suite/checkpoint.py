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
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ddspbench.suite.errors import UserError, one_line_message
from ddspbench.suite.recipe import Recipe, StepReport
from ddspbench.suite.registry import FAMILIES, Registry
from ddspbench.suite.upgrade import legacy_recipe

__all__ = ["CKPT_FORMAT", "TRANSFORMS", "save_checkpoint", "load_checkpoint", "model_identity", "apply_transform",
           "meta_method", "meta_recipe"]

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
        text = str(exc)
        if "WeightsUnpickler error:" in text:
            # torch's own wording suggests weights_only=False, which would run the file's code: never say that
            detail = one_line_message(text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0], 120)
            raise UserError(f"{p}: not a loadable checkpoint (weights-only loading refused it: {detail or 'no details'})"
                            ) from None
        why = one_line_message(exc, 200) or ("empty file" if p.stat().st_size == 0 else "no details")
        raise UserError(f"{p}: not a loadable checkpoint ({type(exc).__name__}: {why})") from None
    if not isinstance(payload, dict) or payload.get("format") != CKPT_FORMAT:
        raise UserError(f"{p}: not a ddspbench checkpoint")
    family, config = payload.get("family"), payload.get("config")
    if not isinstance(family, str) or not isinstance(config, dict) or not isinstance(payload.get("state_dict"), dict):
        raise UserError(f"{p}: a ddspbench checkpoint without its family, config or weights")
    cls = FAMILIES.get(family)  # an unknown family -> UserError listing the known ones
    try:
        model = cls(**config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{p}: cannot rebuild {family} from its config ({one_line_message(exc, 200)})") from None
    model.size_name = payload.get("size", "custom")
    for t in payload.get("transforms", []):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise UserError(f"{p}: a malformed transform entry {str(t)[:80]!r}")
        model = apply_transform(model, t["name"], **t.get("params", {}))
    loader = getattr(model, "load_checkpoint_state", None)
    try:
        if callable(loader):
            loader(payload["state_dict"])
        else:
            model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{p}: its weights do not fit a {family} model with its config ({_weights_mismatch(exc)})") from None
    model.eval()
    return model, dict(payload.get("meta", {}))


def _weights_mismatch(exc: BaseException) -> str:
    """A short summary of ``load_state_dict``'s (often hundreds of lines long) complaint."""
    text = str(exc)
    parts = []
    for label, pattern in (("missing", r'Missing key\(s\) in state_dict: (.*?)(?:\.\s|$)'),
                           ("unexpected", r'Unexpected key\(s\) in state_dict: (.*?)(?:\.\s|$)')):
        m = re.search(pattern, text, re.S)
        if m:
            keys = re.findall(r'"([^"]+)"', m.group(1))
            parts.append(f"{len(keys)} {label} key(s), e.g. {', '.join(keys[:2])}")
    shapes = len(re.findall(r"size mismatch for ", text))
    if shapes:
        parts.append(f"{shapes} shape mismatch(es)")
    return "; ".join(parts) or one_line_message(text, 200) or type(exc).__name__


def meta_method(meta: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``(method, method_params)`` of a checkpoint's meta, whichever command wrote it.

    ``method``/``method_params`` (what ``compress`` and a sweep write), else a sweep's older ``params``, else the
    ``compress`` description (``{"method", "params", ...}``) of older ``compress`` checkpoints; ``(None, {})`` for a
    checkpoint that names no method (``train``'s).
    """
    found = meta.get("compress")
    desc: dict[str, Any] = found if isinstance(found, dict) else {}
    method = meta.get("method") or desc.get("method")
    params = meta.get("method_params")
    if params is None:
        params = meta.get("params", desc.get("params"))
    return (str(method) if method else None), (dict(params) if isinstance(params, dict) else {})


def meta_recipe(meta: dict[str, Any], family: str, size: str) -> tuple[Recipe, tuple[StepReport, ...]]:
    """The recipe and step reports a checkpoint's meta records: its ``recipe``/``steps`` (what ``compress`` and a
    sweep write now), else the older layouts of :func:`meta_method` through :func:`suite.upgrade.legacy_recipe`; a
    checkpoint that names no method (``train``'s) is the one-step recipe ``evaluate``."""
    raw = meta.get("recipe")
    if isinstance(raw, dict):
        steps = tuple(StepReport.from_dict(s) for s in meta.get("steps") or () if isinstance(s, dict))
        return Recipe.from_dict(raw), steps
    method, params = meta_method(meta)
    recipe, steps, _ = legacy_recipe(family, size, method or "evaluate", params)
    return (recipe or Recipe(family=family, size=None, steps=())), steps

