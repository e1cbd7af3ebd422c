"""The search space of a sweep, built from the registries, and the samplers that explore it.

One trial picks, define-by-run (each choice conditional on the ones before it):

1. ``family`` among the searched families;
2. ``method``: a compressor name or a chain (``prune+quantize``);
3. for methods that train a new student (``scratch``, ``kd_audio``, ``kd_control`` or a chain that
   starts with one), the student size ``size.<family>`` (a per-family parameter, so each has its own
   fixed list of choices);
4. each component's own hyper-parameters ``<component>.<param>`` (KD weight, prune ratio, fine-tune
   steps, quantization dtype), from :data:`DEFAULT_PARAMS` overridden by the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from suite.errors import UserError
from suite.sweep.config import ParamSpec, SweepConfig

if TYPE_CHECKING:
    import optuna

__all__ = [
    "DEFAULT_PARAMS",
    "STUDENT_METHODS",
    "SAMPLERS",
    "CandidateSpec",
    "ResolvedSpace",
    "resolve_space",
    "suggest_candidate",
    "covering_trials",
    "make_sampler",
    "parse_size",
]

DEFAULT_PARAMS: dict[str, dict[str, ParamSpec]] = {
    "scratch": {},
    # REFERENCE §4: audio KD weight 0.5, control KD weight 1.0; the ranges centre on them.
    "kd_audio": {"kd_weight": ParamSpec(low=0.25, high=1.0)},
    "kd_control": {"kd_weight": ParamSpec(low=0.5, high=2.0)},
    "prune": {
        "ratio": ParamSpec(low=0.25, high=0.75),
        "finetune_steps": ParamSpec(choices=[0, 200]),
        "kd_weight": ParamSpec(choices=[0.0, 0.5]),  # 0: plain fine-tune; > 0: audio KD from the unpruned teacher
    },
    "quantize": {"method": ParamSpec(choices=["int8", "bf16"])},
}
"""Built-in hyper-parameter ranges per compressor; a config overrides them parameter by parameter."""

STUDENT_METHODS = frozenset({"scratch", "kd_audio", "kd_control"})
"""Methods that train a new student of a chosen size (the others transform the teacher)."""


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


def parse_size(size: str) -> dict[str, Any] | None:
    """Constructor overrides of a custom size (``"hidden=32"``, ``"n_blocks=2,hidden=32"``), None for a name."""
    if "=" not in size:
        return None
    out: dict[str, Any] = {}
    for part in size.split(","):
        key, sep, raw = part.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key.isidentifier() or not raw:
            raise UserError(f"bad size {size!r}: use a size name or key=value[,key=value]")
        try:
            out[key] = int(raw)
        except ValueError:
            try:
                out[key] = float(raw)
            except ValueError:
                out[key] = raw
    return out


def split_method(method: str) -> list[str]:
    """The component names of a method or chain (``prune+quantize`` -> ``[prune, quantize]``)."""
    parts = [p.strip() for p in method.split("+")]
    if not all(parts):
        raise UserError(f"bad method {method!r}: use a compressor name or names joined by '+'")
    return parts


def _component_keys(parts: list[str]) -> list[str]:
    """Parameter prefixes of a chain's components (a repeated component gets ``#2``, ``#3``...)."""
    seen: dict[str, int] = {}
    keys = []
    for p in parts:
        seen[p] = seen.get(p, 0) + 1
        keys.append(p if seen[p] == 1 else f"{p}#{seen[p]}")
    return keys


@dataclass(frozen=True)
class CandidateSpec:
    """What one trial builds: a family, a student size (when the method trains one) and a chain of steps.

    Attributes:
        family: family name.
        method: the method or chain name as searched (``prune+quantize``).
        size: student size (a registered size name or ``key=value`` overrides), None when the
            candidate is derived from the teacher (prune, quantize).
        steps: ``(compressor name, params)`` in order.
    """

    family: str
    method: str
    size: str | None
    steps: tuple[tuple[str, dict[str, Any]], ...]

    @property
    def method_params(self) -> dict[str, Any]:
        """Every hyper-parameter, JSON-able, as the record carries it."""
        out: dict[str, Any] = {}
        if self.size is not None:
            out["size"] = self.size
        for key, (_, params) in zip(_component_keys([s[0] for s in self.steps]), self.steps):
            out[key] = dict(params)
        return out

    def describe(self) -> str:
        """A short human-readable label (``hpn reduced kd_audio kd_weight=0.5``)."""
        bits = [self.family, self.size or "teacher-size", self.method]
        for _, params in self.steps:
            bits += [f"{k}={_fmt(v)}" for k, v in params.items()]
        return " ".join(bits)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


