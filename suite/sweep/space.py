"""The search space of a sweep, built from what the registered compressors say about themselves.

One trial picks, define-by-run (each choice conditional on the ones before it):

1. ``family`` among the searched families;
2. ``method``: a compressor name or a chain (``prune+quantize``), among those that support the
   family (a chain supports the intersection of its steps); when some family does not support every
   method the parameter is per family, ``method.<family>``, so every Optuna parameter keeps one
   fixed list of choices;
3. for methods whose first step trains a new student (``Compressor.trains_student``), the student
   size ``size.<family>`` (``size.<family>.<method>`` when the method supports only some sizes);
4. each step's own hyper-parameters ``<step key>.<param>`` (``prune.ratio``, ``prune#2.ratio`` for a
   repeated step) from the compressor's ``search_space`` overridden by the config; a value a chain
   fixes (``prune+kd_audio`` does not fine-tune twice) is not searched; a range narrowed for a family
   (no int8 for DDX7) is the parameter ``<step key>.<param>.<family>``;
5. when the config names teacher variants (``teacher.variants``), for methods that use the teacher
   (:func:`suite.compute.uses_teacher_training`: its weights or its outputs) and for a scratch student
   compute-matched to one (:func:`suite.compute.matches_teacher_compute`: it trains for that teacher's
   steps too) the teacher ``teacher``, among ``default`` and the variants (the recipe's ``teacher``;
   None for ``default``).

Nothing here names a compressor: registering a new one makes it searchable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddspbench.compressors.chain import parse_chain, step_space
from ddspbench.suite.candidate import ParamSpec, split_method
from ddspbench.suite.compute import matches_teacher_compute, uses_teacher_training
from ddspbench.suite.errors import UserError
from ddspbench.suite.recipe import DEFAULT_TEACHER, Recipe, Step, parse_size, step_keys
from ddspbench.suite.registry import COMPRESSORS, FAMILIES, SIZES

if TYPE_CHECKING:
    import optuna

    from ddspbench.suite.sweep.config import SweepConfig

__all__ = [
    "SAMPLERS",
    "Recipe",
    "CandidateSpec",
    "MethodOption",
    "ResolvedSpace",
    "resolve_space",
    "suggest_candidate",
    "covering_trials",
    "make_sampler",
    "parse_size",
    "split_method",
]

CandidateSpec = Recipe

TEACHER_PARAM = "teacher"
"""The Optuna parameter that picks a teacher-using method's teacher (only when the config names variants)."""
"""The former name of :class:`suite.recipe.Recipe`."""


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler by name (:data:`SAMPLERS`)."""
    try:
        factory = SAMPLERS[name]
    except KeyError:
        raise UserError(f"unknown sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}") from None
    return factory(seed)


def _nsga2(seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


def _nsga3(seed: int) -> optuna.samplers.BaseSampler:
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.NSGAIIISampler(seed=seed)


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _random(seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "nsga2": _nsga2,
    "nsga3": _nsga3,
    "tpe": _tpe,
    "random": _random,
}
"""Sampler name -> factory taking the seed (every sampler is seeded)."""


@dataclass(frozen=True)
class MethodOption:
    """What one method searches on one family.

    Attributes:
        steps: per step ``(compressor name, searched ranges, fixed values)``, ranges narrowed to the family.
        sizes: the student sizes to choose from (None: the method derives its model from the teacher).
    """

    steps: tuple[tuple[str, dict[str, ParamSpec], dict[str, Any]], ...]
    sizes: list[str] | None


@dataclass
class ResolvedSpace:
    """A search space with every name checked against the registries and every range merged.

    ``params`` holds each component's ranges (its ``search_space`` updated by the config); ``options``
    (family -> method -> :class:`MethodOption`) holds only the supported pairs and is derived from the
    registered compressors when not given.
    """

    families: list[str]
    methods: list[str]
    sizes: dict[str, list[str]]
    params: dict[str, dict[str, ParamSpec]] = field(default_factory=dict)
    options: dict[str, dict[str, MethodOption]] = field(default_factory=dict)
    teachers: list[str] = field(default_factory=list)
    """The teachers a teacher-using method chooses among (``default`` first); empty: one teacher, no choice."""

    def __post_init__(self) -> None:
        if not self.options:
            self.options = _options(self.families, self.methods, self.sizes, self.params)

    def needs_student(self, method: str) -> bool:
        """Whether ``method``'s first step trains a new student of a chosen size."""
        return bool(COMPRESSORS.get(split_method(method)[0]).trains_student)

    def teachers_for(self, method: str, steps: Sequence[Step] | None = None) -> list[str]:
        """The teachers ``method`` chooses among: :attr:`teachers` when it uses the teacher's weights or outputs, or,
        given its ``steps`` as chosen, when it is compute-matched to a teacher's training (scratch at ``budget:
        teacher+student`` trains for the chosen teacher's steps plus its own); else none (scratch at the student's
        budget uses no teacher)."""
        if not self.teachers:
            return []
        chain = [(COMPRESSORS.get(n), dict(p)) for n, p in parse_chain(method)]
        matched = steps is not None and matches_teacher_compute((COMPRESSORS.get(s.name), s.params) for s in steps)
        return list(self.teachers) if uses_teacher_training(chain) or matched else []

    def params_of(self, component: str) -> dict[str, ParamSpec]:
        return self.params.get(component, {})

    def methods_for(self, family: str) -> list[str]:
        """The searched methods that support ``family``, in search order."""
        return [m for m in self.methods if m in self.options.get(family, {})]

    def supports(self, family: str, method: str) -> bool:
        return method in self.options.get(family, {})

    def method_param(self, family: str) -> str:
        """The Optuna parameter that picks the method: ``method``, or ``method.<family>`` when some
        family supports only part of the methods (a parameter's choices never change)."""
        if all(self.methods_for(f) == self.methods for f in self.families):
            return "method"
        return f"method.{family}"

    def size_param(self, family: str, method: str) -> str:
        opt = self.options[family][method]
        return f"size.{family}" if opt.sizes == self.sizes[family] else f"size.{family}.{method}"


