"""What a model family declares for the rest of the suite: :class:`FamilyTraits` (lower layer, no torch).

Each family sets ``traits`` on its class, in its own file (``baselines/<family>.py``): the constructor keys that
set its width and depth (what a student of another size changes, :func:`compressors.build_student`), and which
renderer of the native streaming engine runs it (:mod:`baselines.native`), if any. A family without engine
support still runs everywhere: its speed is timed on the eager forward and its records say so
(:func:`engine_support`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FamilyTraits", "DEFAULT_TRAITS", "traits_of", "engine_support", "ENGINE_RENDERERS"]

ENGINE_RENDERERS: tuple[str, ...] = ("harmonic", "wavetable", "fm")
"""The synthesisers the native engine implements (harmonic-plus-noise, wavetable-plus-noise, FM)."""


@dataclass(frozen=True)
class FamilyTraits:
    """What the engine and the compressors need to know about a family.

    Attributes:
        size_keys: constructor keys that set the model's width/depth (everything else, e.g. a DDX7 instrument or
            the number of harmonics, a student keeps from its teacher).
        engine: the native engine's renderer for the family (one of :data:`ENGINE_RENDERERS`), None when the
            engine cannot run it (speed is then timed on the eager forward, and the record says so).
    """

    size_keys: tuple[str, ...] = ("hidden",)
    engine: str | None = None

    def __post_init__(self) -> None:
        if self.engine is not None and self.engine not in ENGINE_RENDERERS:
            raise ValueError(f"engine renderer {self.engine!r} is not one of {', '.join(ENGINE_RENDERERS)}")


DEFAULT_TRAITS = FamilyTraits()
"""The traits of a family that declares none: width ``hidden``, no engine support."""


def traits_of(model_or_class: Any) -> FamilyTraits:
    """The traits a family model (or its class) declares, :data:`DEFAULT_TRAITS` when it declares none."""
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    traits = getattr(cls, "traits", None)
    return traits if isinstance(traits, FamilyTraits) else DEFAULT_TRAITS


def engine_support(model: Any) -> str | None:
    """Why the native engine cannot run ``model``'s family (one line), None when its family declares a renderer."""
    if traits_of(model).engine is None:
        return f"family {getattr(model, 'family', type(model).__name__)} declares no native engine support"
    return None
