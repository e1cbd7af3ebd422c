"""What a compressor searches and what one trial builds: :class:`ParamSpec` and :class:`Candidate`.

A lower-layer module (no model or compressor code): compressors declare their search ranges with
:class:`ParamSpec`, the sweep's sampler builds a :class:`Candidate`, the chain runs its
:meth:`Candidate.run_steps` and the record carries its :attr:`Candidate.method_params`. The same
object flows through all three, so a repeated step (``prune+prune``) keeps its own parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ddspbench.suite.errors import UserError

__all__ = ["ParamSpec", "Step", "Candidate", "split_method", "step_keys", "parse_size"]


@dataclass
class ParamSpec:
    """The range of one hyper-parameter: ``choices`` (categorical) or ``low``/``high`` (int or float).

    Integers in both bounds make an integer parameter; ``log`` samples on a log scale; ``step`` quantises.
    """

    choices: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise UserError("a parameter has either 'choices' or 'low'/'high', not both")
            if not isinstance(self.choices, list) or not self.choices:
                raise UserError("'choices' must be a non-empty list")
            for c in self.choices:
                if c is not None and not isinstance(c, (str, int, float, bool)):
                    raise UserError(f"choice {c!r} is not a plain value (str, number, bool or null)")
        else:
            if self.low is None or self.high is None:
                raise UserError("a parameter needs 'choices' or both 'low' and 'high'")
            if isinstance(self.low, bool) or isinstance(self.high, bool):
                raise UserError("'low'/'high' must be numbers")
            if self.low > self.high:
                raise UserError(f"'low' ({self.low}) is above 'high' ({self.high})")
            if self.log and self.low <= 0:
                raise UserError("a log-scale parameter needs 'low' > 0")

    @property
    def kind(self) -> str:
        """``categorical``, ``int`` or ``float``."""
        if self.choices is not None:
            return "categorical"
        if isinstance(self.low, int) and isinstance(self.high, int) and (self.step is None or isinstance(self.step, int)):
            return "int"
        return "float"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this parameter."""
        if self.choices is not None:
            return value in self.choices
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        assert self.low is not None and self.high is not None
        return self.low <= value <= self.high

    def without(self, values: Sequence[Any]) -> ParamSpec | None:
        """This range minus ``values`` (a categorical loses those choices); None when nothing is left.

        A numeric range is returned unchanged: unsupported values are declared as choices.
        """
        if self.choices is None:
            return self
        kept = [c for c in self.choices if c not in values]
        if not kept:
            return None
        return self if len(kept) == len(self.choices) else dataclasses.replace(self, choices=kept)


class Step(NamedTuple):
    """One step of a candidate: a registered compressor name and its hyper-parameters."""

    name: str
    params: dict[str, Any]


def split_method(method: str) -> list[str]:
    """The component names of a method or chain (``prune+quantize`` -> ``[prune, quantize]``)."""
    parts = [p.strip() for p in method.split("+")]
    if not all(parts):
        raise UserError(f"bad method {method!r}: use a compressor name or names joined by '+'")
    return parts


def step_keys(names: Sequence[str]) -> list[str]:
    """The key of each step of a chain: its name, ``#2``, ``#3``... for a repeated one (``prune``, ``prune#2``).

    The sampler names a step's parameters ``<key>.<param>`` and the record's ``method_params`` holds
    ``{<key>: {...}}``, so two ``prune`` steps never share a value.
    """
    seen: dict[str, int] = {}
    keys = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        keys.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return keys


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


@dataclass(frozen=True)
class Candidate:
    """What one trial builds: a family, a student size (when the method trains one) and a chain of steps.

    Attributes:
        family: family name.
        method: the method or chain name as searched (``prune+quantize``).
        size: student size (a registered size name or ``key=value`` overrides), None when the
            candidate is derived from the teacher (prune, quantize).
        steps: ``(compressor name, params)`` in order; each step's params are complete (a chain's
            fixed step defaults included), and a repeated step has its own dict.
    """

    family: str
    method: str
    size: str | None
    steps: tuple[tuple[str, dict[str, Any]], ...]

    @property
    def keys(self) -> list[str]:
        """Each step's key (:func:`step_keys`)."""
        return step_keys([name for name, _ in self.steps])

    @property
    def method_params(self) -> dict[str, Any]:
        """Every hyper-parameter, JSON-able, as the record carries it: ``{"size": ..., <step key>: {...}}``."""
        out: dict[str, Any] = {}
        if self.size is not None:
            out["size"] = self.size
        for key, (_, params) in zip(self.keys, self.steps):
            out[key] = dict(params)
        return out

    def run_steps(self) -> list[Step]:
        """The steps as the chain runs them: the student size goes to the first step as ``size=<name>``
        or as its width keys (``hidden=32``)."""
        out = [Step(name, dict(params)) for name, params in self.steps]
        if self.size is not None:
            widths = parse_size(self.size)
            out[0].params.update(widths if widths is not None else {"size": self.size})
        return out

    def describe(self) -> str:
        """A short human-readable label (``hpn reduced kd_audio kd_weight=0.5``)."""
        bits = [self.family, self.size or "teacher-size", self.method]
        for _, params in self.steps:
            bits += [f"{k}={_fmt(v)}" for k, v in params.items()]
        return " ".join(bits)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