def _options(families: list[str], methods: list[str], sizes: dict[str, list[str]],
             params: dict[str, dict[str, ParamSpec]]) -> dict[str, dict[str, MethodOption]]:
    """family -> method -> what it searches there, for the supported pairs only."""

    def ranges(name: str) -> Mapping[str, ParamSpec]:
        return params.get(name, {})

    out: dict[str, dict[str, MethodOption]] = {}
    for fam in families:
        out[fam] = {}
        for method in methods:
            steps = parse_chain(method)
            searched = step_space(steps, fam, ranges)
            if searched is None:
                continue
            fam_sizes: list[str] | None = None
            if COMPRESSORS.get(steps[0][0]).trains_student:
                fam_sizes = [s for s in sizes.get(fam, []) if step_space(steps, fam, ranges, s) is not None]
                if not fam_sizes:
                    continue
            out[fam][method] = MethodOption(steps=tuple(searched), sizes=fam_sizes)
        if not out[fam]:
            raise UserError(f"space: family {fam!r} supports none of the searched methods ({', '.join(methods)})")
    return out


def resolve_space(cfg: SweepConfig) -> ResolvedSpace:
    """Expand wildcards (every name was checked with the config, :func:`suite.sweep.names.check_names`) and
    keep only the (family, method, size, value) combinations the compressors support."""
    families = FAMILIES.expand(cfg.space.families)  # names were checked with the config (suite.sweep.names)
    methods: list[str] = []
    for m in cfg.space.methods:
        if "+" in m:
            methods.append(m)
        else:
            methods.extend(x for x in COMPRESSORS.expand(m) if x not in methods)
    sizes: dict[str, list[str]] = {}
    for fam in families:
        fam_sizes = cfg.sizes_for(fam)
        if not fam_sizes:
            raise UserError(f"space.sizes: no student size for family {fam!r}")
        expanded: list[str] = []
        for s in fam_sizes:
            if parse_size(s) is not None:
                expanded.append(s)
            else:
                names = SIZES.expand(f"{fam}/{s}")
                expanded.extend(n.split("/", 1)[1] for n in names if n.split("/", 1)[1] not in expanded)
        sizes[fam] = expanded
    params: dict[str, dict[str, ParamSpec]] = {}
    for comp in sorted({p for m in methods for p in split_method(m)}):
        params[comp] = {**COMPRESSORS.get(comp).search_space, **cfg.space.params.get(comp, {})}
    return ResolvedSpace(families=families, methods=methods, sizes=sizes, params=params,
                         options=_options(families, methods, sizes, params), teachers=cfg.teacher.variant_names)


def _suggest(trial: optuna.trial.Trial, name: str, spec: ParamSpec) -> Any:
    kind = spec.kind
    if kind == "categorical":
        assert spec.choices is not None
        return trial.suggest_categorical(name, spec.choices)
    assert spec.low is not None and spec.high is not None
    if kind == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(name, float(spec.low), float(spec.high), step=spec.step, log=spec.log)


