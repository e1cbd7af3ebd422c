"""Old records become the current shape on load: the one function that reads schema-1 rows (:func:`upgrade_row`).

A ``ddspbench.result/1`` row named its method as a string (``prune+kd_audio+quantize``) and kept its parameters
in ``method_params`` in one of three shapes: nested per step (``{"prune": {"ratio": 0.5}}``, a sweep), dotted
(``{"prune.ratio": 0.5}``, ``compress``) or the sampler's raw parameter names (``{"method.hpn": "prune",
"prune.ratio": 0.5}``, a failed or interrupted trial); the compressor's description sat under
``method_params["compressor"]`` and a teacher's training under ``method_params["train"]``.
:func:`upgrade_row` turns such a row into a ``ddspbench.result/2`` row: a :class:`suite.recipe.Recipe` and one
:class:`suite.recipe.StepReport` per step, with the tags the compressors of that time declared
(:data:`LEGACY_TAGS`: schema 1 was written by a closed set of compressors). The preset moves to ``provenance``.

This module is the only place that reads method and parameter names out of strings besides the parsers of user
input (``suite.candidate.split_method``, the command line's ``--set``); everything it reads was written by
ddspbench before the recipe was typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ddspbench.suite.recipe import (
    COMPUTE_MATCHED,
    DISTILLATION,
    FROM_SCRATCH,
    PRUNING,
    QUANTIZATION,
    REFERENCE,
    REFERENCE_STEP,
    Recipe,
    Step,
    StepReport,
    step_keys,
)

__all__ = ["SCHEMA_1", "SCHEMA_2", "LEGACY_TAGS", "upgrade_row", "legacy_recipe"]

SCHEMA_1 = "ddspbench.result/1"
SCHEMA_2 = "ddspbench.result/2"
"""The current schema (``suite.records.SCHEMA``): ``recipe`` and ``steps`` instead of ``method``/``method_params``."""

LEGACY_TAGS: dict[str, tuple[str, ...]] = {
    "scratch": (FROM_SCRATCH,),
    "kd_audio": (DISTILLATION,),
    "kd_control": (DISTILLATION,),
    "kd_feature": (DISTILLATION,),
    "prune": (PRUNING,),
    "quantize": (QUANTIZATION,),
    REFERENCE_STEP: (REFERENCE,),
}
"""The tags of the compressors that wrote schema-1 rows (what ``reports.compare`` told by name then: a ``kd*`` step
is distillation, ``scratch`` the baseline). A plug-in compressor of that time had none."""

_NOT_PARAMS = frozenset({"compressor", "preset", "size", "config", "train"})
_SAMPLER_KEYS = frozenset({"family", "method"})


def _step_names(method: str) -> list[str]:
    return [p.strip() for p in str(method).split("+") if p.strip()]


def _params_by_key(keys: list[str], method_params: Mapping[str, Any], family: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each step's parameters out of the three schema-1 shapes, and what the sampler chose besides (its raw names)."""
    out: dict[str, dict[str, Any]] = {k: {} for k in keys}
    loose: dict[str, Any] = {}
    sampler: dict[str, Any] = {}
    for name, value in method_params.items():
        if name in _NOT_PARAMS:
            continue
        if name in out and isinstance(value, Mapping):  # nested: a sweep's record
            out[name].update(value)
            continue
        head, dot, rest = name.partition(".")
        if name in _SAMPLER_KEYS or head in _SAMPLER_KEYS | {"size"}:  # the sampler's own choices (raw names)
            sampler[name] = value
        elif dot and head in out:  # dotted (compress) or a raw sampler name, maybe narrowed per family
            out[head][rest.removesuffix(f".{family}")] = value
        elif not isinstance(value, (dict, list)):
            loose[name] = value  # a hand-made record's scalar: the method's own
    if loose and keys:
        out[keys[-1]].update(loose)
    return out, sampler


