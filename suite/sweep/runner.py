"""Running a study: create or resume it, hand out trials to one or many processes, recover dead ones.

The loop (:func:`run_trials`) is the same for ``ddspbench sweep`` and ``ddspbench worker``: under a
lock shared by every process of the study (:func:`suite.sweep.storage.slot_lock`) it recovers stale
trials, counts finished ones and asks Optuna for a new trial only while fewer than N are finished or
running, so a study ends with exactly N finished trials however many workers join. Each trial runs
the real pipeline (:func:`suite.pipeline.run_candidate`) once per seed (``cfg.repeats`` seeds
``cfg.seed + k``, :func:`trial_seeds`), appends one record per seed (candidate ids ``t0007``,
``t0007-s1``..., shared ``config_id`` ``t0007``), then tells Optuna: ``COMPLETE`` with the objectives'
means over the ok seeds, or ``FAIL`` when no seed is ok.

A trial left ``RUNNING`` by a dead process is recovered. It is stale when its heartbeat is older
than ``grace_s`` seconds, whatever its pid (a pid can be reused by an unrelated process after
kill -9), and sooner on the same host when its pid is gone or now belongs to a process started at
another time (``worker_started``, the start time from ``/proc``). Then if the records of all its seeds were
written it is told from them, otherwise a failed record with ``interrupted`` is written for the seed
that was running, the trial is marked ``FAIL`` with the user attribute ``interrupted`` (it does not
count towards N) and its parameters are enqueued again. When some of its seeds had landed, the new
trial carries the configuration's id and runs only the seeds whose records are missing.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ddspbench.compressors.chain import steps_use_seed
from ddspbench.suite.errors import UserError
from ddspbench.suite.pipeline import Workspace, failed_record, one_line, run_candidate, size_label
from ddspbench.suite.recipe import Recipe
from ddspbench.suite.records import STANDARD_METRICS, ResultRecord, append_record, read_records, seed_means
from ddspbench.suite.sweep.config import SweepConfig, config_from_dict, config_hash
from ddspbench.suite.sweep.sampler import budget_sampler
from ddspbench.suite.sweep.space import (
    ResolvedSpace,
    covering_trials,
    resolve_space,
    suggest_candidate,
)
from ddspbench.suite.sweep.storage import mask_url, open_storage, slot_lock

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
    "seed_candidate_id",
    "trial_seeds",
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
    """What one process did: trials it ran (``ok``: some seed ok; ``failed``: every seed failed), the
    records they wrote or reused (one per seed), and the study's totals when it stopped."""

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
    fixed = covering_trials(space, cfg.trials, grid=cfg.grid)
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


def seed_candidate_id(config_id: str, k: int) -> str:
    """The candidate id of seed ``k`` of a configuration: ``t0007`` for k = 0 (so one-seed sweeps keep
    their ids), ``t0007-s1``, ``t0007-s2``... after it."""
    return config_id if k == 0 else f"{config_id}-s{k}"


def trial_seeds(cfg: SweepConfig, spec: Recipe) -> list[int]:
    """The training seeds of a configuration: ``cfg.seed + k`` for ``k < cfg.repeats``, so seed ``k`` of
    every configuration is the same seed (paired). A candidate that does not depend on the seed (no
    step trains or draws random numbers: :func:`compressors.chain.steps_use_seed`) runs once per teacher it can
    start from (``cfg.teacher.seeds``, at most ``repeats``): once when there is one teacher."""
    n = cfg.repeats if steps_use_seed(spec.run_steps(), cfg.student.steps_for(spec.family)) else \
        min(cfg.repeats, cfg.teacher.seeds)
    return [cfg.seed + k for k in range(n)]


def _config_of(t: optuna.trial.FrozenTrial | optuna.trial.Trial) -> str:
    """The configuration id a trial runs: its own (``t0007``), or the one it resumes (set when enqueued again)."""
    cid = t.user_attrs.get("candidate_id")
    return cid if isinstance(cid, str) and cid else candidate_id(t.number)


def _planned_seeds(t: optuna.trial.FrozenTrial, cfg: SweepConfig) -> list[int]:
    """The seeds a trial planned (user attr ``seeds``); ``[cfg.seed]`` for one that stopped before planning."""
    seeds = t.user_attrs.get("seeds")
    if isinstance(seeds, list) and seeds and all(isinstance(x, int) for x in seeds):
        return [int(x) for x in seeds]
    return [cfg.seed]


