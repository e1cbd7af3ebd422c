"""Running a study: create or resume it, hand out trials to one or many processes, recover dead ones.

The loop (:func:`run_trials`) is the same for ``ddspbench sweep`` and ``ddspbench worker``: under a
lock shared by every process of the study (:func:`suite.sweep.storage.slot_lock`) it recovers stale
trials, counts finished ones and asks Optuna for a new trial only while fewer than N are finished or
running, so a study ends with exactly N finished trials however many workers join. Each trial runs
the real pipeline (:func:`suite.pipeline.run_candidate`), appends its record, then tells Optuna:
``COMPLETE`` with the objective values, or ``FAIL``.

A trial left ``RUNNING`` by a dead process is recovered. It is stale when its heartbeat is older
than ``grace_s`` seconds, whatever its pid (a pid can be reused by an unrelated process after
kill -9), and sooner on the same host when its pid is gone or now belongs to a process started at
another time (``worker_started``, the start time from ``/proc``). Then if its record was written it is told from the record, otherwise a
failed record with ``interrupted`` is written, the trial is marked ``FAIL`` with the user attribute
``interrupted`` (it does not count towards N) and its parameters are enqueued again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from suite.errors import UserError
from suite.pipeline import Workspace, failed_record, one_line, run_candidate
from suite.records import STANDARD_METRICS, ResultRecord, append_record, read_records
from suite.sweep.config import SweepConfig, config_from_dict, config_hash
from suite.sweep.sampler import budget_sampler
from suite.sweep.space import (
    ResolvedSpace,
    chosen_method,
    covering_trials,
    resolve_space,
    suggest_candidate,
)
from suite.sweep.storage import mask_url, open_storage, slot_lock

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ATTR_CONFIG",
    "ATTR_HASH",
    "ATTR_TRIALS",
    "RunSummary",
    "open_study",
    "load_study_config",
    "run_trials",
    "count_trials",
    "candidate_id",
]

ATTR_CONFIG = "ddspbench.config"
ATTR_HASH = "ddspbench.config_hash"
ATTR_TRIALS = "ddspbench.trials"
ATTR_COVERED = "ddspbench.covering_enqueued"
HEARTBEAT_S = 10.0


def candidate_id(trial_number: int) -> str:
    """The candidate id of a trial (``t0007``)."""
    return f"t{trial_number:04d}"


@dataclass
class RunSummary:
    """What one process did: trials it ran, and the study's totals when it stopped."""

    ran: int = 0
    ok: int = 0
    failed: int = 0
    finished_total: int = 0
    target: int = 0
    records: list[ResultRecord] = field(default_factory=list)


def _directions(cfg: SweepConfig) -> list[Any]:
    import optuna

    return [optuna.study.StudyDirection[STANDARD_METRICS[o].direction.name] for o in cfg.objectives]


def open_study(cfg: SweepConfig, storage_url: str, *, worker_offset: int = 0,
               write_attrs: bool = True) -> tuple[optuna.Study, Any]:
    """Create the study or resume it (same configuration required); store the settings in its attributes.

    The sampler is seeded with ``cfg.seed`` plus the number of trials already there plus
    ``worker_offset``, so a resumed run or a second worker does not replay the same proposals.

    Returns the study and its storage. A study of the same name made with another configuration is a
    :class:`UserError` (pick another ``--study`` or ``--out``).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    n_before = existing[cfg.study].n_trials if cfg.study in existing else 0
    sampler = budget_sampler(cfg.sampler, cfg.seed + n_before + worker_offset, cfg.trials)  # settings sized to the budget
    chash = config_hash(cfg)
    if cfg.study in existing:
        study = optuna.load_study(study_name=cfg.study, storage=storage, sampler=sampler)
        old = study.user_attrs.get(ATTR_HASH)
        if old is not None and old != chash:
            raise UserError(
                f"study {cfg.study!r} in {mask_url(storage_url)} was made with a different configuration; "
                "use another --study (or --out) for a new sweep"
            )
    else:
        study = optuna.create_study(storage=storage, study_name=cfg.study, directions=_directions(cfg),
                                    sampler=sampler, load_if_exists=True)
    if list(study.metric_names or []) != list(cfg.objectives):  # Optuna's tools then name the axes (also on resume)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(cfg.objectives))
    if write_attrs:
        study.set_user_attr(ATTR_CONFIG, cfg.to_dict())
        study.set_user_attr(ATTR_HASH, chash)
        study.set_user_attr(ATTR_TRIALS, cfg.trials)
    return study, storage


def load_study_config(storage_url: str, study_name: str) -> SweepConfig:
    """The configuration ``sweep`` stored in a study (what a ``worker`` runs)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study_name not in names:
        known = ", ".join(names) or "(none)"
        raise UserError(f"no study {study_name!r} in {mask_url(storage_url)} (studies: {known}); start it with `ddspbench sweep`")
    attrs = optuna.load_study(study_name=study_name, storage=storage).user_attrs
    if ATTR_CONFIG not in attrs:
        raise UserError(f"study {study_name!r} was not made by `ddspbench sweep` (no stored configuration)")
    cfg = config_from_dict(attrs[ATTR_CONFIG], where=f"study {study_name} config")
    cfg.trials = int(attrs.get(ATTR_TRIALS, cfg.trials))
    return cfg


