"""How a metric is declared: once, in its own file under ``suite/metrics/standard/``, with everything every
consumer needs.

A :class:`MetricDecl` carries the name, the unit, which way is better (:class:`Direction`), the
:class:`Role` a report gives it (quality, cost, speed, memory), whether it is paired per test clip
(per-clip values, so verdicts can pair runs clip by clip), whether it can be negative, where the report
shows it, and the function that computes it from one evaluation context. :func:`declare_metric` registers
it; the evaluation (:mod:`suite.evaluate`), the records (:mod:`suite.records`), the sweep's objectives and
the reports all read the declaration, so adding a metric is one file (and its import in
``suite/metrics/standard/__init__.py``, or a call from a plug-in or test module).

This module imports neither torch nor any model code: reports read the declarations.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ddspbench.suite.registry import METRICS

__all__ = [
    "Direction",
    "Role",
    "Measured",
    "MetricDecl",
    "DECLARED",
    "declare_metric",
    "undeclare_metric",
    "declared",
    "names_with_role",
    "headline_metrics",
    "group_members",
    "columns",
    "STREAM_BUFFERS",
]

STREAM_BUFFERS: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)
"""The streaming buffer sizes (samples) a per-buffer metric is declared for."""


class Direction(enum.Enum):
    """Whether smaller or larger is better (the same two values Optuna uses)."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class Role(enum.Enum):
    """What a report does with a metric: ``quality`` (the audio's; KD comparisons and verdicts use it), ``cost``
    (what was spent: parameters, FLOPs, training time), ``speed`` (time per audio), ``memory`` (bytes)."""

    QUALITY = "quality"
    COST = "cost"
    SPEED = "speed"
    MEMORY = "memory"


@dataclass(frozen=True)
class Measured:
    """One metric's outcome: its value (None: not measured), definition, and per-clip values / interval."""

    value: float | None
    definition: str
    per_clip: list[float] | None = None
    interval: list[float] | None = None


@dataclass(frozen=True, slots=True)
class MetricDecl:
    """A metric, declared once.

    Attributes:
        name: the key in a record's ``metrics``.
        unit: its unit (``"1"`` for a dimensionless number).
        direction: which way is better.
        description: one sentence: what is measured, how.
        role: :class:`Role`.
        paired: the evaluation keeps one value per test clip (``per_clip``), in the clips' order.
        signed: the value can be negative (an unbiased estimator, an extrapolation): intervals are not cut at 0.
        group: the group name that asks for it with others (``memory``, ``stream``, ``size``, ``rtf``), or None.
        buffer: the streaming buffer (samples) a per-buffer metric is measured at; None for the others.
        headline: rank among the metrics of its role that a report picks by default (1 first), None: never.
        column: position among the leaderboard's default columns, None: not a default column.
        terminal_column: position among the terminal leaderboard's columns, None: not shown there.
        compute: ``compute(ctx) -> Measured`` from one :class:`suite.evaluate.EvalContext`; None for a metric
            set by whoever trained the candidate (``train_seconds``).
        version: bumps when the definition changes.
    """

    name: str
    unit: str
    direction: Direction
    description: str
    role: Role
    paired: bool = False
    signed: bool = False
    group: str | None = None
    buffer: int | None = None
    headline: int | None = None
    column: int | None = None
    terminal_column: int | None = None
    compute: Callable[[Any], Measured] | None = None
    version: str = "1"


DECLARED: dict[str, MetricDecl] = {}
"""Every declared metric by name, in declaration order (a live view: plug-ins and tests add to it)."""


def declare_metric(name: str, *, unit: str, role: Role, description: str,
                   direction: Direction = Direction.MINIMIZE, **fields: Any) -> MetricDecl:
    """Declare a metric (see :class:`MetricDecl` for the fields); a second declaration of a name raises."""
    decl = MetricDecl(name=name, unit=unit, direction=direction, description=description, role=role, **fields)
    METRICS.register(name, decl, description=description, unit=unit, direction=direction.value, role=role.value)
    DECLARED[name] = decl
    return decl


def undeclare_metric(name: str) -> MetricDecl:
    """Remove a declaration (a plug-in a test declared for itself)."""
    METRICS.unregister(name)
    return DECLARED.pop(name)


def declared(name: str) -> MetricDecl | None:
    """The declaration of ``name``, None for an undeclared name."""
    return DECLARED.get(name)


def names_with_role(role: Role) -> list[str]:
    """The declared metric names of one role, in declaration order."""
    return [n for n, d in DECLARED.items() if d.role is role]


def headline_metrics(role: Role) -> list[str]:
    """The metrics of ``role`` a report picks by default, best first (their ``headline`` rank)."""
    ranked = [d for d in DECLARED.values() if d.role is role and d.headline is not None]
    return [d.name for d in sorted(ranked, key=lambda d: d.headline or 0)]


def group_members(group: str) -> Iterator[MetricDecl]:
    """The declarations of one group, in declaration order."""
    return (d for d in DECLARED.values() if d.group == group)


def columns(where: str = "column") -> tuple[str, ...]:
    """The metrics a report shows by default, in order: ``column`` (the leaderboard) or ``terminal_column``."""
    placed = [(getattr(d, where), d.name) for d in DECLARED.values() if getattr(d, where) is not None]
    return tuple(name for _, name in sorted(placed))