def _written(ws: Workspace) -> dict[str, ResultRecord]:
    """The last record of every candidate id in the records file."""
    return {r.candidate_id: r for r in read_records([ws.records_path])} if ws.records_path.is_file() else {}


def _interrupted(rec: ResultRecord) -> bool:
    return (rec.error or "").startswith("interrupted")


def _landed(written: dict[str, ResultRecord], cid: str, seeds: list[int]) -> dict[int, ResultRecord]:
    """Seed index -> the record of that seed of configuration ``cid`` that landed (ok or failed, not interrupted)."""
    out = {}
    for k in range(len(seeds)):
        rec = written.get(seed_candidate_id(cid, k))
        if rec is not None and not _interrupted(rec):
            out[k] = rec
    return out


def _ok_values(rec: ResultRecord, names: list[str]) -> list[float] | None:
    values = [rec.metrics.get(o) for o in names]
    if rec.status != "ok" or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]  # type: ignore[arg-type]


def _settle(study: optuna.Study, trial: optuna.trial.Trial, records: list[ResultRecord], cfg: SweepConfig) -> bool:
    """Tell Optuna a trial's outcome from its seeds' records; True if it completed.

    The values are the means over the seeds whose record is ok with every objective measured; the
    trial fails only when no seed is. Metric attributes are the same means; ``n_seeds`` counts the
    seeds averaged, ``failed_seeds`` lists the others with their errors.
    """
    from optuna.trial import TrialState

    good = [r for r in records if _ok_values(r, cfg.objectives) is not None]
    for name, value in seed_means(good).items():
        trial.set_user_attr(f"metric.{name}", value)
    trial.set_user_attr("n_seeds", len(good))
    bad = [f"{r.candidate_id}: {r.error or 'an objective was not measured'}" for r in records if r not in good]
    if bad and good:
        trial.set_user_attr("failed_seeds", bad)
    if not good:
        trial.set_user_attr("error", next((r.error for r in records if r.error), "no seed measured every objective"))
        study.tell(trial.number, state=TrialState.FAIL)
        return False
    means = seed_means(good)
    study.tell(trial.number, [means[o] for o in cfg.objectives])
    return True


def _handle(study: optuna.Study, t: optuna.trial.FrozenTrial) -> optuna.trial.Trial:
    import optuna as _optuna

    return _optuna.trial.Trial(study, t._trial_id)


def _frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _mark_interrupted(study: optuna.Study, t: optuna.trial.FrozenTrial, ws: Workspace, why: str, *,
                      running: tuple[str, int] | None, resume: bool) -> None:
    """Mark a trial FAIL with ``interrupted`` (it does not count) and enqueue its parameters again.

    ``running`` is the candidate id and seed of the seed that was running, whose failed
    ``interrupted`` record is written here (None: write none). With ``resume`` (some of its seeds
    landed) the new trial keeps this configuration's id (user attr ``candidate_id``) and runs only
    the seeds whose records are missing; otherwise it is a configuration of its own.
    """
    from optuna.trial import TrialState

    cid = _config_of(t)
    if running is not None:
        raw = t.user_attrs.get("recipe")
        recipe = Recipe.from_dict(raw) if isinstance(raw, dict) else None
        rec = failed_record(ws.cfg, candidate_id=running[0], trial=t.number,
                            family=recipe.family if recipe else str(t.params.get("family", "?")),
                            size=size_label(recipe, ws.cfg) if recipe else "?", recipe=recipe,
                            sampled=None if recipe else dict(t.params),
                            error=f"interrupted ({why}); re-run as a new trial", seed=running[1], config_id=cid)
        append_record(ws.records_path, rec)
    handle = _handle(study, t)
    handle.set_user_attr("interrupted", True)
    handle.set_user_attr("record", _record_attr(ws))
    study.tell(t.number, state=TrialState.FAIL)
    if t.params:
        study.enqueue_trial(dict(t.params), user_attrs={"candidate_id": cid} if resume else None)


