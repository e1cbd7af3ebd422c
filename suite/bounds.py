"""Every number and name checked before work starts: declarations of an option's type and bounds, and estimates.

An option declares what it accepts once, beside the option: a command's numeric option passes a :class:`Bound` as
argparse's ``type`` (``p.add_argument("--lr", type=Bound(float, 0, 10, low_open=True))``), so ``inf``, ``nan``,
``-1`` or ``1e9`` stop at parsing with one line; a dataset declares its ``--set`` options as a mapping of these
specs (``DATASETS`` meta ``options``), which ``ddspbench data`` and a sweep file's ``data.options`` both check
through :func:`check_values`. Tests walk the declarations, so a new option is covered by them.

Sizes that imply work are estimated before it starts: :func:`check_fits` refuses an estimate beyond the memory the
machine has available (psutil), with one line naming it.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ddspbench.suite.errors import UserError
from ddspbench.suite.features import CLIP_FRAMES

__all__ = [
    "Bound", "IntList", "ListOf", "Choice", "Flag", "Names", "Text", "SoundFontFile",
    "SEED", "THREADS", "JOBS", "STEPS", "STEPS_OR_NONE", "BATCH", "LR", "FRAMES", "TRIALS", "REPEATS", "CLIPS", "WIDTH", "WEIGHT",
    "check_values", "check_fits", "format_bytes",
]


def _num(value: float) -> str:
    """A bound as written: ``4294967295``, ``0.5``, ``1e+13``."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e12 else f"{value:g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Bound:
    """A number option: ``kind`` (int or float, always finite) between ``low`` and ``high`` (both included unless
    ``low_open``). Used as argparse ``type`` (parses text) and by :meth:`check` (a value from YAML)."""

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None and not self.low_open:
            return f"{what} in [{_num(self.low)}, {_num(self.high)}]"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"<= {_num(self.high)}")
        return f"{what} {' and '.join(parts)}".strip()

    def accepts(self, value: Any) -> bool:
        if not _is_number(value) or (self.kind is int and not isinstance(value, numbers.Integral)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def check(self, value: Any, name: str) -> Any:
        """``value`` (as ``kind``) when it is in bounds; a one-line :class:`UserError` naming ``name`` otherwise."""
        if not self.accepts(value):
            raise UserError(f"{name} must be {self.describe()}, got {value!r}")
        return self.kind(value)

    def __call__(self, text: str) -> Any:
        """argparse ``type``: the text parsed and checked (argparse turns the error into its one-line message)."""
        try:
            value = self.kind(text.strip())
        except ValueError:
            value = text
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value


@dataclass(frozen=True)
class IntList:
    """Comma-separated integers, each a multiple of ``multiple`` in ``[multiple, high]`` (argparse ``type``)."""

    multiple: int
    high: int
    unit: str = ""

    def describe(self) -> str:
        return f"comma-separated multiples of {self.multiple}{self.unit} from {self.multiple} to {self.high}"

    def __call__(self, text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            values = ()
        if not values or any(v < self.multiple or v > self.high or v % self.multiple for v in values):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return values


@dataclass(frozen=True)
class ListOf:
    """A non-empty list, each item checked by ``item``."""

    item: Any

    def check(self, value: Any, name: str) -> list[Any]:
        if not isinstance(value, (list, tuple)) or not value:
            raise UserError(f"{name} must be a non-empty list, got {value!r}")
        return [self.item.check(v, name) for v in value]


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (a string)."""

    values: tuple[str, ...]

    def check(self, value: Any, name: str) -> str:
        if value not in self.values:
            raise UserError(f"{name} must be one of {', '.join(self.values)}, got {value!r}")
        return str(value)


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def check(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            raise UserError(f"{name} must be true or false, got {value!r}")
        return value


@dataclass(frozen=True)
class Text:
    """A non-empty single-line string."""

    def check(self, value: Any, name: str) -> str:
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip() or any(c in str(value) for c in "\r\n\0"):
            raise UserError(f"{name} must be a non-empty one-line string, got {value!r}")
        return str(value)


@dataclass(frozen=True)
class Names:
    """A non-empty list of names (a comma-separated string or a YAML list), each one of ``known`` when given."""

    known: tuple[str, ...] | None = None

    def check(self, value: Any, name: str) -> list[str]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise UserError(f"{name} must be a name or a list of names, got {value!r}")
        names = [v.strip() for v in items if v.strip()]
        if not names:
            raise UserError(f"{name} must name at least one{' of ' + ', '.join(self.known) if self.known else ''}")
        unknown = [n for n in names if self.known is not None and n not in self.known]
        if unknown:
            raise UserError(f"{name}: unknown {', '.join(map(repr, unknown))}; known: {', '.join(self.known or ())}")
        return names


@dataclass(frozen=True)
class SoundFontFile:
    """A SoundFont 2 file: a RIFF container of form type ``sfbk`` (bytes 0-3 ``RIFF``, 8-11 ``sfbk``)."""

    def check(self, value: Any, name: str) -> Path:
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise UserError(f"{name} must be the path of a .sf2 file, got {value!r}")
        path = Path(value).expanduser()
        if not path.is_file():
            raise UserError(f"{name}: soundfont not found: {path}")
        with path.open("rb") as fh:
            head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise UserError(f"{name}: {path} is not a SoundFont file (no RIFF....sfbk header)")
        return path


# The bounds options of several commands share (each command's option table names them).
SEED = Bound(int, 0, 2**32 - 1)
"""A seed: numpy's and torch's generators both take it."""
THREADS = Bound(int, 1, 256)
JOBS = Bound(int, 1, 256)
STEPS = Bound(int, 1, 100_000_000)
STEPS_OR_NONE = Bound(int, 0, STEPS.high)
"""Steps where 0 means no training (a compressor's fine-tune, a sweep recipe)."""
BATCH = Bound(int, 1, 4096)
LR = Bound(float, 0.0, 10.0, low_open=True)
FRAMES = Bound(int, 4, CLIP_FRAMES)
"""A crop: at least 4 frames, at most a prepared clip (4 s at 250 frames/s)."""
TRIALS = Bound(int, 1, 100_000)
REPEATS = Bound(int, 1, 100)
"""Seeds per sweep configuration."""
CLIPS = Bound(int, 1, 10_000_000)
WIDTH = Bound(int, 1, 65_536)
"""A layer width or a count of a model family (hidden, widths, n_harmonics, channels, n_blocks...)."""
WEIGHT = Bound(float, 0.0, 1000.0)
"""A loss weight (kd_weight, target_weight)."""


def check_values(values: Mapping[str, Any], specs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``values`` checked against their declarations (``None`` means the default and passes); the checked values.

    Raises:
        UserError: an undeclared key, or a value its spec refuses (named ``<where> <key>``).
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in specs:
            raise UserError(f"{where} has no option {key!r}; known: {', '.join(sorted(specs))}")
        out[key] = None if value is None else specs[key].check(value, f"{where} option {key}")
    return out


def format_bytes(n: float) -> str:
    """``1.5e9`` -> ``"1.5 GB"`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def available_bytes() -> int:
    """Memory the machine can give a new allocation now (psutil's ``available``)."""
    return int(psutil.virtual_memory().available)


def check_fits(what: str, estimate: float, seconds: float | None = None) -> None:
    """Refuse work whose estimated memory ``estimate`` (bytes) exceeds the memory available now.

    Raises:
        UserError: one line naming ``what``, the estimate (and ``seconds``, when given) and what is available.
    """
    avail = available_bytes()
    if estimate > avail:
        took = f" and about {seconds:,.0f} s" if seconds is not None else ""
        raise UserError(f"{what} needs an estimated {format_bytes(estimate)} of memory{took}, more than the "
                        f"{format_bytes(avail)} available on this machine; ask for less")
