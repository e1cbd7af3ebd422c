"""Results directories -> one pandas DataFrame, one row per candidate.

Columns (all rows, ok and failed):

* identity: ``uid`` (unique across the loaded directories; the ``candidate_id``, prefixed with the
  study or directory name where two directories share an id), ``candidate_id``, ``study``, ``trial``,
  ``family``, ``size``, ``method`` (the recipe's method view), ``arm`` (the method with the variants its steps
  reported, :func:`arm_label`), ``teacher`` / ``teacher_seed`` (the teacher the method used; None for scratch and
  older records), ``method_params`` (compact JSON text of the recipe's parameters view, for display only), ``tags``
  (sorted tuple of the tags the record's steps declared: ``reference`` for the teacher, ``distillation``,
  ``from_scratch``...), ``training`` (the steps' training summaries, in order), ``hparams`` (the method's settings
  in one short line, :func:`hparams_text`) and ``hparam_values`` (dict ``<step>.<name>`` -> value,
  :func:`hyperparameters`), ``dataset``, ``instrument``, ``seed``, ``config_id`` (shared by the seeds of
  one configuration; None when the record has none), ``results_dir``;
* outcome: ``status`` (``ok``/``failed``) and ``error``;
* one float column per metric any row carries (NaN where a row lacks it), plus ``<metric>_ci_low`` /
  ``<metric>_ci_high`` where a record gave an interval;
* ``per_clip`` (dict of lists, for significance tests) with ``clip_ids`` / ``recording_ids`` (the clips' identity,
  None in records written before it was kept), ``metric_defs`` (dict metric -> definition);
* training compute (:data:`COMPUTE_COLS`): ``own_*`` (the candidate's own training: steps, examples, seconds,
  FLOPs) and ``total_*`` (including its teacher's training); NaN in records written before compute was kept;
* ``valid_mss`` (the validation MSS of the evaluated weights, NaN when nothing was trained) and ``evaluated_at``
  (``best`` or ``last`` checkpoint; None when nothing was trained): :func:`reports.convergence.selected_validation`;
* artifacts resolved to absolute paths against the records file's folder: ``checkpoint``, ``audio_dir``,
  ``target_audio_dir`` (see :func:`_resolve` for records that stored working-directory-relative paths),
  and ``export`` (``"<format>: <path>; ..."`` of the artifacts ``ddspbench export`` wrote and parity-checked,
  None when none);
* provenance: ``machine``, ``threads``, ``device``, ``cpu_model``, ``torch_version``, ``git_commit``,
  ``cpu_count``, ``load_avg_1m`` (the 1-minute load average when the record was written).

``df.attrs`` holds ``units`` (metric -> unit), ``metrics`` (the metric columns), ``results_dirs`` and
``mixed`` (what differs between rows when mixing was allowed; empty otherwise).

A candidate id appearing twice in one records file (a resumed sweep that re-ran a trial) keeps its
last record. A directory may also hold several results directories (every ``*.jsonl`` below it is
read; ``results_dir`` is each file's folder). Only ``ok`` rows are checked for mixed hardware / metric definitions (failed rows measured
nothing); a provenance value that a record leaves out is unknown and not counted as a difference.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ddspbench.reports.convergence import selected_validation
from ddspbench.suite.errors import UserError
from ddspbench.suite.recipe import REFERENCE, REFERENCE_STEP, Recipe
from ddspbench.suite.records import ResultRecord, metric_unit, read_records

__all__ = ["load_results", "loaded_note", "records_frame", "HARDWARE_KEYS", "metric_columns", "finite", "clip_values",
           "hyperparameters", "hparams_text", "is_reference", "reference_mask", "arm_label", "COMPUTE_COLS"]

HARDWARE_KEYS: tuple[str, ...] = ("machine", "threads", "device")
_PROVENANCE_COLS: tuple[str, ...] = (*HARDWARE_KEYS, "cpu_model", "torch_version", "git_commit", "cpu_count",
                                     "load_avg_1m")


def _resolve(path: str | None, base: Path) -> str | None:
    """An artifact path of a record in folder ``base``, made absolute.

    Records store paths relative to their results folder (or absolute). Records written before that
    stored them relative to the working directory of the run (``results/smoke/candidates/t0001/audio``),
    which is unknowable later: for those, the longest tail of the path that exists under ``base``
    (``candidates/t0001/audio``) is taken.
    """
    if not path:
        return None
    p = Path(path)
    if p.is_absolute():
        return str(p)
    direct = (base / p).resolve()
    if direct.exists():
        return str(direct)
    parts = p.parts
    for i in range(1, len(parts)):
        tail = base.joinpath(*parts[i:])
        if tail.exists():
            return str(tail.resolve())
    return str(direct)


def _default_dir(base: Path, *parts: str) -> str | None:
    p = base.joinpath(*parts)
    return str(p.resolve()) if p.is_dir() else None


def _settings(recipe: Recipe | None) -> list[tuple[str, str, Any]]:
    """``(step key, name, value)`` of every scalar setting of a recipe, ordered by step key and name."""
    if recipe is None:
        return []
    return [(key, name, v) for key, step in sorted(recipe.keyed(), key=lambda ks: ks[0])
            for name, v in sorted(step.params.items()) if not isinstance(v, (dict, list))]


def hyperparameters(recipe: Recipe | None) -> dict[str, Any]:
    """The settings that tell two candidates of one method apart, keyed ``<step key>.<name>`` (column names).

    Every scalar parameter of every step of the recipe (a teacher's: its training ``steps``); the student size is its
    own column.
    """
    return {f"{key}.{name}": v for key, name, v in _settings(recipe)}


def _short(value: Any) -> str:
    if value is None:  # the compressor's own default, e.g. prune's finetune_steps: the family's student budget
        return "auto"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def hparams_text(recipe: Recipe | None) -> str:
    """A compact one-line form of :func:`hyperparameters`: ``ratio=0.608 ft=0`` (step keys only in chains), led by
    ``teacher=<variant>`` when the recipe starts from (or, for a reference, is) a teacher variant other than the
    default: two KD rows that differ only in their teacher must not read alike."""
    chain = recipe is not None and len(recipe.steps) > 1
    bits = [f"teacher={recipe.teacher}"] if recipe is not None and recipe.teacher is not None else []
    bits += [f"{key}.{name}={_short(v)}" if chain else f"{name}={_short(v)}" for key, name, v in _settings(recipe)]
    return " ".join(bits)


def is_reference(tags: Any) -> bool:
    """Whether a row's ``tags`` mark the reference (the teacher)."""
    return REFERENCE in (tags or ())


def reference_mask(df: pd.DataFrame) -> pd.Series:
    """Per row: the reference (teacher) rows, by their ``tags``."""
    if "tags" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["tags"].map(is_reference).astype(bool)


COMPUTE_COLS: tuple[str, ...] = ("own_steps", "own_examples", "own_seconds", "own_flops",
                                  "total_steps", "total_examples", "total_seconds", "total_flops")
"""Training compute of a row (:mod:`suite.compute`): its own (marginal) and including its teacher's training."""


def arm_label(rec: ResultRecord) -> str:
    """What a comparison calls a row: its method, with the variants its steps reported (their reports' ``variant``:
    ``scratch (teacher+student steps)``, ``prune (KD fine-tune)``) and the teacher variant it started from when not
    the default (``kd_audio (teacher short)``; a teacher variant's own row: ``teacher (short)``)."""
    variants = [str(s.details["variant"]) for s in rec.steps if isinstance(s.details.get("variant"), str)]
    teacher = rec.recipe.teacher if rec.recipe is not None else None
    if teacher is not None:
        variants.append(teacher if rec.method == REFERENCE_STEP else f"teacher {teacher}")
    return f"{rec.method} ({'; '.join(dict.fromkeys(variants))})" if variants else rec.method


def _teacher_recipe(teacher: dict[str, Any] | None) -> str | None:
    """The teacher a record used, without its seed: ``[teacher <variant>: ]<size>, <steps> steps`` (None: no teacher;
    what a configuration's runs over several teachers have in common, :func:`reports.seeds.configurations`)."""
    if not teacher or teacher.get("size") is None:
        return None
    variant = teacher.get("variant")
    steps = teacher.get("steps")
    return (f"teacher {variant}: " if variant else "") + f"{teacher['size']}, {steps} step{'' if steps == 1 else 's'}"


def _compute_cols(compute: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {c: math.nan for c in COMPUTE_COLS}
    for part in ("own", "total"):
        values = (compute or {}).get(part) or {}
        for k in ("steps", "examples", "seconds", "flops"):
            v = values.get(k)
            if v is not None:
                out[f"{part}_{k}"] = float(v)
    return out


def _row(rec: ResultRecord, base: Path) -> dict[str, Any]:
    art = rec.artifacts or {}
    prov = rec.provenance or {}
    hp = hyperparameters(rec.recipe)
    valid, which = selected_validation(rec.training)
    row: dict[str, Any] = {
        "candidate_id": rec.candidate_id,
        "study": rec.study,
        "trial": rec.trial,
        "family": rec.family,
        "size": rec.size,
        "method": rec.method,
        "arm": arm_label(rec),
        "teacher": (rec.teacher or {}).get("label"),
        "teacher_seed": (rec.teacher or {}).get("seed"),
        "teacher_recipe": _teacher_recipe(rec.teacher),
        **_compute_cols(rec.compute),
        "method_params": json.dumps(rec.method_params, sort_keys=True, separators=(",", ":"), default=str),  # shown
        "tags": tuple(sorted(rec.tags)),
        "training": rec.training,
        "hparams": hparams_text(rec.recipe),
        "hparam_values": hp,
        "dataset": rec.dataset,
        "instrument": rec.instrument,
        "seed": rec.seed,
        "config_id": rec.config_id,
        "status": rec.status,
        "preset": prov.get("preset"),
        "error": rec.error,
        "results_dir": str(base),
        "per_clip": {k: [float("nan") if v is None else float(v) for v in vs] for k, vs in rec.per_clip.items()},
        "clip_ids": list((rec.clips or {}).get("ids") or []) or None,
        "recording_ids": list((rec.clips or {}).get("recordings") or []) or None,
        "valid_mss": float("nan") if valid is None else valid,
        "evaluated_at": which,
        "metric_defs": dict(rec.metric_defs),
        "checkpoint": _resolve(art.get("checkpoint"), base),
        "audio_dir": _resolve(art.get("audio"), base) or _default_dir(base, "candidates", rec.candidate_id, "audio"),
        "target_audio_dir": _resolve(art.get("target_audio"), base) or _default_dir(base, "targets"),
        "export": "; ".join(f"{k.split(':', 1)[1]}: {_resolve(v, base)}" for k, v in sorted(art.items())
                            if k.startswith("export:")) or None,
    }
    for key in _PROVENANCE_COLS:
        row[key] = prov.get(key)
    for name, value in rec.metrics.items():
        row[name] = float("nan") if value is None else float(value)
    for name, iv in rec.intervals.items():
        if iv is not None and len(iv) == 2:
            lo, hi = iv
            row[f"{name}_ci_low"] = float("nan") if lo is None else float(lo)
            row[f"{name}_ci_high"] = float("nan") if hi is None else float(hi)
    return row


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The metric columns of a results frame (from ``df.attrs``)."""
    return [m for m in df.attrs.get("metrics", []) if m in df.columns]


def records_frame(
    records: Iterable[ResultRecord], base: str | os.PathLike[str] = ".", *, units: dict[str, str] | None = None
) -> pd.DataFrame:
    """One directory's records as a frame (no checks, no uid); see the module docstring for columns."""
    base_p = Path(base).resolve()
    latest: dict[str, ResultRecord] = {}
    for rec in records:
        latest.pop(rec.candidate_id, None)  # keep file order of the last occurrence
        latest[rec.candidate_id] = rec
    unit_map = dict(units or {})
    rows = []
    for rec in latest.values():
        for k, u in rec.units.items():
            unit_map.setdefault(k, u)
        rows.append(_row(rec, base_p))
    df = pd.DataFrame(rows)
    df.attrs["units"] = unit_map
    return df


def _one_line_values(df: pd.DataFrame, col: str) -> str:
    parts = []
    for value, grp in df.groupby(col, sort=True, dropna=True):
        ids = ", ".join(grp["uid"].astype(str).head(2))
        more = f" +{len(grp) - 2}" if len(grp) > 2 else ""
        parts.append(f"{value!s} ({len(grp)} rows: {ids}{more})")
    return "; ".join(parts)


def _differences(df: pd.DataFrame) -> list[str]:
    """One phrase per thing that differs between the ok rows (hardware keys, metric definitions)."""
    ok = df[df["status"] == "ok"]
    out: list[str] = []
    for key in HARDWARE_KEYS:
        if key not in ok.columns:
            continue
        known = ok[key].dropna().astype(str)
        if known.nunique() > 1:
            out.append(f"{key} differs: {_one_line_values(ok.loc[known.index].assign(**{key: known}), key)}")
    defs: dict[str, dict[str, list[str]]] = {}
    for uid, row_defs in zip(ok["uid"], ok["metric_defs"], strict=True):
        for metric, definition in (row_defs if isinstance(row_defs, dict) else {}).items():
            defs.setdefault(metric, {}).setdefault(str(definition), []).append(str(uid))
    for metric, by_def in sorted(defs.items()):
        if len(by_def) > 1:
            desc = "; ".join(
                f"{d!r} ({len(u)} rows: {', '.join(u[:2])}{f' +{len(u) - 2}' if len(u) > 2 else ''})"
                for d, u in sorted(by_def.items())
            )
            out.append(f"metric definition of {metric} differs: {desc}")
    return out


def load_results(
    dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], allow_mixed_hardware: bool = False
) -> pd.DataFrame:
    """Load results directories (each with a ``records.jsonl``) into one DataFrame.

    Args:
        dirs: one or more results directories (or ``.jsonl`` files).
        allow_mixed_hardware: combine rows measured on different machines / thread counts / devices
            or with different metric definitions; otherwise that is a :class:`UserError` naming the
            values and rows that differ. What differs is kept in ``df.attrs["mixed"]``.

    Raises:
        UserError: a directory is missing or holds no records, or rows are not comparable.
    """
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    if not dirs:
        raise UserError("no results directory given")
    frames: list[pd.DataFrame] = []
    units: dict[str, str] = {}
    for d in dirs:
        p = Path(d)
        if not p.exists():
            raise UserError(f"results directory {str(p)!r} does not exist")
        found = 0
        # one frame per JSON Lines file: relative artifact paths are relative to the file's folder, and a
        # folder holding several studies' results directories keeps their candidates apart
        for file in sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]:
            recs = list(read_records([file]))
            if not recs:
                continue
            found += len(recs)
            f = records_frame(recs, file.parent)
            units.update({k: v for k, v in f.attrs["units"].items() if k not in units})
            frames.append(f)
        if not found:
            where = p / "records.jsonl" if p.is_dir() else p
            raise UserError(f"no result records in {str(p)!r} (expected ResultRecord lines in {str(where)!r})")
    df = pd.concat(frames, ignore_index=True, sort=False)
    dup = df["candidate_id"].duplicated(keep=False)
    prefix = df["study"].where(df["study"].astype(bool), df["results_dir"].map(lambda s: Path(s).name))
    df.insert(0, "uid", df["candidate_id"].where(~dup, prefix + "/" + df["candidate_id"]))
    still = df["uid"].duplicated(keep=False)
    if still.any():  # two directories with the same study name and ids: number them
        df.loc[still, "uid"] = df.loc[still, "uid"] + "#" + df.loc[still].groupby("uid").cumcount().astype(str)
    metrics = sorted({c for f in frames for c in f.columns if c in units})
    for m in metrics:
        df[m] = pd.to_numeric(df[m], errors="coerce").astype(float)
    for m in metrics:
        units.setdefault(m, metric_unit(m))
    df.attrs["units"] = {m: units[m] for m in metrics}
    df.attrs["metrics"] = metrics
    df.attrs["results_dirs"] = [str(Path(d).resolve()) for d in dirs]
    diffs = _differences(df)
    if diffs and not allow_mixed_hardware:
        raise UserError("rows are not comparable: " + " | ".join(diffs) + " (pass --allow-mixed-hardware to combine)")
    df.attrs["mixed"] = diffs
    return df