def enqueue_covering(study: optuna.Study, space: ResolvedSpace, cfg: SweepConfig) -> int:
    """Enqueue the covering set once per study (call under the slot lock); returns how many were added."""
    if not cfg.covering or study.user_attrs.get(ATTR_COVERED):
        return 0
    fixed = covering_trials(space, cfg.trials)
    for params in fixed:
        study.enqueue_trial(params)
    study.set_user_attr(ATTR_COVERED, len(fixed))
    return len(fixed)


def count_trials(study: optuna.Study) -> tuple[int, int]:
    """``(finished, running)``: COMPLETE + FAIL trials not marked ``interrupted``, and RUNNING trials."""
    from optuna.trial import TrialState

    finished = running = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING)):
        if t.state == TrialState.RUNNING:
            running += 1
        elif not t.user_attrs.get("interrupted"):
            finished += 1
    return finished, running


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name in (...) may hold spaces
    except (OSError, IndexError, ValueError):
        return None


def _is_stale(t: optuna.trial.FrozenTrial, grace_s: float, now: float) -> bool:
    beat = t.user_attrs.get("heartbeat")
    if beat is None and t.datetime_start is not None:
        beat = t.datetime_start.timestamp()
    if isinstance(beat, (int, float)) and now - float(beat) > grace_s:
        return True  # silent for too long, whatever its pid says (pids are reused)
    host, pid = t.user_attrs.get("worker_host"), t.user_attrs.get("worker_pid")
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    if not _pid_alive(pid):
        return True
    started = t.user_attrs.get("worker_started")
    return isinstance(started, int) and process_start(pid) not in (None, started)  # the pid was reused


def _tell_from_record(study: optuna.Study, number: int, rec: ResultRecord, cfg: SweepConfig) -> bool:
    """Tell Optuna a trial's outcome from its record; True if it completed."""
    from optuna.trial import TrialState

    values = [rec.metrics.get(o) for o in cfg.objectives]
    if rec.status == "ok" and all(isinstance(v, (int, float)) for v in values):
        study.tell(number, [float(v) for v in values])  # type: ignore[arg-type]
        return True
    study.tell(number, state=TrialState.FAIL)
    return False


def _mark_interrupted(study: optuna.Study, t: optuna.trial.FrozenTrial, ws: Workspace, why: str,
                      write_record: bool = True) -> None:
    """Write the trial's failed ``interrupted`` record, mark it FAIL (not counted) and enqueue its parameters again."""
    import optuna as _optuna
    from optuna.trial import TrialState

    if write_record:
        cid = candidate_id(t.number)
        rec = failed_record(ws.cfg, candidate_id=cid, trial=t.number, family=str(t.params.get("family", "?")),
                            size="?", method=chosen_method(t.params), method_params=dict(t.params),
                            error=f"interrupted ({why}); re-run as a new trial")
        append_record(ws.records_path, rec)
    handle = _optuna.trial.Trial(study, t._trial_id)
    handle.set_user_attr("interrupted", True)
    handle.set_user_attr("record", _record_attr(ws))
    study.tell(t.number, state=TrialState.FAIL)
    if t.params:
        study.enqueue_trial(dict(t.params))


def recover_stale(study: optuna.Study, ws: Workspace, grace_s: float) -> int:
    """Settle RUNNING trials whose process is gone (call under the slot lock); returns how many."""
    from optuna.trial import TrialState

    now = time.time()
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if _is_stale(t, grace_s, now)]
    if not stale:
        return 0
    written = {r.candidate_id: r for r in read_records([ws.records_path])} if ws.records_path.is_file() else {}
    for t in stale:
        rec = written.get(candidate_id(t.number))
        if rec is not None and not (rec.error or "").startswith("interrupted"):
            _tell_from_record(study, t.number, rec, ws.cfg)  # killed after its record was written
        else:
            _mark_interrupted(study, t, ws, "its process stopped", write_record=rec is None)
    return len(stale)


