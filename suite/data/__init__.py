"""Datasets: builders registered in ``suite.registry.DATASETS`` and the prepared-dataset format.

``prepare(name, out_dir, ...)`` builds one (``suite.data.builders`` registers them all); the
result is read with ``load_split``.
"""

from __future__ import annotations

from ddspbench.suite.data.api import dataset_options, prepare
from ddspbench.suite.data.store import DATASET_FORMAT, SPLITS, ClipSet, load_meta, load_split, save_dataset

__all__ = [
    "ClipSet",
    "DATASET_FORMAT",
    "SPLITS",
    "dataset_options",
    "load_meta",
    "load_split",
    "prepare",
    "save_dataset",
]
