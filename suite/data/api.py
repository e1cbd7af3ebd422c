"""``prepare``: build a registered dataset by name (the Python form of ``ddspbench data``)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import (
    DATASETS,  # filled from the catalog (suite.data.builders) at the first lookup
)

__all__ = ["prepare", "dataset_options", "check_options"]


def dataset_options(name: str) -> dict[str, Any]:
    """The options a dataset builder accepts, with their defaults (``path`` and ``seed`` excluded)."""
    sig = inspect.signature(DATASETS.get(name))
    return {
        k: (None if p.default is inspect.Parameter.empty else p.default)
        for k, p in sig.parameters.items()
        if p.kind == inspect.Parameter.KEYWORD_ONLY and k not in ("path", "seed")
    }


def prepare(
    name: str,
    out_dir: str | Path,
    path: str | Path | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    **options: Any,
) -> Path:
    """Prepare the dataset ``name`` into ``out_dir`` (train/valid/test ``.npz`` + ``meta.json``).

    Args:
        name: a name in ``DATASETS`` (``synthetic``, ``soundfont``, ``folder``).
        out_dir: output directory (created).
        path: input folder for datasets made from files.
        seed: seed of generation and of the split.
        cache_dir: feature cache (default ``$DDSPBENCH_CACHE`` or ``~/.cache/ddspbench``).
        **options: builder options (see :func:`dataset_options`); unknown ones raise.

    Returns:
        ``out_dir`` as a Path; read it with :func:`suite.data.load_split`.

    Raises:
        UserError: unknown dataset or option, or unusable input.
    """
    builder = DATASETS.get(name)
    known = dataset_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UserError(
            f"dataset {name!r} has no option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    check_options(name, options, known)
    return Path(builder(Path(out_dir), path=path, seed=int(seed), cache_dir=cache_dir, **options))


def check_options(name: str, options: dict[str, Any], known: dict[str, Any] | None = None) -> None:
    """Refuse option values of the wrong kind before any work: an option whose default is an integer
    takes an integer >= 1 (counts, strides, jobs), a number takes a positive number, a flag takes
    true/false, a name takes a string; options without a default take a string or a list of strings.

    Raises:
        UserError: naming the dataset, the option and the value.
    """
    known = dataset_options(name) if known is None else known
    for key, value in options.items():
        default = known.get(key)
        if value is None:
            continue
        if isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, want = isinstance(value, int) and not isinstance(value, bool) and value >= 1, "an integer >= 1"
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            want = "a positive number"
        elif isinstance(default, str) or key == "cache_dir":
            ok, want = isinstance(value, (str, Path)), "a string"
        elif key == "min_confidence":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
            want = "a number in [0, 1]"
        else:  # names, or paths (a soundfont file)
            ok = isinstance(value, (str, os.PathLike)) or (
                isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))
            want = "a name, a path or a list of names"
        if not ok:
            raise UserError(f"dataset {name!r} option {key}: expected {want}, got {value!r}")
