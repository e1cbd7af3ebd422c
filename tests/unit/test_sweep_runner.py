from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import optuna
import pytest

from ddspbench.suite.errors import UserError
from ddspbench.suite.pipeline import Workspace
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.records import ResultRecord, append_record, read_records
from ddspbench.suite.sweep.config import config_from_dict
from ddspbench.suite.sweep.progress import SweepDisplay
from ddspbench.suite.sweep.runner import (
    count_trials,
    load_study_config,
    open_study,
    recover_stale,
    save_resolved_config,
)
from ddspbench.suite.sweep.storage import default_storage_url, open_storage, slot_lock

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _cfg(**tree):
    return config_from_dict({**preset_tree("smoke"), **tree})


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_open_study_stores_settings_and_refuses_a_different_config(tmp_path):
    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=3)
    study, _ = open_study(cfg, url)
    assert study.user_attrs["ddspbench.trials"] == 3
    assert [d.name for d in study.directions] == ["MINIMIZE"] * 3
    again = load_study_config(url, "smoke")
    assert again == cfg
    open_study(_cfg(trials=5), url)  # a new target is fine
    assert load_study_config(url, "smoke").trials == 5
    with pytest.raises(UserError, match="different configuration"):
        open_study(_cfg(objectives=["mss", "param_bytes"]), url)
    with pytest.raises(UserError, match="no study 'other'"):
        load_study_config(url, "other")


def test_stale_trial_of_a_dead_process_is_failed_recorded_and_requeued(tmp_path):
    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=3)
    study, _ = open_study(cfg, url)
    ws = Workspace(cfg, tmp_path)
    done = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(done, [1.0, 2.0, 3.0])
    dead = study.ask()
    dead.suggest_categorical("family", ["hpn", "ddx7"])
    dead.suggest_categorical("method", ["scratch"])
    for k, v in {"worker_host": __import__("socket").gethostname(), "worker_pid": _dead_pid(), "heartbeat": time.time()}.items():
        dead.set_user_attr(k, v)
    alive = study.ask()  # this process: alive, must not be touched
    for k, v in {"worker_host": __import__("socket").gethostname(), "worker_pid": __import__("os").getpid(), "heartbeat": time.time()}.items():
        alive.set_user_attr(k, v)
    assert count_trials(study) == (1, 2)
    assert recover_stale(study, ws, grace_s=3600) == 1
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL
    assert trials[dead.number].user_attrs["interrupted"] is True
    assert trials[alive.number].state == optuna.trial.TrialState.RUNNING
    waiting = [t for t in trials.values() if t.state == optuna.trial.TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].system_attrs["fixed_params"] == dict(trials[dead.number].params)
    recs = list(read_records([ws.records_path]))
    assert len(recs) == 1 and recs[0].status == "failed" and recs[0].error.startswith("interrupted")
    # no recipe was made before it died: the record keeps the sampler's raw choices, and reads as no method
    assert recs[0].recipe is None and recs[0].method == "?" and recs[0].sampled == dict(trials[dead.number].params)
    assert count_trials(study) == (1, 1)  # the interrupted trial does not count
    assert recover_stale(study, ws, grace_s=3600) == 0  # nothing twice


def test_stale_trial_whose_record_was_written_is_told_from_the_record(tmp_path):
    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=2)
    study, _ = open_study(cfg, url)
    ws = Workspace(cfg, tmp_path)
    t = study.ask()
    t.set_user_attr("heartbeat", time.time() - 1000)  # another host, silent for long
    t.set_user_attr("worker_host", "elsewhere")
    rec = ResultRecord.with_units(candidate_id=f"t{t.number:04d}", family="hpn", size="reduced", method="scratch",
                                  dataset="synthetic", seed=0, trial=t.number,
                                  metrics={"mss": 5.0, "rtf_stream_64": 0.1, "param_bytes": 100.0})
    append_record(ws.records_path, rec)
    assert recover_stale(study, ws, grace_s=60) == 1
    done = study.get_trials(deepcopy=False)[0]
    assert done.state == optuna.trial.TrialState.COMPLETE and done.values == [5.0, 0.1, 100.0]
    assert len(list(read_records([ws.records_path]))) == 1


def test_slot_lock_excludes_other_holders(tmp_path):
    url = default_storage_url(tmp_path)
    storage = open_storage(url)
    order: list[str] = []

    def other() -> None:
        with slot_lock(url, storage, "s"):
            order.append("other")

    with slot_lock(url, storage, "s"):
        th = threading.Thread(target=other)
        th.start()
        time.sleep(0.3)
        order.append("first")
    th.join(5)
    assert order == ["first", "other"]


def test_resolved_config_is_saved_with_the_password_masked(tmp_path):
    import yaml

    path = save_resolved_config(_cfg(), tmp_path, "postgresql://me:hunter2@db/x")
    text = path.read_text()
    assert "hunter2" not in text and "me:***@db" in text
    assert yaml.safe_load(text)["preset"] == "smoke"


def test_display_is_plain_lines_off_a_terminal():
    buf = io.StringIO()
    rec = ResultRecord.with_units(candidate_id="t0001", family="hpn", size="reduced", method="kd_audio",
                                  dataset="synthetic", seed=0, metrics={"mss": 4.5, "param_bytes": 10.0})
    bad = ResultRecord.with_units(candidate_id="t0002", family="hpn", size="reduced", method="prune", dataset="synthetic",
                       seed=0, status="failed", error="RuntimeError: boom")
    with SweepDisplay(["mss", "param_bytes"], stream=buf) as d:
        assert not d.live
        d.update(0, 2, "t0001 hpn reduced kd_audio")
        d.trial_done(rec, 1.5)
        d.trial_done(bad, 0.5)
    lines = buf.getvalue().splitlines()
    assert lines == ["[1/2] t0001 hpn reduced kd_audio: ok mss=4.5, param_bytes=10 (1.5 s)",
                     "[2/2] t0002 hpn reduced prune: failed: RuntimeError: boom (0.5 s)"]
    assert "\x1b[" not in buf.getvalue()


