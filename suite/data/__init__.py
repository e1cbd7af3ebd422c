"""Datasets: builders registered in ``suite.registry.DATASETS`` and the prepared-dataset format."""

from __future__ import annotations

from suite.data.store import DATASET_FORMAT, SPLITS, ClipSet, load_meta, load_split, save_dataset

__all__ = ["ClipSet", "DATASET_FORMAT", "SPLITS", "load_meta", "load_split", "save_dataset"]
