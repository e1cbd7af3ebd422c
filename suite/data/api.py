"""``prepare``: build a registered dataset by name (the Python form of ``ddspbench data``)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ddspbench.suite.bounds import SEED, check_fits, check_values
from ddspbench.suite.data.build import COMMON_OPTIONS, build_dataset
from ddspbench.suite.registry import (
    DATASETS,  # filled from the catalog (suite.data.builders) at the first lookup
)

__all__ = ["prepare", "dataset_options", "check_options", "check_size"]


def dataset_options(name: str) -> dict[str, Any]:
    """The options a dataset accepts, with their defaults (``path`` and ``seed`` excluded): its source's own (the
    keyword arguments of its parts function) and those every source takes (:data:`suite.data.build.COMMON_OPTIONS`)."""
    sig = inspect.signature(DATASETS.get(name))
    own = {
        k: (None if p.default is inspect.Parameter.empty else p.default)
        for k, p in sig.parameters.items()
        if p.kind == inspect.Parameter.KEYWORD_ONLY
    }
    return {**own, **COMMON_OPTIONS}


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
        UserError: unknown dataset or option, a value out of its declared bounds, a build estimated to need more
            memory than the machine has, or unusable input.
    """
    options = check_options(name, options)
    seed = SEED.check(seed, "seed")
    check_size(name, options)
    return Path(build_dataset(name, Path(out_dir), path=path, seed=seed, cache_dir=cache_dir, **options))


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options checked against the dataset's own declaration (``DATASETS`` meta ``options``: a
    :mod:`suite.bounds` spec per option) before any work; the checked values (lists for names, a Path for a file).

    Raises:
        UserError: an undeclared option or a refused value, naming the dataset, the option and the value.
    """
    return check_values(options, DATASETS.entry(name).meta["options"], f"dataset {name!r}")


def check_size(name: str, options: dict[str, Any]) -> None:
    """Refuse a build whose estimated memory (the dataset's meta ``estimate``) exceeds what the machine has.

    Raises:
        UserError: one line naming the clips, the estimated bytes and seconds, and the memory available.
    """
    estimate = DATASETS.entry(name).meta.get("estimate")
    if estimate is None:  # a dataset made from files: the files bound it
        return
    settings = {**dataset_options(name), **{k: v for k, v in options.items() if v is not None}}
    clips, nbytes, seconds = estimate(**settings)
    check_fits(f"dataset {name!r} with {clips:,} clips", nbytes, seconds)
