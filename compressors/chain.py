"""Chains of compressors: ``prune -> kd_audio -> quantize`` as a list of registered steps, not new code.

A chain is ``[(method, params), ...]``. Step ``k`` gets the original teacher and, as
``ctx.candidate``, the model step ``k-1`` returned; its description lists every step's description.
Quantization (any ``post_training`` method) must be the last step.

Spec strings name a chain in the sweep and the CLI: ``"prune+kd_audio+quantize"``. Parameters of
a chain are given per step as ``"<step>.<name>"`` (``prune.ratio=0.5``; a repeated step is
``prune#2.ratio``) or, unprefixed, for every step that accepts that name; a nested
``{"prune": {...}}`` also works. A few common chains are
registered in ``COMPRESSORS`` so ``ddspbench list`` shows them; any ``a+b+c`` spec works through
:func:`get_compressor`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from torch import nn

from ddspbench.compressors._base import CompressContext, Compressor, CompressResult
from ddspbench.compressors._stats import model_stats
from ddspbench.suite.candidate import ParamSpec, split_method
from ddspbench.suite.errors import UserError
from ddspbench.suite.recipe import StepReport, step_keys
from ddspbench.suite.registry import COMPRESSORS

__all__ = ["Chain", "steps_use_seed", "parse_chain", "get_compressor", "run_chain", "split_params", "step_space", "compress_steps",
           "REGISTERED_CHAINS"]

Step = tuple[str, dict[str, Any]]

REGISTERED_CHAINS: dict[str, list[Step]] = {
    "prune+kd_audio": [("prune", {"finetune_steps": 0}), ("kd_audio", {})],
    "prune+quantize": [("prune", {}), ("quantize", {})],
    "prune+kd_audio+quantize": [("prune", {"finetune_steps": 0}), ("kd_audio", {}), ("quantize", {})],
    "kd_audio+quantize": [("kd_audio", {}), ("quantize", {})],
    "kd_control+quantize": [("kd_control", {}), ("quantize", {})],
    "scratch+quantize": [("scratch", {}), ("quantize", {})],
}
"""Chains registered by name, with the step defaults that make them sensible (no double fine-tuning)."""


def _step_class(name: str) -> type[Compressor]:
    cls = COMPRESSORS.get(name)
    if isinstance(cls, type) and issubclass(cls, Chain):
        raise UserError(f"chain step {name!r} is itself a chain; list its steps instead")
    return cls


def validate_steps(steps: Sequence[Step]) -> None:
    """Refuse empty chains, unknown methods, any step after a post-training one (quantization) and a
    fresh-model method (scratch) anywhere but first."""
    if not steps:
        raise UserError("a chain needs at least one step")
    names = [n for n, _ in steps]
    for i, name in enumerate(names):
        cls = _step_class(name)
        if cls.post_training and i != len(names) - 1:
            raise UserError(f"{name} must be the last step of a chain (got {'+'.join(names)}): quantize after all training")
        if cls.first_only and i != 0:
            raise UserError(f"{name} trains a fresh model: it must be the first step of a chain (got {'+'.join(names)})")


def parse_chain(spec: str) -> list[Step]:
    """``"prune+kd_audio+quantize"`` -> ``[("prune", {...}), ("kd_audio", {}), ("quantize", {})]``.

    A registered chain name gives its registered step defaults; any other ``a+b`` spec gives empty
    defaults. Unknown methods and misplaced quantization raise one-line :class:`UserError`.
    """
    spec = spec.strip()
    if spec in REGISTERED_CHAINS:
        steps = [(n, dict(p)) for n, p in REGISTERED_CHAINS[spec]]
    else:
        steps = [(p, {}) for p in split_method(spec)]
    validate_steps(steps)
    return steps


def split_params(steps: Sequence[Step], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Route chain parameters to steps: ``<step key>.name``, nested ``{<step key>: {...}}`` or unprefixed.

    A step key is the step's name, or ``name#2``, ``name#3``... for a repeated step
    (:func:`suite.candidate.step_keys`), so ``prune.ratio`` and ``prune#2.ratio`` of ``prune+prune`` are
    two values; an unprefixed name goes to every step that accepts it.
    """
    names = [n for n, _ in steps]
    keys = step_keys(names)
    out = [dict(p) for _, p in steps]
    for key, value in params.items():
        if key in keys and isinstance(value, Mapping):
            out[keys.index(key)].update(value)
            continue
        if "." in key:
            step, sub = key.split(".", 1)
            if step not in keys:
                raise UserError(f"parameter {key!r} names step {step!r}, which is not in the chain {'+'.join(names)}")
            out[keys.index(step)][sub] = value
            continue
        hits = [i for i, n in enumerate(names) if key in _step_class(n).defaults]
        if not hits:
            raise UserError(f"no step of {'+'.join(names)} accepts parameter {key!r}")
        for i in hits:
            out[i][key] = value
    return out


def run_chain(teacher: nn.Module, ctx: CompressContext, steps: Sequence[Step]) -> tuple[nn.Module, list[StepReport]]:
    """Run the steps in order; returns the last candidate and every step's report."""
    validate_steps(steps)
    candidate: nn.Module | None = ctx.candidate
    reports: list[StepReport] = []
    for name, params in steps:
        res = _step_class(name)().compress(teacher, ctx.with_candidate(candidate), **params)
        candidate = res.model
        reports.extend(res.steps)
    assert candidate is not None
    return candidate, reports