class _Heartbeat:
    """Writes ``heartbeat`` (epoch seconds) into a running trial's user attributes every few seconds."""

    def __init__(self, trial: optuna.trial.Trial, every: float = HEARTBEAT_S) -> None:
        self.trial, self.every = trial, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ddspbench-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):  # a missed beat only delays stale detection
                self.trial.set_user_attr("heartbeat", time.time())

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    """Ignore further SIGINTs while the interrupted trial is written down (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def run_trials(study: optuna.Study, storage: Any, storage_url: str, cfg: SweepConfig, ws: Workspace, *,
               target: int | None = None, display: Any = None, grace_s: float = 120.0,
               poll_s: float = 2.0, max_trials: int | None = None, space: ResolvedSpace | None = None) -> RunSummary:
    """Run trials until the study has ``target`` finished trials (default ``cfg.trials``).

    Args:
        study, storage, storage_url: the study (from :func:`open_study`) and where it lives.
        cfg: the study's configuration.
        ws: the results workspace.
        target: finished trials the study should end with.
        display: an object with ``update(finished, target, label)`` and ``trial_done(record, seconds)``.
        grace_s: a RUNNING trial with no heartbeat for this long (and not provably alive) is stale.
        poll_s: how often to look again while other processes run the last trials.
        max_trials: stop after running this many trials in this process (None: no limit).
        space: the study's resolved space (None: resolved here from ``cfg``); pass it to resolve once.

    Raises:
        KeyboardInterrupt: after recording the interrupted trial as failed (the caller exits 130).
    """
    space = resolve_space(cfg) if space is None else space
    target = cfg.trials if target is None else target
    summary = RunSummary(target=target)
    me: dict[str, Any] = {"worker_host": socket.gethostname(), "worker_pid": os.getpid()}
    started = process_start(os.getpid())
    if started is not None:
        me["worker_started"] = started
    with slot_lock(storage_url, storage, cfg.study):
        enqueue_covering(study, space, cfg)
    while max_trials is None or summary.ran < max_trials:
        trial = None
        with slot_lock(storage_url, storage, cfg.study):
            recover_stale(study, ws, grace_s)
            finished, running = count_trials(study)
            summary.finished_total = finished
            if finished >= target:
                break
            if finished + running < target:
                trial = study.ask()
                for k, v in {**me, "heartbeat": time.time()}.items():
                    trial.set_user_attr(k, v)
        if display is not None:
            display.update(finished, target, None)
        if trial is None:
            time.sleep(poll_s)  # the last trials run elsewhere; wait for them (or for them to go stale)
            continue
        record = _run_one(study, trial, cfg, ws, space, display)
        summary.ran += 1
        summary.records.append(record)
        if record.status == "ok":
            summary.ok += 1
        else:
            summary.failed += 1
    summary.finished_total = count_trials(study)[0]
    return summary


def _record_attr(ws: Workspace) -> str:
    """The records file as stored in a trial: relative to the results folder (``records.jsonl``)."""
    return ws.records_path.relative_to(ws.out).as_posix()


def _set_metric_attrs(trial: optuna.trial.Trial, record: ResultRecord) -> None:
    """Every finite metric of the record as a trial user attribute ``metric.<name>`` (for optuna-dashboard)."""
    import math

    for name, value in sorted(record.metrics.items()):
        if isinstance(value, (int, float)) and math.isfinite(value):
            trial.set_user_attr(f"metric.{name}", float(value))


def _run_one(study: optuna.Study, trial: optuna.trial.Trial, cfg: SweepConfig, ws: Workspace,
             space: ResolvedSpace, display: Any) -> ResultRecord:
    from optuna.trial import TrialState

    cid = candidate_id(trial.number)
    trial.set_user_attr("candidate_id", cid)
    trial.set_user_attr("record", _record_attr(ws))
    t0 = time.perf_counter()
    appended = False
    with _Heartbeat(trial):
        try:
            try:
                spec = suggest_candidate(trial, space)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. an enqueued value outside the space
                record = failed_record(cfg, candidate_id=cid, trial=trial.number, family=str(trial.params.get("family", "?")),
                                       size="?", method=chosen_method(trial.params),
                                       method_params=dict(trial.params), error=one_line(exc))
            else:
                if display is not None:
                    display.update(None, None, f"{cid} {spec.describe()}")
                record = run_candidate(spec, ws, candidate_id=cid, trial=trial.number)
            try:
                append_record(ws.records_path, record)
            except OSError:
                # The record did not land (e.g. a full disk): the trial is not finished; it runs again
                # on resume, and this process stops (the next record would not land either).
                with _no_sigint():
                    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
                    _mark_interrupted(study, frozen, ws, "its record could not be written", write_record=False)
                raise
            appended = True
            if record.status != "ok":
                trial.set_user_attr("error", record.error)
            _set_metric_attrs(trial, record)
            _tell_from_record(study, trial.number, record, cfg)
        except KeyboardInterrupt:
            with _no_sigint():
                frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
                if frozen.state == TrialState.RUNNING:
                    if appended:
                        _tell_from_record(study, trial.number, record, cfg)
                    else:
                        _mark_interrupted(study, frozen, ws, "SIGINT")
            raise
    if display is not None:
        display.trial_done(record, time.perf_counter() - t0)
    return record


def save_resolved_config(cfg: SweepConfig, out: Any, storage_url: str) -> Any:
    """Write ``<out>/config.<study>.yaml`` (the resolved config, storage URL with its password masked)."""
    from pathlib import Path

    import yaml

    path = Path(out) / f"config.{cfg.study}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"storage": mask_url(storage_url), **cfg.to_dict()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("# resolved ddspbench sweep configuration (preset + YAML + flags)\n" + yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)
    return path