def test_display_on_a_terminal_shows_a_bar_with_counts():
    buf = io.StringIO()
    rec = ResultRecord.with_units(candidate_id="t0001", family="hpn", size="reduced", method="kd_audio",
                                  dataset="synthetic", seed=0, metrics={"mss": 4.5})
    with SweepDisplay(["mss"], live=True, stream=buf) as d:
        d.update(0, 3, "t0001 hpn reduced kd_audio")
        d.trial_done(rec, 1.0)
    text = buf.getvalue()
    assert "t0001 hpn reduced kd_audio: ok mss=4.5" in text and "1/3" in text


def _fake_candidates(monkeypatch):
    """Trials that finish at once with an ok record (the pipeline itself is tested elsewhere)."""
    import ddspbench.suite.sweep.runner as runner

    def quick(spec, ws, *, candidate_id, trial=None, seed=0, config_id=None):
        return ResultRecord.with_units(candidate_id=candidate_id, family=spec.family, size="reduced", method=spec.method,
                                       dataset="synthetic", seed=seed, config_id=config_id, trial=trial, study=ws.cfg.study,
                                       metrics={"mss": 1.0 + trial, "rtf_stream_64": 0.1, "param_bytes": 100.0})

    monkeypatch.setattr(runner, "run_candidate", quick)


def _orphan(study, pid: int, heartbeat: float, started: int | None = None):
    """A RUNNING trial as a process killed with -9 leaves it: this host, its pid, its last heartbeat."""
    t = study.ask()
    t.suggest_categorical("family", ["hpn"])
    attrs = {"worker_host": __import__("socket").gethostname(), "worker_pid": pid, "heartbeat": heartbeat}
    if started is not None:
        attrs["worker_started"] = started
    for k, v in attrs.items():
        t.set_user_attr(k, v)
    return t


def test_a_silent_trial_is_stale_even_when_its_pid_was_reused(tmp_path):
    from ddspbench.suite.sweep.runner import process_start

    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=3)
    study, _ = open_study(cfg, url)
    ws = Workspace(cfg, tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # alive: the pid's new owner
    try:
        old = _orphan(study, other.pid, time.time() - 600)  # silent for 10 minutes
        reused = _orphan(study, other.pid, time.time(), started=(process_start(other.pid) or 0) + 12345)
        fresh = _orphan(study, other.pid, time.time(), started=process_start(other.pid))
        assert recover_stale(study, ws, grace_s=120) == 2
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        assert states[old.number] == states[reused.number] == optuna.trial.TrialState.FAIL
        assert states[fresh.number] == optuna.trial.TrialState.RUNNING  # the same process, beating: left alone
    finally:
        other.kill()
        other.wait()


def test_kill_9_with_a_reused_pid_finishes_instead_of_hanging(tmp_path, monkeypatch):
    from ddspbench.suite.sweep.runner import run_trials

    _fake_candidates(monkeypatch)
    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=2, covering=False)
    study, storage = open_study(cfg, url)
    ws = Workspace(cfg, tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    result: list = []
    try:
        _orphan(study, other.pid, time.time() - 5)  # its heartbeat stopped 5 s ago; the pid lives on
        th = threading.Thread(target=lambda: result.append(run_trials(study, storage, url, cfg, ws, grace_s=2, poll_s=0.1)),
                              daemon=True)
        th.start()
        th.join(60)
        assert not th.is_alive(), "run_trials hung on a dead trial whose pid was reused"
    finally:
        other.kill()
        other.wait()
    assert result[0].finished_total == 2 and count_trials(study) == (2, 0)


def test_a_record_that_did_not_land_is_not_finished_and_is_redone(tmp_path, monkeypatch):
    import errno

    import ddspbench.suite.sweep.runner as runner
    from ddspbench.suite.records import RecordNotWritten
    from ddspbench.suite.sweep.runner import run_trials

    _fake_candidates(monkeypatch)
    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=2, covering=False)
    study, storage = open_study(cfg, url)
    ws = Workspace(cfg, tmp_path)

    def full(path, record):
        raise RecordNotWritten(errno.ENOSPC, "record not written (No space left on device)", str(path))

    monkeypatch.setattr(runner, "append_record", full)
    with pytest.raises(RecordNotWritten):
        run_trials(study, storage, url, cfg, ws)
    assert count_trials(study) == (0, 0)
    (first,) = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    assert first.user_attrs["interrupted"] is True
    monkeypatch.setattr(runner, "append_record", append_record)  # space again: resume
    study, storage = open_study(cfg, url)
    summary = run_trials(study, storage, url, cfg, ws)
    assert summary.finished_total == 2
    redone = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    assert dict(first.params) in [dict(t.params) for t in redone]  # the same candidate, run again
    assert len(list(read_records([ws.records_path]))) == 2


def test_a_journal_cut_short_is_repaired_on_open(tmp_path, capsys):
    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=2)
    study, _ = open_study(cfg, url)
    study.ask()
    journal = tmp_path / "study.journal"
    journal.write_bytes(journal.read_bytes()[:-15])  # the writer was killed mid-entry
    study, _ = open_study(cfg, url)
    assert "cut short" in capsys.readouterr().err
    t = study.ask()  # usable again: asking and telling work
    study.tell(t, [1.0, 2.0, 3.0])
    assert journal.read_bytes().endswith(b"\n") and (tmp_path / "study.journal.partial").is_file()