class Chain(Compressor):
    """A sequence of registered compressors run one after the other (see module docstring).

    Subclasses (one per registered chain) set ``name`` and ``steps``; :func:`get_compressor` builds
    one for any spec. A chain describes itself through its steps: it trains a student when its first
    step does, and supports a family (or size) only where every step does.
    """

    name: ClassVar[str] = ""
    steps: ClassVar[tuple[Step, ...]] = ()

    @classmethod
    def accepted(cls) -> dict[str, Any]:
        """Every parameter the chain accepts: ``<step key>.name`` for each step's own defaults."""
        out: dict[str, Any] = {}
        for key, (n, p) in zip(step_keys([n for n, _ in cls.steps]), cls.steps):
            for k, v in {**_step_class(n).defaults, **p}.items():
                out[f"{key}.{k}"] = v
        return out

    @classmethod
    def supports(cls, family: str, params: Mapping[str, Any] | None = None, size: str | None = None) -> bool:
        per_step = split_params(cls.steps, params or {})
        return all(_step_class(n).supports(family, p, size if i == 0 else None)
                   for i, ((n, _), p) in enumerate(zip(cls.steps, per_step)))

    @classmethod
    def uses_seed(cls, params: Mapping[str, Any], steps: int) -> bool:
        per_step = split_params(cls.steps, params)
        return steps_use_seed([(n, p) for (n, _), p in zip(cls.steps, per_step)], steps)

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        per_step = split_params(self.steps, params)  # raises on keys no step accepts
        resolved: dict[str, Any] = {}
        for key, (n, _), p in zip(step_keys([n for n, _ in self.steps]), self.steps, per_step):
            for k, v in _step_class(n)().resolve_params(p).items():
                resolved[f"{key}.{k}"] = v
        return resolved

    def compress(self, teacher: nn.Module, ctx: CompressContext, **params: Any) -> CompressResult:
        """Run every step (:func:`run_chain`); the result keeps each step's own report, and the description lists
        the steps' descriptions with the chain's sizes before and after."""
        resolved = self.resolve_params(params)
        before = model_stats(ctx.candidate if ctx.candidate is not None else teacher)
        t0 = time.perf_counter()
        model, report = self.run(teacher, ctx, resolved)
        seconds = time.perf_counter() - t0
        model.eval()
        reports = report.pop("reports")
        description = {"method": self.name, "params": resolved, **report, "before": before, "after": model_stats(model),
                       "seconds": round(seconds, 3)}
        return CompressResult(model=model, steps=tuple(reports), description=description)

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        per_step = split_params(self.steps, params)
        steps = [(n, p) for (n, _), p in zip(self.steps, per_step)]
        model, reports = run_chain(teacher, ctx, steps)
        return model, {"chain": [n for n, _ in steps], "steps": [r.description() for r in reports], "reports": reports}


def step_space(steps: Sequence[Step], family: str, ranges: Callable[[str], Mapping[str, ParamSpec]],
               size: str | None = None) -> list[tuple[str, dict[str, ParamSpec], dict[str, Any]]] | None:
    """What a sweep searches for ``steps`` on ``family``: per step ``(name, ranges, fixed values)``.

    ``ranges(name)`` gives a step's searched ranges (its ``search_space`` with the config's overrides);
    a value the chain fixes (``prune+kd_audio`` fine-tunes once: ``prune.finetune_steps=0``) is not
    searched, and every range is narrowed to what the step supports on ``family``. None when any step
    does not support ``family`` (or the first step cannot train a student of ``size``): a chain supports
    the intersection of its steps.
    """
    out = []
    for i, (name, fixed) in enumerate(steps):
        cls = _step_class(name)
        if i == 0 and size is not None and cls.trains_student and not cls.supports_size(family, size):
            return None
        narrowed = cls.space_for(family, {k: v for k, v in ranges(name).items() if k not in fixed})
        if narrowed is None:
            return None
        if cls.rejects(family, {k: v for k, v in {**cls.defaults, **fixed}.items() if k not in narrowed}):
            return None  # a value the step runs with but the sweep does not search
        out.append((name, narrowed, dict(fixed)))
    return out


def compress_steps(teacher: nn.Module, ctx: CompressContext, method: str, steps: Sequence[Step]) -> CompressResult:
    """Run a candidate's steps (:meth:`suite.recipe.Recipe.run_steps`), each with its own parameters.

    One step runs as that compressor; several run as a chain whose steps are exactly these (a
    repeated step keeps its own values, the chain's fixed step defaults are already in them).
    """
    if len(steps) == 1:
        name, params = steps[0]
        return get_compressor(name).compress(teacher, ctx, **params)
    validate_steps(steps)
    return _chain_class(method, [(n, dict(p)) for n, p in steps])().compress(teacher, ctx)


def steps_use_seed(steps: Sequence[Step], recipe_steps: int) -> bool:
    """Whether a candidate made by these steps depends on the seed: where any step does
    (:meth:`compressors.Compressor.uses_seed`, each step asked with its defaults filled in)."""
    for name, params in steps:
        cls = _step_class(name)
        if cls.uses_seed({**cls.defaults, **dict(params)}, recipe_steps):
            return True
    return False


def _chain_class(spec: str, steps: list[Step]) -> type[Chain]:
    doc = f"Chain {' -> '.join(n for n, _ in steps)} (each step a registered compressor)."
    attrs = {"name": spec, "steps": tuple(steps), "__doc__": doc, "defaults": {},
             "trains_student": _step_class(steps[0][0]).trains_student}
    return type(f"Chain_{spec.replace('+', '_')}", (Chain,), attrs)


def get_compressor(spec: str) -> Compressor:
    """A compressor instance for a registered name or any ``a+b+c`` chain spec."""
    spec = spec.strip()
    if "+" not in spec or spec in COMPRESSORS:
        return COMPRESSORS.get(spec)()
    steps = parse_chain(spec)
    return _chain_class(spec, steps)()


for _spec, _steps in REGISTERED_CHAINS.items():
    COMPRESSORS.register(_spec, obj=_chain_class(_spec, list(_steps)))
