"""Every registry name a sweep config uses, checked in one place: :func:`check_names`.

Families, student and teacher sizes, methods and chain steps, the compressors' searched parameters, objectives
and evaluated metrics, the dataset and the FAD embedding: each is looked up in its registry (or the metric
declarations) here, once, when the config is validated (:func:`suite.sweep.config.config_from_dict`), so a study
never starts with a name that fails every trial and nothing downstream checks a name again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ddspbench.suite.errors import UserError

if TYPE_CHECKING:
    from ddspbench.suite.sweep.config import SweepConfig

__all__ = ["check_names", "check_custom_size", "first_non_positive"]


def check_names(cfg: SweepConfig, where: str) -> None:
    """Raise a one-line :class:`UserError` (prefixed ``where``) for the first unknown name in ``cfg``."""
    from ddspbench.suite.candidate import split_method
    from ddspbench.suite.evaluate import expand_metrics
    from ddspbench.suite.metrics.declare import DECLARED, Direction
    from ddspbench.suite.registry import COMPRESSORS, DATASETS, EMBEDDINGS, FAMILIES, SIZES

    for name in cfg.objectives:
        decl = DECLARED.get(name)
        if decl is None:
            raise UserError(f"{where}.objectives: unknown metric {name!r}; known: {', '.join(sorted(DECLARED))}")
        if decl.direction is not Direction.MINIMIZE:
            raise UserError(f"{where}.objectives: {name!r} is maximised; sweep objectives are minimised")
    ev = cfg.evaluation
    if ev.embedding not in EMBEDDINGS:
        raise UserError(f"{where}.evaluation.embedding: unknown embedding {ev.embedding!r}; known: {', '.join(EMBEDDINGS.list())}")
    try:
        expand_metrics(ev.metrics, ev.stream_buffers)  # the pipeline measures the objectives on top of these
    except UserError as exc:
        raise UserError(f"{where}.evaluation.metrics: {exc}") from None
    data = cfg.data
    if data.dataset not in DATASETS:
        raise UserError(f"{where}.data.dataset: unknown dataset {data.dataset!r}; known: {', '.join(DATASETS.list())}")
    for m in cfg.space.methods:
        if "+" in m:
            for part in split_method(m):
                COMPRESSORS.entry(part)  # raises with the known names
        else:
            COMPRESSORS.expand(m)  # a name or a wildcard that matches
    if isinstance(cfg.space.sizes, dict):
        unknown = [f for f in cfg.space.sizes if f != "*" and f not in FAMILIES]
        if unknown:
            raise UserError(f"{where}.space.sizes: unknown family {unknown[0]!r}; known: {', '.join(FAMILIES.list())}")
    families = FAMILIES.expand(cfg.space.families)
    teachers = [("teacher", cfg.teacher)] + [(f"teacher.variants.{n}", cfg.teacher.variant(n)) for n in cfg.teacher.variants]
    for sect, recipe in [*teachers, ("student", cfg.student)]:
        for fam, steps in recipe.family_steps.items():
            if fam not in FAMILIES:
                raise UserError(f"{where}.{sect}.family_steps: unknown family {fam!r}; known: {', '.join(FAMILIES.list())}")
            if steps < 0:
                raise UserError(f"{where}.{sect}.family_steps.{fam}: steps >= 0 are required, got {steps}")
    for sect, teacher in teachers:
        for fam, widths in teacher.widths.items():
            if fam not in FAMILIES:
                raise UserError(f"{where}.{sect}.widths: unknown family {fam!r}; known: {', '.join(FAMILIES.list())}")
            bad_width = first_non_positive(widths)
            if bad_width is not None:
                raise UserError(f"{where}.{sect}.widths.{fam}.{bad_width[0]}: must be > 0, got {bad_width[1]!r}")
        for fam in families:
            if f"{fam}/{teacher.size}" not in SIZES:
                raise UserError(f"{where}.{sect}.size: {fam} has no size {teacher.size!r}")
    for fam in families:
        for size in cfg.sizes_for(fam):
            check_custom_size(FAMILIES.get(fam), fam, size, f"{where}.space.sizes")
    for method, specs in cfg.space.params.items():
        if method not in COMPRESSORS:
            raise UserError(f"{where}.space.params: unknown compressor {method!r}; known: {', '.join(COMPRESSORS.list())}")
        accepted = getattr(COMPRESSORS.get(method), "defaults", {})
        extra = sorted(set(specs) - set(accepted))
        if extra:
            raise UserError(f"{where}.space.params.{method}: unknown parameter {extra[0]!r}; "
                            f"{method} takes {', '.join(sorted(accepted)) or '(none)'}")
        declared = getattr(COMPRESSORS.get(method), "bounds", {})
        for name, spec in specs.items():  # a searched range lies within what the method accepts (its declaration)
            if name in declared:
                for value in spec.choices if spec.choices is not None else (spec.low, spec.high):
                    if value is not None:
                        declared[name].check(value, f"{where}.space.params.{method}.{name}")


def check_custom_size(cls: Any, family: str, size: str, where: str) -> None:
    """A custom student size (``hidden=32``) must build a ``family`` model: positive numbers, known settings.

    The model is built on torch's meta device, so checking costs milliseconds whatever the widths.
    """
    from ddspbench.suite.errors import one_line_message
    from ddspbench.suite.recipe import parse_size

    overrides = parse_size(size)
    if not overrides:
        return
    for key, value in overrides.items():
        if isinstance(value, (int, float)) and value <= 0:
            raise UserError(f"{where}: {size!r}: {key} must be > 0")
    from ddspbench.suite.train import probe_params

    try:
        probe_params(cls, overrides, f"a {family} model")  # counted on the meta device: a huge width allocates nothing
    except UserError as exc:
        raise UserError(f"{where}: {size!r}: {one_line_message(exc, 200)}") from None


def first_non_positive(tree: Any, prefix: str = "") -> tuple[str, Any] | None:
    """The first number <= 0 (or non-number) in a widths mapping (lists and nested mappings included)."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list)):
            found = first_non_positive(value, f"{name}.")
            if found is not None:
                return found
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            if value is None or isinstance(value, str):
                continue  # a name (e.g. DDX7's instrument) or an unset value, not a width
            return name, value
    return None