@dataclass
class ResolvedSpace:
    """A search space with every name checked against the registries and every range merged."""

    families: list[str]
    methods: list[str]
    sizes: dict[str, list[str]]
    params: dict[str, dict[str, ParamSpec]] = field(default_factory=dict)
    student_methods: frozenset[str] = STUDENT_METHODS

    def needs_student(self, method: str) -> bool:
        return split_method(method)[0] in self.student_methods

    def params_of(self, component: str) -> dict[str, ParamSpec]:
        return self.params.get(component, {})


def resolve_space(cfg: SweepConfig) -> ResolvedSpace:
    """Expand wildcards and check every family, method, size and parameter against the registries."""
    from suite.catalog import load_catalog
    from suite.registry import COMPRESSORS, FAMILIES, SIZES

    load_catalog()
    families = FAMILIES.expand(cfg.space.families)
    methods: list[str] = []
    for m in cfg.space.methods:
        if "+" in m:
            for part in split_method(m):
                COMPRESSORS.entry(part)  # raises with the known names
            methods.append(m)
        else:
            methods.extend(x for x in COMPRESSORS.expand(m) if x not in methods)
    if isinstance(cfg.space.sizes, dict):
        unknown = [f for f in cfg.space.sizes if f != "*" and f not in FAMILIES]
        if unknown:
            raise UserError(f"space.sizes: unknown family {unknown[0]!r}; known: {', '.join(FAMILIES.list())}")
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
    components = {p for m in methods for p in split_method(m)}
    for name in cfg.space.params:
        if name not in COMPRESSORS:
            raise UserError(f"space.params: unknown compressor {name!r}; known: {', '.join(COMPRESSORS.list())}")
    for comp in sorted(components):
        merged = dict(DEFAULT_PARAMS.get(comp, {}))
        merged.update(cfg.space.params.get(comp, {}))
        params[comp] = merged
    # A compressor that takes a student ``size`` trains a new student (e.g. kd_feature too).
    students = STUDENT_METHODS | {c for c in components if "size" in getattr(COMPRESSORS.get(c), "defaults", {})}
    return ResolvedSpace(families=families, methods=methods, sizes=sizes, params=params,
                         student_methods=frozenset(students))


def _suggest(trial: optuna.trial.Trial, name: str, spec: ParamSpec) -> Any:
    kind = spec.kind
    if kind == "categorical":
        assert spec.choices is not None
        return trial.suggest_categorical(name, spec.choices)
    assert spec.low is not None and spec.high is not None
    if kind == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(name, float(spec.low), float(spec.high), step=spec.step, log=spec.log)


def suggest_candidate(trial: optuna.trial.Trial, space: ResolvedSpace) -> CandidateSpec:
    """Ask ``trial`` for one candidate, define-by-run: family, method, then what that method needs."""
    family = trial.suggest_categorical("family", space.families)
    method = trial.suggest_categorical("method", space.methods)
    parts = split_method(method)
    size = trial.suggest_categorical(f"size.{family}", space.sizes[family]) if space.needs_student(method) else None
    steps = []
    for comp, key in zip(parts, _component_keys(parts)):
        params = {p: _suggest(trial, f"{key}.{p}", spec) for p, spec in space.params_of(comp).items()}
        steps.append((comp, params))
    return CandidateSpec(family=str(family), method=str(method), size=size, steps=tuple(steps))


def covering_trials(space: ResolvedSpace, budget: int) -> list[dict[str, Any]]:
    """Fixed choices of the trials enqueued before the sampler explores.

    Every method appears at least once, methods alternate across families (so at least two families
    are covered when two are searched). Then, leaving at least one trial to the sampler, the missing
    (method, family) pairs follow in method order (so the first methods, e.g. ``scratch`` and a KD
    method, get a candidate in every family); when ``budget`` allows, every pair appears.
    Hyper-parameters not fixed here are left to the sampler.
    """
    m, f = len(space.methods), len(space.families)
    if budget >= m * f:
        pairs = [(meth, fam) for fam in space.families for meth in space.methods]
    else:
        pairs = [(space.methods[i % m], space.families[i % f]) for i in range(max(m, f))]
        extras = [(meth, fam) for meth in space.methods for fam in space.families if (meth, fam) not in pairs]
        pairs += extras[: max(0, budget - 1 - len(pairs))]
    out = []
    for meth, fam in pairs:
        fixed: dict[str, Any] = {"family": fam, "method": meth}
        if space.needs_student(meth):
            fixed[f"size.{fam}"] = space.sizes[fam][0]
        out.append(fixed)
    return out
