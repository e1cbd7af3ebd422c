"""The result row every candidate becomes, and the definitions of the metrics it can carry.

A :class:`ResultRecord` is one typed row: who the candidate is (family, size, method and its
parameters, dataset, seed), how it did (``metrics`` keyed by the names in :data:`STANDARD_METRICS`,
each with its unit in ``units``), whether it worked (``status`` and ``error``), where its files are,
and where the numbers come from (``provenance``). Failed candidates are rows too, with ``error`` set.

Reports read these rows (JSON Lines, one file per study) and nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.registry import METRICS

__all__ = [
    "Direction",
    "MetricSpec",
    "ResultRecord",
    "STANDARD_METRICS",
    "STREAM_BUFFERS",
    "SCHEMA",
    "append_record",
    "read_records",
    "metric_unit",
]

SCHEMA = "ddspbench.result/1"
STREAM_BUFFERS: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)


class Direction(enum.Enum):
    """Whether smaller or larger is better (the same two values Optuna uses)."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a metric name means: its unit, which way is better, and how it is measured."""

    name: str
    unit: str
    direction: Direction
    description: str
    version: str = "1"


def _std(name: str, unit: str, description: str, direction: Direction = Direction.MINIMIZE) -> MetricSpec:
    spec = MetricSpec(name=name, unit=unit, direction=direction, description=description)
    METRICS.register(name, spec, description=description, unit=unit, direction=direction.value)
    return spec


STANDARD_METRICS: dict[str, MetricSpec] = {
    s.name: s
    for s in [
        _std("mss", "1", "multi-scale spectral distance to the target clips (REFERENCE §5), mean over test clips"),
        _std("mss_teacher", "1", "multi-scale spectral distance to the teacher's audio, mean over test clips"),
        _std("fad", "1", "Frechet Audio Distance between target and model clips (embedding in metric_defs)"),
        _std("fad_inf", "1", "FAD extrapolated to infinite sample size (FAD-infinity)"),
        _std("kad", "1", "Kernel Audio Distance (100 x unbiased MMD^2, Gaussian kernel, median bandwidth) between target and model clips"),
        _std("rtf_offline", "s/s", "real-time factor, whole 4 s clip, median over repeats (processing s per audio s)"),
        _std("params", "count", "parameter count (total)"),
        _std("params_trainable", "count", "trainable parameter count"),
        _std("param_bytes", "B", "bytes of parameters and buffers as stored in memory"),
        _std("checkpoint_bytes", "B", "bytes of the serialized checkpoint file"),
        _std("peak_mem_bytes", "B", "peak inference RSS minus baseline, fresh subprocess, 4 s clip"),
        _std("engine_bytes", "B", "bytes the native engine holds for one stream at 64-sample buffers: weights as "
             "stored, constants, streaming state, per-call scratch (from the engine's arrays)"),
        _std("peak_rss_bytes", "B", "peak RSS of a fresh process streaming 4 s through the native engine at "
             "64-sample buffers (memory_profiler + VmHWM), weights included, no baseline subtracted"),
        _std("flops_per_s", "FLOP/s", "decoder FLOPs per second of audio (GRU included)"),
        _std("train_seconds", "s", "wall time spent training this candidate (teacher excluded)"),
    ]
    + [
        spec
        for b in STREAM_BUFFERS
        for spec in (
            _std(f"rtf_stream_{b}", "s/s", f"streaming real-time factor at {b}-sample buffers, state carried, median"),
            _std(f"p99_ms_stream_{b}", "ms", f"99th percentile processing time of one {b}-sample buffer"),
            _std(f"miss_rate_stream_{b}", "1", f"share of {b}-sample buffers that took longer than their duration"),
        )
    ]
}


def metric_unit(name: str) -> str:
    """The unit of a metric name ("" for names not in the standard table)."""
    spec = STANDARD_METRICS.get(name)
    return spec.unit if spec else ""


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One candidate, measured.

    Attributes:
        candidate_id: unique id of the candidate within its study (e.g. ``"t0007"`` or a hash).
        study: sweep/study name ("" for a one-off ``evaluate``).
        trial: Optuna trial number, or None outside a sweep.
        family: model family registry name (``hpn``, ``wavetable``, ``ddx7``).
        size: student size name (``full``, ``reduced``, or ``hidden=64``-style custom widths).
        method: compressor name, or chain joined by ``+`` (``prune+kd_audio+quantize``); ``teacher`` for the reference.
        method_params: every hyper-parameter of the method(s), JSON-able.
        dataset: dataset name (and instrument/timbre subset where relevant, in ``instrument``).
        seed: the seed everything random in this candidate used.
        status: ``"ok"`` or ``"failed"``.
        error: one-line error for failed candidates.
        metrics: metric name -> value (None where not measured). Names: :data:`STANDARD_METRICS`.
        units: metric name -> unit, for every key of ``metrics``.
        per_clip: metric name -> per-test-clip values (for bootstrap intervals and significance).
        intervals: metric name -> [low, high] 95% confidence interval.
        metric_defs: metric name -> definition string (e.g. ``{"fad": "logmel/1"}``); rows with different
            definitions are not comparable.
        artifacts: name -> path (checkpoint, rendered audio folder, config).
        provenance: package version, git commit, torch version, machine fingerprint, CPU, threads, device, time.
    """

    candidate_id: str
    family: str
    size: str
    method: str
    dataset: str
    seed: int
    status: str = "ok"
    error: str | None = None
    study: str = ""
    trial: int | None = None
    instrument: str | None = None
    method_params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    per_clip: dict[str, list[float]] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    metric_defs: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.status not in ("ok", "failed"):
            raise ValueError(f"status must be 'ok' or 'failed', got {self.status!r}")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed record needs its error")
        missing = [k for k in self.metrics if k not in self.units]
        if missing:
            raise ValueError(f"metrics without a unit: {missing}")

    @classmethod
    def with_units(cls, **kwargs: Any) -> ResultRecord:
        """Build a record, filling ``units`` for every metric from the standard table."""
        metrics = kwargs.get("metrics", {}) or {}
        units = dict(kwargs.pop("units", {}) or {})
        for k in metrics:
            units.setdefault(k, metric_unit(k))
        return cls(units=units, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats become None)."""
        return _json_clean(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultRecord:
        """Inverse of :meth:`to_dict`; unknown keys are rejected."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown result fields: {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)


def _json_clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _json_clean(obj.item())
    return obj


def append_record(path: str | os.PathLike[str], record: ResultRecord) -> None:
    """Append one record to a JSON Lines file, atomically per line (O_APPEND, one write, fsync).

    Several processes may append to the same file; each line is written with a single ``write``.
    """
    line = (record.to_json() + "\n").encode()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(paths: Iterable[str | os.PathLike[str]]) -> Iterator[ResultRecord]:
    """Records from JSON Lines files or directories (every ``*.jsonl`` below them).

    A truncated last line (a writer killed mid-write) is skipped, not fatal.
    """
    for path in paths:
        p = Path(path)
        files = sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
        for f in files:
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        d = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(d, dict) and d.get("schema") == SCHEMA:
                        yield ResultRecord.from_dict(d)
