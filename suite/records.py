"""The result row every candidate becomes, and the definitions of the metrics it can carry.

A :class:`ResultRecord` is one typed row: who the candidate is (family, size, its :class:`suite.recipe.Recipe`
and what each step did, dataset, seed), how it did (``metrics`` keyed by the names in :data:`STANDARD_METRICS`,
each with its unit in ``units``), whether it worked (``status`` and ``error``), where its files are,
and where the numbers come from (``provenance``). Failed candidates are rows too, with ``error`` set.

Reports read these rows (JSON Lines, one file per study) and nothing else.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import errno
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddspbench.suite.errors import printable
from ddspbench.suite.metrics import standard as _standard  # noqa: F401 - declares the standard metrics
from ddspbench.suite.metrics.declare import DECLARED, STREAM_BUFFERS, Direction, MetricDecl
from ddspbench.suite.recipe import Recipe, StepReport, tags_of
from ddspbench.suite.upgrade import SCHEMA_1, SCHEMA_2, legacy_recipe, upgrade_row

__all__ = [
    "Direction",
    "MetricSpec",
    "Measurements",
    "MEASUREMENT_FIELDS",
    "ResultRecord",
    "STANDARD_METRICS",
    "STREAM_BUFFERS",
    "SCHEMA",
    "SCHEMA_1",
    "append_record",
    "read_records",
    "RecordNotWritten",
    "SkippedLine",
    "warn_skipped",
    "metric_unit",
    "seed_means",
]

SCHEMA = SCHEMA_2
"""Schema 2: ``recipe`` and ``steps`` instead of ``method``/``method_params`` (schema-1 rows are upgraded on load).
"""


MetricSpec = MetricDecl
"""The declaration of a metric (:class:`suite.metrics.declare.MetricDecl`; the old name)."""

STANDARD_METRICS: Mapping[str, MetricDecl] = DECLARED
"""Every declared metric by name (:data:`suite.metrics.declare.DECLARED`, filled by ``suite/metrics/standard/`` and
plug-ins)."""


def metric_unit(name: str) -> str:
    """The unit of a metric name ("" for undeclared names)."""
    spec = DECLARED.get(name)
    return spec.unit if spec else ""


@dataclass(frozen=True, kw_only=True)
class Measurements:
    """What an evaluation measured: the one declaration of a record's result fields.

    :func:`suite.evaluate.evaluate_model` returns one (``EvalResult``), :class:`ResultRecord` inherits
    them, and :data:`MEASUREMENT_FIELDS` names them for code that copies them across.

    Attributes:
        metrics: metric name -> value (None where not measured). Names: :data:`STANDARD_METRICS`.
        units: metric name -> unit, for every key of ``metrics``.
        per_clip: metric name -> per-test-clip values (for bootstrap intervals and significance).
        intervals: metric name -> [low, high] 95% confidence interval.
        metric_defs: metric name -> definition string (e.g. ``{"fad": "logmel/1"}``); rows with different
            definitions are not comparable.
        artifacts: name -> path (checkpoint, rendered audio folder, config).
        clips: the identity of the test clips the ``per_clip`` lists are in the order of: ``ids`` (clip id and
            crop, ``<clip_id>[0:<frames>]``) and ``recordings`` (the source recording of each clip); empty in
            records written before clip identity was kept (reports then pair by position).
    """

    metrics: dict[str, float | None] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    per_clip: dict[str, list[float]] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    metric_defs: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    clips: dict[str, list[str]] = field(default_factory=dict)


MEASUREMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Measurements))
"""The result fields of a record (``metrics``, ``units``, ``per_clip``, ``intervals``, ``metric_defs``, ``artifacts``,
``clips``)."""


@dataclass(frozen=True, slots=True)
class ResultRecord(Measurements):
    """One candidate, measured.

    Attributes:
        candidate_id: unique id of the candidate within its study (e.g. ``"t0007"`` or a hash).
        study: sweep/study name ("" for a one-off ``evaluate``).
        trial: Optuna trial number, or None outside a sweep.
        family: model family registry name (``hpn``, ``wavetable``, ``ddx7``).
        size: the candidate's size label (``full``, ``reduced``, ``hidden=64``-style custom widths, ``full:pruned``:
            what its last step made).
        recipe: what the candidate is made of (:class:`suite.recipe.Recipe`: family, student size, steps with their
            complete parameters); None only for a trial whose sampler failed before it made one (``sampled`` then
            holds what it had chosen).
        steps: what each step did (:class:`suite.recipe.StepReport`: parameters, tags, sizes before/after, seconds,
            training summary, compute, size label); empty for a candidate that failed before or while compressing.
        dataset: dataset name (and instrument/timbre subset where relevant, in ``instrument``).
        seed: the seed everything random in this candidate used.
        config_id: the configuration this record measures; records of one configuration trained with
            different seeds share it (reports average over them). None: the record is its own configuration.
        status: ``"ok"`` or ``"failed"``.
        error: one-line error for failed candidates.
        metrics, units, per_clip, intervals, metric_defs, artifacts, clips: the result fields (:class:`Measurements`).
        provenance: package version, git commit, torch version, machine fingerprint, CPU, threads, device, time, preset.
        compute: training compute, own / inherited from the teacher / total (:mod:`suite.compute`); None in
            records written before it was kept. (Each step's own part is also in its step report's ``compute``.)
        teacher: the teacher a method used (``key``, ``seed``, ``size``, ``steps``, ``label``); None for methods
            that use none (scratch) and in older records.
        sampled: the sampler's raw choices of a trial that has no recipe (else empty).
        extra: top-level fields this version does not know (a later writer's additive fields), kept and written back.

    ``method``, ``method_params`` and ``tags`` are views of ``recipe`` and ``steps``.
    """

    candidate_id: str
    family: str
    size: str
    dataset: str
    seed: int
    recipe: Recipe | None = None
    steps: tuple[StepReport, ...] = ()
    status: str = "ok"
    error: str | None = None
    study: str = ""
    trial: int | None = None
    instrument: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    config_id: str | None = None
    compute: dict[str, Any] | None = None
    teacher: dict[str, Any] | None = None
    sampled: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.status not in ("ok", "failed"):
            raise ValueError(f"status must be 'ok' or 'failed', got {self.status!r}")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed record needs its error")
        missing = [k for k in self.metrics if k not in self.units]
        if missing:
            raise ValueError(f"metrics without a unit: {missing}")
        if self.recipe is not None and not isinstance(self.recipe, Recipe):
            raise TypeError("recipe must be a suite.recipe.Recipe")
        object.__setattr__(self, "steps", tuple(self.steps))

    @property
    def method(self) -> str:
        """The method view (:attr:`suite.recipe.Recipe.method`; ``?`` without a recipe)."""
        return self.recipe.method if self.recipe is not None else "?"

    @property
    def method_params(self) -> dict[str, Any]:
        """The parameters view (:attr:`suite.recipe.Recipe.method_params`; the sampler's choices without a recipe)."""
        return self.recipe.method_params if self.recipe is not None else dict(self.sampled)

    @property
    def tags(self) -> frozenset[str]:
        """Every tag the record's steps declared (``distillation``, ``from_scratch``, ``reference``...)."""
        return tags_of(self.steps)

    @property
    def training(self) -> list[dict[str, Any]]:
        """The training summaries of the steps that trained, in step order (the last one made the final weights)."""
        return [dict(s.training) for s in self.steps if s.training]

    @classmethod
    def with_units(cls, **kwargs: Any) -> ResultRecord:
        """Build a record, filling ``units`` for every metric from the declarations.

        ``method`` and ``method_params`` (a schema-1 caller's way to say what the candidate is) are accepted and
        turned into ``recipe`` and ``steps`` by :func:`suite.upgrade.legacy_recipe`.
        """
        metrics = kwargs.get("metrics", {}) or {}
        units = dict(kwargs.pop("units", {}) or {})
        for k in metrics:
            units.setdefault(k, metric_unit(k))
        if "method" in kwargs or "method_params" in kwargs:
            recipe, steps, sampled = legacy_recipe(str(kwargs.get("family")), str(kwargs.get("size")),
                                                   str(kwargs.pop("method", "?")), kwargs.pop("method_params", None))
            kwargs.setdefault("recipe", recipe)
            kwargs.setdefault("steps", steps)
            if sampled:
                kwargs.setdefault("sampled", sampled)
        return cls(units=units, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats become None; ``config_id``, ``compute``, ``teacher`` left out when None,
        ``sampled`` when empty; ``extra`` fields written back at the top level; ``method`` written as a view for people
        and ``jq``)."""
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in MEASUREMENT_FIELDS + ("provenance", "compute", "teacher"):
            d[k] = copy.deepcopy(d[k])
        d["recipe"] = None if self.recipe is None else self.recipe.to_dict()
        d["steps"] = [s.to_dict() for s in self.steps]
        for key in ("config_id", "compute", "teacher"):  # additive fields: absent when unknown
            if d[key] is None:
                del d[key]
        if not d["sampled"]:
            del d["sampled"]
        extra = d.pop("extra")
        d["method"] = self.method
        d.update({k: v for k, v in extra.items() if k not in d})
        return json_clean(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultRecord:
        """Inverse of :meth:`to_dict` (a schema-1 row is upgraded first, :func:`suite.upgrade.upgrade_row`); fields
        this version does not know land in ``extra``."""
        d = upgrade_row(d)
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names and k != "extra"}
        kwargs["extra"] = {k: v for k, v in d.items() if k not in names and k not in _VIEWS}
        raw = kwargs.get("recipe")
        kwargs["recipe"] = Recipe.from_dict(raw) if isinstance(raw, dict) else None
        kwargs["steps"] = tuple(StepReport.from_dict(s) for s in kwargs.get("steps") or ())
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)


_VIEWS = frozenset({"method", "method_params"})
"""Fields :meth:`ResultRecord.to_dict` writes as views of others (read back from ``recipe``, not from themselves)."""


def json_clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return json_clean(obj.item())
    return obj


def seed_means(records: Iterable[ResultRecord]) -> dict[str, float]:
    """Every metric's mean over the ok records where it is finite: the seeds of one configuration as a sweep
    tells Optuna and shows them (reports average them with :func:`reports.seeds.configurations`)."""
    sums: dict[str, list[float]] = {}
    for rec in records:
        if rec.status != "ok":
            continue
        for name, v in rec.metrics.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                sums.setdefault(name, []).append(float(v))
    return {name: sum(vs) / len(vs) for name, vs in sorted(sums.items())}


class RecordNotWritten(OSError):
    """An append that did not land whole (full disk, I/O error); the file was left as it was."""


def append_record(path: str | os.PathLike[str], record: ResultRecord) -> None:
    """Append one record to a JSON Lines file: the whole line lands, or the file is left as it was.

    The line is written under an exclusive ``flock`` (several processes append to one file), the byte
    count of every ``write`` is checked, and the file is fsynced (its folder too when the file is new).
    A short or failed write is cut off again (``ftruncate`` to the old size) and raised as
    :class:`RecordNotWritten`; a caller that gets it must not count the candidate as finished.
    A file whose last line was cut short by a killed writer gets a newline first, so the new record
    starts its own line (the broken line is then reported and skipped by :func:`read_records`).
    """
    import fcntl

    line = (record.to_json() + "\n").encode()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    created = not p.exists()
    fd = os.open(p, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            line = b"\n" + line
        try:
            done = 0
            while done < len(line):
                n = os.write(fd, line[done:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, "write stored no bytes")
                done += n
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
                os.fsync(fd)
            why = exc.strerror or str(exc) or type(exc).__name__
            raise RecordNotWritten(exc.errno or errno.EIO,
                                   f"record {record.candidate_id} not written ({why}); the file is as it was", str(p)) from exc
    finally:
        os.close(fd)  # closing releases the lock
    if created:
        _fsync_dir(p.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable (a no-op where directories cannot be opened)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line of a records file that :func:`read_records` could not use: where it is and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: skipped ({self.reason})"


_WARNED: set[tuple[str, int, str]] = set()


def warn_skipped(skip: SkippedLine) -> None:
    """The default report of a skipped line: ``warning: <file>:<line>: skipped (<why>)`` on stderr, once."""
    key = (skip.path, skip.line, skip.reason)
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: {printable(skip)}", file=sys.stderr)  # the path and the reason may quote the file


def _record_from_line(raw: bytes) -> ResultRecord | str:
    """The record on one line, or why there is none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start})"
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        return "not valid JSON: a truncated or garbled line"
    if not isinstance(d, dict):
        return f"not a JSON object ({type(d).__name__})"
    if d.get("schema") not in (SCHEMA, SCHEMA_1):
        return f"schema {str(d.get('schema'))[:40]!r} is not {SCHEMA} (or {SCHEMA_1})"
    metrics = d.get("metrics", {})
    if not isinstance(metrics, dict):
        return "metrics is not a mapping"
    for name, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"metric {str(name)[:40]!r} is not a number ({str(value)[:40]!r})"
    try:
        return ResultRecord.from_dict(d)
    except (TypeError, ValueError, KeyError) as exc:
        return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def read_records(paths: Iterable[str | os.PathLike[str]],
                 on_skip: Callable[[SkippedLine], None] | None = warn_skipped) -> Iterator[ResultRecord]:
    """Records from JSON Lines files or directories (every ``*.jsonl`` below them).

    A line that is not a record (a line cut short by a killed writer, non-UTF-8 bytes, an unknown
    field, a metric that is not a number, another schema) is skipped and reported to ``on_skip``
    with its file, line number and reason (default: a ``warning:`` line on stderr, once per line);
    blank lines are ignored. ``on_skip=None`` skips silently.
    """
    for path in paths:
        p = Path(path)
        files = sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
        for f in files:
            with open(f, "rb") as fh:
                for number, raw in enumerate(fh, start=1):
                    raw = raw.strip()
                    if not raw:
                        continue
                    got = _record_from_line(raw)
                    if isinstance(got, ResultRecord):
                        yield got
                    elif on_skip is not None:
                        on_skip(SkippedLine(str(f), number, got))
