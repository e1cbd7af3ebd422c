"""One generic registry type, one instance per kind of plug-in.

Registering is one decorator or one call next to the thing registered::

    @FAMILIES.register("hpn")
    class HarmonicPlusNoise(nn.Module): ...

    SIZES.register("hpn/full", obj=functools.partial(...), description="hidden 512")

Names are unique (a duplicate raises), unknown names raise :class:`UnknownNameError` with the
list of known names, and ``list(pattern)`` filters with shell wildcards (``"hpn/*"``).

Importing :mod:`suite.catalog` fills every registry (it imports ``baselines`` and ``compressors``
and the built-in datasets, embeddings and metrics), so ``ddspbench list`` shows the full catalogue.
"""

from __future__ import annotations

import builtins
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.errors import UserError

__all__ = [
    "Registry",
    "Entry",
    "UnknownNameError",
    "DuplicateNameError",
    "FAMILIES",
    "SIZES",
    "COMPRESSORS",
    "DATASETS",
    "EMBEDDINGS",
    "METRICS",
    "F0_TRACKERS",
    "EXPORTERS",
    "ENGINES",
    "ALL_REGISTRIES",
]

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    """An unknown name was asked of a registry. The message lists the known names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(ValueError):
    """A name was registered twice in one registry."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with its name and free-form, JSON-able metadata."""

    name: str
    obj: T
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


def _name_of(obj: object) -> str:
    """The ``__name__`` of a registered object (functions and classes), used when no name is given."""
    name = getattr(obj, "__name__", None)
    if not isinstance(name, str):
        raise ValueError(f"{obj!r} has no __name__: register it with an explicit name")
    return name


class Registry(Generic[T]):
    """Named entries of one kind.

    Args:
        kind: what the entries are ("families", "compressors", ...), used in messages.
    """

    def __init__(self, kind: str, *, from_catalog: bool = False) -> None:
        self.kind = kind
        self.from_catalog = from_catalog
        """Fill the registry from :func:`suite.catalog.load_catalog` at the first lookup (the global ones)."""
        self._entries: dict[str, Entry[T]] = {}

    def _loaded(self) -> dict[str, Entry[T]]:
        """The entries, after the catalog has registered its plug-ins (the one place lookups load it)."""
        if self.from_catalog:
            load_catalog()
        return self._entries

    @overload
    def register(self, name: str | None = None, *, description: str = "", **meta: Any) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, description: str = "", **meta: Any) -> T: ...

    def register(self, name: Any = None, obj: Any = None, *, description: str = "", **meta: Any) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` return a decorator.

        Usable bare (``@REG.register``), with a name (``@REG.register("x")``) or as a call
        (``REG.register("x", obj)``). Without a name, the object's ``__name__`` is used.
        """
        if callable(name) and obj is None and not isinstance(name, str):  # bare decorator
            target = name
            self._add(_name_of(target), target, description, meta)
            return target
        if obj is not None:
            self._add(name if name is not None else _name_of(obj), obj, description, meta)
            return obj

        def decorator(target: T) -> T:
            self._add(name if name is not None else _name_of(target), target, description, meta)
            return target

        return decorator

    def _add(self, name: str, obj: T, description: str, meta: Mapping[str, Any]) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind}: a registry name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise DuplicateNameError(f"{self.kind}: {name!r} is already registered")
        if not description:
            doc = getattr(obj, "__doc__", None) or ""
            description = doc.strip().splitlines()[0] if doc.strip() else ""
        self._entries[name] = Entry(name=name, obj=obj, description=description, meta=dict(meta))

    def unregister(self, name: str) -> T:
        """Remove ``name`` (e.g. a plug-in a test registered for itself); returns its object."""
        entry = self.entry(name)  # unknown names raise with the known names
        del self._entries[name]
        return entry.obj

    def get(self, name: str) -> T:
        """The object registered as ``name``; unknown names raise with the known names."""
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        """The :class:`Entry` registered as ``name``."""
        try:
            return self._loaded()[name]
        except KeyError:
            known = ", ".join(sorted(self._loaded())) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} name {name!r}; known: {known}") from None

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell wildcard pattern (``fnmatch``)."""
        return sorted(n for n in self._loaded() if fnmatch.fnmatchcase(n, pattern))

    def expand(self, patterns: str | builtins.list[str]) -> builtins.list[str]:
        """Names for a comma-separated string or list of names/wildcards; a pattern with no match raises."""
        items = [p.strip() for p in patterns.split(",")] if isinstance(patterns, str) else list(patterns)
        out: builtins.list[str] = []
        for pat in items:
            if not pat:
                continue
            hits = self.list(pat) if any(c in pat for c in "*?[") else [self.entry(pat).name]
            if not hits:
                known = ", ".join(sorted(self._loaded())) or "(none)"
                raise UnknownNameError(f"no {self.kind} name matches {pat!r}; known: {known}")
            out.extend(h for h in hits if h not in out)
        return out

    @property
    def entries(self) -> Mapping[str, Entry[T]]:
        """A read-only view of the entries by name."""
        return dict(self._loaded())

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


# One instance per kind. Entries are added next to their definitions.
FAMILIES: Registry[Any] = Registry("family", from_catalog=True)
"""Model families: name -> model class (``baselines/<family>.py``)."""
SIZES: Registry[Any] = Registry("size", from_catalog=True)
"""Named sizes, keyed ``"<family>/<size>"``: name -> zero-argument factory returning a model."""
COMPRESSORS: Registry[Any] = Registry("compressor", from_catalog=True)
"""Compression methods: name -> :class:`compressors.Compressor` subclass."""
DATASETS: Registry[Any] = Registry("dataset", from_catalog=True)
"""Datasets: name -> builder that writes a prepared dataset directory."""
EMBEDDINGS: Registry[Any] = Registry("embedding", from_catalog=True)
"""FAD embedding back-ends: name -> factory returning an embedding model."""
METRICS: Registry[Any] = Registry("metric", from_catalog=True)
"""Metrics a result row can carry: name -> :class:`suite.records.MetricSpec`."""
F0_TRACKERS: Registry[Any] = Registry("f0 tracker", from_catalog=True)
"""Pitch trackers for the ``folder`` dataset: name -> function(audio, sr, hop) -> (f0_hz, confidence)."""
EXPORTERS: Registry[Any] = Registry("export backend", from_catalog=True)
"""Inference paths the speed metrics can time besides eager: name -> function(model, frames, *, offline,
batch, seed) returning a callable model (``baselines/export.py``)."""
ENGINES: Registry[Any] = Registry("inference engine", from_catalog=True)
"""Deployment engines memory metrics size and run: name -> class ``Engine(model, batch=, seed=)`` with
``footprint(buffer_frames)`` and a per-buffer call (``native``: :class:`baselines.native.NativeEngine`)."""

ALL_REGISTRIES: dict[str, Registry[Any]] = {
    "families": FAMILIES,
    "sizes": SIZES,
    "compressors": COMPRESSORS,
    "datasets": DATASETS,
    "embeddings": EMBEDDINGS,
    "metrics": METRICS,
    "f0_trackers": F0_TRACKERS,
}