def finite(value: Any) -> bool:
    """True for a real, finite number."""
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def clip_values(row: pd.Series, metric: str) -> np.ndarray | None:
    """The per-clip values of ``metric`` for one row, or None."""
    pc = row.get("per_clip")
    if not isinstance(pc, dict) or not pc.get(metric):
        return None
    return np.asarray(pc[metric], dtype=float)


def loaded_note(df: pd.DataFrame) -> str | None:
    """A note for the report when speed was timed on a busy machine, else None.

    Counts the ok rows whose 1-minute load average, read when the record was written, was above the
    machine's core count: more runnable work than cores, so a timed call waited for the CPU at times.
    The figures stay in the tables; the note says which way they lean.
    """
    if not {"load_avg_1m", "cpu_count"} <= set(df.columns):
        return None
    ok = df[df["status"] == "ok"]
    load = pd.to_numeric(ok["load_avg_1m"], errors="coerce")
    cores = pd.to_numeric(ok["cpu_count"], errors="coerce")
    busy = load > cores
    if not busy.any():
        return None
    return (f"Timed under load: {int(busy.sum())} of {len(ok)} ok rows were recorded while the machine's 1-minute load "
            f"average was above its core count (up to {load[busy].max():.1f} on {int(cores[busy].max())} cores), so "
            "their speed figures (rtf, latency) may be inflated by other work. Re-time them on a quiet machine before "
            "publishing speed.")