def suggest_candidate(trial: optuna.trial.Trial, space: ResolvedSpace) -> Recipe:
    """Ask ``trial`` for one supported candidate, define-by-run: family, method, then what that method needs."""
    family = str(trial.suggest_categorical("family", space.families))
    method = str(trial.suggest_categorical(space.method_param(family), space.methods_for(family)))
    opt = space.options[family][method]
    size = None
    if opt.sizes is not None:
        size = str(trial.suggest_categorical(space.size_param(family, method), opt.sizes))
    steps = []
    for comp, fixed, named in _step_params(space, family, method):
        params = dict(fixed)
        for p, (name, spec) in named.items():
            params[p] = _suggest(trial, name, spec)
        steps.append(Step(comp, params))
    teacher = None
    if teachers := space.teachers_for(method, steps):
        teacher = str(trial.suggest_categorical(TEACHER_PARAM, teachers))
    return Recipe(family=family, size=size, steps=tuple(steps),
                  teacher=None if teacher in (None, DEFAULT_TEACHER) else teacher)


def _step_params(space: ResolvedSpace, family: str, method: str
                 ) -> list[tuple[str, dict[str, Any], dict[str, tuple[str, ParamSpec]]]]:
    """Per step of ``method`` on ``family``: its compressor, its fixed values, and each searched parameter's
    Optuna name and range (``<step>.<param>``, with ``.<family>`` where the family narrowed the range)."""
    opt = space.options[family][method]
    out = []
    for (comp, ranges, fixed), key in zip(opt.steps, step_keys([s[0] for s in opt.steps]), strict=True):
        named = {p: (f"{key}.{p}.{family}" if spec != space.params_of(comp).get(p) else f"{key}.{p}", spec)
                 for p, spec in ranges.items()}
        out.append((comp, dict(fixed), named))
    return out


def _grid(space: ResolvedSpace, family: str, method: str, fixed: dict[str, Any]) -> list[dict[str, Any]]:
    """``fixed`` expanded over every combination of the pair's student sizes and categorical choices (numeric
    ranges stay with the sampler), and over the teachers for each combination that uses one or is compute-matched
    to one (:meth:`ResolvedSpace.teachers_for`)."""
    axes: list[tuple[str, list[Any]]] = []
    opt = space.options[family][method]
    if opt.sizes is not None:
        axes.append((space.size_param(family, method), list(opt.sizes)))
    per_step = _step_params(space, family, method)
    for _, _, named in per_step:
        for name, spec in named.values():
            if spec.kind == "categorical" and spec.choices is not None:
                axes.append((name, list(spec.choices)))
    out = [dict(fixed)]
    for name, values in axes:
        out = [{**d, name: v} for d in out for v in values]
    if not space.teachers:
        return out
    expanded = []
    for d in out:
        steps = [Step(comp, {**fixed_params, **{p: d[name] for p, (name, _) in named.items() if name in d}})
                 for comp, fixed_params, named in per_step]
        teachers = space.teachers_for(method, steps)
        expanded += [{**d, TEACHER_PARAM: t} for t in teachers] if teachers else [d]
    return expanded


def covering_trials(space: ResolvedSpace, budget: int, grid: bool = False) -> list[dict[str, Any]]:
    """Fixed choices of the trials enqueued before the sampler explores (supported pairs only).

    Every method appears at least once, methods alternate across families (so at least two families
    are covered when two are searched). Then, leaving at least one trial to the sampler, the missing
    (method, family) pairs follow in method order (so the first methods, e.g. ``scratch`` and a KD
    method, get a candidate in every family); when ``budget`` allows, every pair appears.
    Hyper-parameters not fixed here are left to the sampler. With ``grid``, each pair becomes one trial per
    combination of its student sizes, categorical choices and teachers (the compare preset's arms: scratch at two budgets,
    prune fine-tuned with and without the KD loss), as many as ``budget`` allows.
    """
    m, f = len(space.methods), len(space.families)
    supported = [(meth, fam) for fam in space.families for meth in space.methods if space.supports(fam, meth)]
    if budget >= len(supported):
        pairs = supported
    else:
        pairs = []
        for i in range(max(m, f)):
            meth = space.methods[i % m]
            fams = [space.families[(i + j) % f] for j in range(f)]  # the i-th family first, then the next ones
            fam = next((x for x in fams if space.supports(x, meth)), None)
            if fam is not None and (meth, fam) not in pairs:
                pairs.append((meth, fam))
        extras = [(meth, fam) for meth in space.methods for fam in space.families
                  if space.supports(fam, meth) and (meth, fam) not in pairs]
        pairs += extras[: max(0, budget - 1 - len(pairs))]
    out = []
    for meth, fam in pairs:
        fixed: dict[str, Any] = {"family": fam, space.method_param(fam): meth}
        if grid:
            out.extend(_grid(space, fam, meth, fixed))
            continue
        opt = space.options[fam][meth]
        if opt.sizes is not None:
            fixed[space.size_param(fam, meth)] = opt.sizes[0]
        out.append(fixed)
    return out[:budget] if grid else out
