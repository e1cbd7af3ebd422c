"""What a compressor searches: :class:`ParamSpec`; and the one parser of a user-given method name, :func:`split_method`.

A lower-layer module (no model or compressor code): compressors declare their search ranges with
:class:`ParamSpec`; the sweep's sampler turns them into a :class:`suite.recipe.Recipe`, which the chain runs and
the record carries, so a repeated step (``prune+prune``) keeps its own parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ddspbench.suite.errors import UserError

__all__ = ["ParamSpec", "split_method"]


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


def split_method(method: str) -> list[str]:
    """The component names of a user-given method or chain (``prune+quantize`` -> ``[prune, quantize]``): the one
    place a method string from a sweep file or the command line becomes step names (records keep the steps)."""
    parts = [p.strip() for p in method.split("+")]
    if not all(parts):
        raise UserError(f"bad method {method!r}: use a compressor name or names joined by '+'")
    return parts