def _descriptions(desc: Any, n: int) -> list[Mapping[str, Any]]:
    """The per-step descriptions inside a schema-1 ``compressor`` entry (one step's, or a chain's ``steps``)."""
    if not isinstance(desc, Mapping):
        return []
    if isinstance(desc.get("steps"), list) and n > 1:
        return [d for d in desc["steps"] if isinstance(d, Mapping)]
    return [desc]


def _report(desc: Mapping[str, Any], name: str, params: Mapping[str, Any], size_label: str | None) -> StepReport:
    d = dict(desc)
    training = d.pop("train", None)
    if training is None:
        training = d.pop("finetune", None)
    else:
        d.pop("finetune", None)
    for k in ("method", "params", "before", "after", "seconds"):
        d.pop(k, None)
    params = dict(desc.get("params") or params)
    matched = (COMPUTE_MATCHED,) if name == "scratch" and params.get("budget") == "teacher+student" else ()
    return StepReport(method=str(desc.get("method") or name), params=params,
                      tags=LEGACY_TAGS.get(name, ()) + matched, size_label=size_label, before=dict(desc.get("before") or {}),
                      after=dict(desc.get("after") or {}), seconds=desc.get("seconds"),
                      training=dict(training) if isinstance(training, Mapping) else None, details=d)


def legacy_recipe(family: str, size: str, method: str, method_params: Mapping[str, Any] | None
                  ) -> tuple[Recipe | None, tuple[StepReport, ...], dict[str, Any]]:
    """The recipe, step reports and (for a trial whose method is unknown) sampler choices of a schema-1 row."""
    mp = dict(method_params or {})
    if method == REFERENCE_STEP:
        params = {k: v for k, v in mp.items() if k not in _NOT_PARAMS and not isinstance(v, (dict, list))}
        recipe = Recipe.reference(family, **params)
        details = {"config": mp["config"]} if "config" in mp else {}
        train = mp.get("train")
        return recipe, (StepReport(method=REFERENCE_STEP, params=params, tags=LEGACY_TAGS[REFERENCE_STEP],
                                   size_label=size, training=dict(train) if isinstance(train, Mapping) else None,
                                   details=details),), {}
    names = _step_names(method)
    if not names or names == ["?"]:
        return None, (), {k: v for k, v in mp.items() if k != "preset"}
    keys = step_keys(names)
    by_key, sampler = _params_by_key(keys, mp, family)
    student = mp.get("size") if isinstance(mp.get("size"), str) else None
    if student is None:
        student = next((v for k, v in sampler.items() if k.startswith("size") and isinstance(v, str)), None)
    recipe = Recipe(family=family, size=student, steps=tuple(Step(n, by_key[k]) for n, k in zip(names, keys)))
    descs = _descriptions(mp.get("compressor"), len(names))
    last = len(names) - 1
    if len(descs) == len(names):
        reports = tuple(_report(d, n, by_key[k], size if i == last else None)
                        for i, (d, n, k) in enumerate(zip(descs, names, keys)))
    else:  # no description kept (a failed candidate, a hand-made row): the steps with their tags only
        reports = tuple(StepReport(method=n, params=by_key[k], tags=LEGACY_TAGS.get(n, ()), size_label=size if i == last else None)
                        for i, (n, k) in enumerate(zip(names, keys)))
    return recipe, reports, {}


def upgrade_row(d: Mapping[str, Any]) -> dict[str, Any]:
    """A schema-1 row as a schema-2 row (every other field kept as it is, unknown additive ones included)."""
    out = dict(d)
    if out.get("schema") != SCHEMA_1:
        return out
    method = str(out.pop("method", "?"))
    mp = out.pop("method_params", None) or {}
    recipe, reports, sampled = legacy_recipe(str(out.get("family", "?")), str(out.get("size", "?")), method, mp)
    prov = dict(out.get("provenance") or {})
    if isinstance(mp, Mapping) and mp.get("preset") is not None and "preset" not in prov:
        prov["preset"] = mp["preset"]
    out.update(schema=SCHEMA_2, provenance=prov, recipe=None if recipe is None else recipe.to_dict(),
               steps=[r.to_dict() for r in reports])
    if sampled:
        out["sampled"] = sampled
    return out