def recover_stale(study: optuna.Study, ws: Workspace, grace_s: float) -> int:
    """Settle RUNNING trials whose process is gone (call under the slot lock); returns how many.

    A trial all of whose planned seeds have their record is told from them; otherwise it is
    interrupted, and re-run from the first seed whose record is missing.
    """
    from optuna.trial import TrialState

    now = time.time()
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if _is_stale(t, grace_s, now)]
    if not stale:
        return 0
    written = _written(ws)
    for t in stale:
        cid, seeds = _config_of(t), _planned_seeds(t, ws.cfg)
        landed = _landed(written, cid, seeds)
        if len(landed) == len(seeds):  # killed after its last record was written
            _settle(study, _handle(study, t), [landed[k] for k in range(len(seeds))], ws.cfg)
            continue
        k = min(set(range(len(seeds))) - set(landed))
        old = written.get(seed_candidate_id(cid, k))
        running = None if old is not None and old.trial == t.number else (seed_candidate_id(cid, k), seeds[k])
        _mark_interrupted(study, t, ws, "its process stopped", running=running, resume=bool(landed))
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
        records = _run_one(study, trial, cfg, ws, space, display)
        summary.ran += 1
        summary.records.extend(records)
        if any(r.status == "ok" for r in records):
            summary.ok += 1
        else:
            summary.failed += 1
    summary.finished_total = count_trials(study)[0]
    return summary


def _record_attr(ws: Workspace) -> str:
    """The records file as stored in a trial: relative to the results folder (``records.jsonl``)."""
    return ws.records_path.relative_to(ws.out).as_posix()


def _append_or_stop(study: optuna.Study, number: int, ws: Workspace, record: ResultRecord, *, resume: bool) -> None:
    """Append a seed's record; if it does not land (e.g. a full disk) the trial is not finished: it is
    marked interrupted (its missing seeds run again on resume) and the error stops this process, as
    the next record would not land either."""
    try:
        append_record(ws.records_path, record)
    except OSError:
        with _no_sigint():
            _mark_interrupted(study, _frozen(study, number), ws, "its record could not be written", running=None, resume=resume)
        raise


def _run_one(study: optuna.Study, trial: optuna.trial.Trial, cfg: SweepConfig, ws: Workspace,
             space: ResolvedSpace, display: Any) -> list[ResultRecord]:
    """Run one trial: its configuration with each of its seeds (one record each), then tell Optuna.

    A trial that resumes a configuration (user attr ``candidate_id`` set when it was enqueued again)
    keeps the records of the seeds that landed before and runs only the others.
    """
    from optuna.trial import TrialState

    cid = _config_of(trial)
    resumed = cid != candidate_id(trial.number)
    trial.set_user_attr("candidate_id", cid)
    trial.set_user_attr("record", _record_attr(ws))
    t0 = time.perf_counter()
    records: list[ResultRecord] = []
    running: tuple[str, int] | None = (cid, cfg.seed)
    with _Heartbeat(trial):
        try:
            try:
                spec = suggest_candidate(trial, space)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. an enqueued value outside the space
                failed = failed_record(cfg, candidate_id=cid, trial=trial.number, family=str(trial.params.get("family", "?")),
                                       size="?", recipe=None, sampled=dict(trial.params), error=one_line(exc),
                                       config_id=cid)
                _append_or_stop(study, trial.number, ws, failed, resume=False)
                records.append(failed)
            else:
                trial.set_user_attr("recipe", spec.to_dict())  # an interrupted trial's record says what it was
                seeds = trial_seeds(cfg, spec)
                trial.set_user_attr("seeds", seeds)
                landed = _landed(_written(ws), cid, seeds) if resumed else {}
                for k, seed in enumerate(seeds):
                    if k in landed:
                        records.append(landed[k])  # landed before this trial resumed the configuration
                        continue
                    running = (seed_candidate_id(cid, k), seed)
                    if display is not None:
                        display.update(None, None, f"{running[0]} {spec.describe()}" + (f" (seed {seed})" if len(seeds) > 1 else ""))
                    record = run_candidate(spec, ws, candidate_id=running[0], trial=trial.number, seed=seed, config_id=cid)
                    _append_or_stop(study, trial.number, ws, record, resume=bool(records))
                    records.append(record)
            running = None
            _settle(study, trial, records, cfg)
        except KeyboardInterrupt:
            with _no_sigint():
                frozen = _frozen(study, trial.number)
                if frozen.state == TrialState.RUNNING:
                    if running is None:  # every seed's record landed
                        _settle(study, trial, records, cfg)
                    else:
                        _mark_interrupted(study, frozen, ws, "SIGINT", running=running, resume=bool(records))
            raise
    if display is not None:
        display.trial_done(records, time.perf_counter() - t0)
    return records


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


