"""``prepare``: build a registered dataset by name (the Python form of ``ddspbench data``)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from suite.errors import UserError
from suite.registry import DATASETS  # filled from the catalog (suite.data.builders) at the first lookup

__all__ = ["prepare", "dataset_options"]


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
    return Path(builder(Path(out_dir), path=path, seed=int(seed), cache_dir=cache_dir, **options))
