"""One typed recipe from the sampler to the record, and what each step reports: :class:`Recipe`, :class:`StepReport`.

A lower-layer module (no torch, no model or compressor code). The sweep's sampler (or ``compress``) builds a
:class:`Recipe` -- a family, a student size and the chain's :class:`Step` s, each with its complete parameters --;
the chain runs :meth:`Recipe.run_steps`; each compressor returns a :class:`StepReport` (what it did, in the same
terms for every method: parameters, sizes before and after, seconds, its training summary, its compute, the tags it
declares and the size label of the model it made); and the record carries the recipe and the step reports as they
are. Nothing downstream parses a method or parameter name back from a string: ``method`` and ``method_params`` are
views (:attr:`Recipe.method`, :attr:`Recipe.method_params`).

Tags say what a step is, for reports that must tell arms apart without knowing compressor names:
:data:`DISTILLATION` (a teacher's outputs are a training target), :data:`FROM_SCRATCH` (a fresh student trained on
the data alone: the baseline of distillation), :data:`PRUNING`, :data:`QUANTIZATION`, :data:`COMPUTE_MATCHED` (trained
for the compute its rival spent, teacher included: an arm of its own, not the same-budget baseline), and
:data:`REFERENCE` (the teacher a study compares against).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Step",
    "Recipe",
    "StepReport",
    "step_keys",
    "parse_size",
    "DISTILLATION",
    "FROM_SCRATCH",
    "PRUNING",
    "QUANTIZATION",
    "REFERENCE",
    "COMPUTE_MATCHED",
    "REFERENCE_STEP",
    "DEFAULT_TEACHER",
]

DISTILLATION = "distillation"
FROM_SCRATCH = "from_scratch"
PRUNING = "pruning"
QUANTIZATION = "quantization"
REFERENCE = "reference"
COMPUTE_MATCHED = "compute_matched"

REFERENCE_STEP = "teacher"
"""The name of the one step of a reference recipe (the teacher's training); its method view is ``teacher``."""
DEFAULT_TEACHER = "default"
"""The name of the teacher the sweep config's ``teacher`` section itself describes, among its variants (recipes
record None for it)."""


class Step(NamedTuple):
    """One step of a recipe: a registered compressor name (or :data:`REFERENCE_STEP`) and its hyper-parameters."""

    name: str
    params: dict[str, Any]


def step_keys(names: Sequence[str]) -> list[str]:
    """The key of each step of a chain: its name, ``#2``, ``#3``... for a repeated one (``prune``, ``prune#2``).

    The sampler names a step's parameters ``<key>.<param>``, so two ``prune`` steps never share a value.
    """
    seen: dict[str, int] = {}
    keys = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        keys.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return keys


def parse_size(size: str) -> dict[str, Any] | None:
    """Constructor overrides of a custom size (``"hidden=32"``, ``"n_blocks=2,hidden=32"``), None for a name.

    The one parser of a user-given size string (a sweep file's or the command line's ``size=``).
    """
    from ddspbench.suite.errors import UserError

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


@dataclass(frozen=True)
class Recipe:
    """What one candidate is made of: a family, a student size (when the method trains one) and its steps.

    Attributes:
        family: family name.
        size: student size (a registered size name or ``key=value`` overrides), None when the candidate is
            derived from the teacher (prune, quantize) or is the teacher.
        steps: the steps in order; each step's params are complete (a chain's fixed step defaults included), and
            a repeated step has its own dict. A reference (teacher) recipe has one step, :data:`REFERENCE_STEP`.
        teacher: the teacher variant the candidate starts from (``teacher.variants`` of the sweep config), None for
            the default teacher; a reference recipe names the variant it trains. Left out of :meth:`to_dict` when
            None, so recipes from before teachers had variants read and hash as they did.
    """

    family: str
    size: str | None
    steps: tuple[Step, ...] = ()
    teacher: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(Step(str(n), dict(p)) for n, p in self.steps))

    @classmethod
    def reference(cls, family: str, teacher: str | None = None, **params: Any) -> Recipe:
        """The recipe of a family's teacher (``params``: its training settings, e.g. ``steps``; ``teacher``: its
        variant, None for the default)."""
        return cls(family=family, size=None, steps=(Step(REFERENCE_STEP, dict(params)),), teacher=teacher)

    @property
    def method(self) -> str:
        """The method view: the step names joined by ``+`` (``prune+quantize``; ``teacher`` for a reference)."""
        return "+".join(s.name for s in self.steps)

    @property
    def keys(self) -> list[str]:
        """Each step's key (:func:`step_keys`)."""
        return step_keys([s.name for s in self.steps])

    def keyed(self) -> list[tuple[str, Step]]:
        """``(key, step)`` per step, in order."""
        return list(zip(self.keys, self.steps))

    @property
    def method_params(self) -> dict[str, Any]:
        """The parameters view: ``{"size": ..., <step key>: {...}}`` (what checkpoints and old readers keep)."""
        out: dict[str, Any] = {}
        if self.size is not None:
            out["size"] = self.size
        for key, step in self.keyed():
            out[key] = dict(step.params)
        return out

    def run_steps(self) -> list[Step]:
        """The steps as the chain runs them: the student size goes to the first step as ``size=<name>``
        or as its width keys (``hidden=32``)."""
        out = [Step(s.name, dict(s.params)) for s in self.steps]
        if self.size is not None:
            widths = parse_size(self.size)
            out[0].params.update(widths if widths is not None else {"size": self.size})
        return out

    def describe(self) -> str:
        """A short human-readable label (``hpn reduced kd_audio kd_weight=0.5``)."""
        bits = [self.family, self.size or "teacher-size", self.method]
        for step in self.steps:
            bits += [f"{k}={_fmt(v)}" for k, v in step.params.items()]
        if self.teacher is not None:
            bits.append(f"teacher={self.teacher}")
        return " ".join(bits)

    def to_dict(self) -> dict[str, Any]:
        out = {"family": self.family, "size": self.size,
               "steps": [{"key": k, "name": s.name, "params": dict(s.params)} for k, s in self.keyed()]}
        if self.teacher is not None:
            out["teacher"] = self.teacher
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recipe:
        teacher = d.get("teacher")
        return cls(family=str(d["family"]), size=d.get("size"),
                   steps=tuple(Step(str(s["name"]), dict(s.get("params") or {})) for s in d.get("steps") or ()),
                   teacher=str(teacher) if teacher is not None else None)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class StepReport:
    """What one step did, in the same terms for every compressor (the record keeps one per step).

    Attributes:
        method: the compressor's registered name (:data:`REFERENCE_STEP` for a teacher's training).
        params: every hyper-parameter the step ran with (defaults filled in).
        tags: what the step is (:data:`DISTILLATION`, :data:`FROM_SCRATCH`, ...), declared by the compressor.
        size_label: the size label of the model the step made (``full:pruned``), None when it keeps its input's.
        before: parameter count and serialized bytes of the model the step started from (empty: not measured).
        after: the same for the model it made.
        seconds: wall time of the step.
        training: the summary of the training the step did (:func:`suite.train.train_summary`: steps, curve,
            best/last/selected validation, checkpoint, convergence), None when it trained nothing.
        compute: the training compute the step spent itself (``steps``, ``examples``, ``seconds``, ``flops``...),
            empty when not accounted.
        details: the compressor's own further report (JSON-able).
    """

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    size_label: str | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    training: dict[str, Any] | None = None
    compute: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(sorted(set(self.tags))))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": dict(self.params), "tags": list(self.tags),
                "size_label": self.size_label, "before": dict(self.before), "after": dict(self.after),
                "seconds": self.seconds, "training": self.training, "compute": dict(self.compute),
                "details": dict(self.details)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepReport:
        known = {"method", "params", "tags", "size_label", "before", "after", "seconds", "training", "compute",
                 "details"}
        extra = {k: v for k, v in d.items() if k not in known}  # a later version's additive field: kept
        return cls(method=str(d["method"]), params=dict(d.get("params") or {}), tags=tuple(d.get("tags") or ()),
                   size_label=d.get("size_label"), before=dict(d.get("before") or {}), after=dict(d.get("after") or {}),
                   seconds=d.get("seconds"), training=d.get("training"), compute=dict(d.get("compute") or {}),
                   details={**dict(d.get("details") or {}), **extra})

    def description(self) -> dict[str, Any]:
        """The flat description ``compress`` prints and checkpoints keep (the compressor's report at top level)."""
        out: dict[str, Any] = {"method": self.method, "params": dict(self.params), **self.details}
        if self.training is not None:
            out["train"] = self.training
        return {**out, "tags": list(self.tags), "size_label": self.size_label, "before": self.before,
                "after": self.after, "seconds": self.seconds, **({"compute": self.compute} if self.compute else {})}


def tags_of(steps: Iterable[StepReport]) -> frozenset[str]:
    """Every tag of a record's steps."""
    return frozenset(t for s in steps for t in s.tags)


__all__ += ["tags_of"]
