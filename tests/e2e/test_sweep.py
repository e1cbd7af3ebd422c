"""End-to-end sweeps on a tiny but real candidate configuration: workers sharing a study (local journal
file and PostgreSQL) finish exactly N trials, and a sweep killed mid-trial (SIGINT, SIGKILL) resumes
without losing or duplicating anything."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml

from ddspbench.suite.records import read_records
from ddspbench.suite.sweep.storage import default_storage_url, open_storage
from tests.conftest import REPO, require_system

pytestmark = pytest.mark.slow
optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY = "tiny"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ddspbench.suite.data import prepare

    root = tmp_path_factory.mktemp("sweepdata")
    return prepare("synthetic", root / "data", seed=0, recordings=2, clips_per_recording=1, cache_dir=root / "fc")


def _config(path: Path, data: Path, *, trials: int, student_steps: int = 2, methods: tuple[str, ...] = ("quantize", "scratch")) -> Path:
    """A real sweep (same pipeline as the presets) small enough for a test: a hidden=8 HpN teacher, 32 frames."""
    tree = {
        "preset": "smoke",
        "study": STUDY,
        "trials": trials,
        "threads": 1,
        "objectives": ["mss", "param_bytes"],
        "data": {"path": str(data), "frames": 32, "max_train": 4, "max_valid": 1, "max_test": 2},
        "teacher": {"steps": 2, "batch_size": 2, "widths": {"hpn": {"hidden": 8}}},
        "student": {"steps": student_steps, "batch_size": 2},
        "space": {
            "families": ["hpn"],
            "methods": list(methods),
            "sizes": ["hidden=4"],
            "params": {"quantize": {"method": {"choices": ["int8", "bf16"]}, "measure_frames": {"choices": [0]}}},
        },
        "evaluation": {"metrics": ["mss"], "stream_buffers": [64], "n_audio_examples": 1},
    }
    path.write_text(yaml.safe_dump(tree))
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ddspbench", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=open_storage(url))


def _check_study(url: str, out: Path, n: int) -> tuple[list[optuna.trial.FrozenTrial], list]:
    """Exactly ``n`` counted finished trials, no duplicated numbers, one record per trial, one teacher record."""
    trials = _study(url).get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)]
    counted = [t for t in finished if not t.user_attrs.get("interrupted")]
    assert len(counted) == n, [(t.number, t.state.name, t.user_attrs) for t in trials]
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    records = list(read_records([out / "records.jsonl"]))
    ids = [r.candidate_id for r in records]
    assert len(ids) == len(set(ids)), "a candidate was recorded twice"
    assert sum(r.method == "teacher" for r in records) == 1, "the teacher was trained or recorded twice"
    by_id = {r.candidate_id: r for r in records}
    for t in finished:  # every finished trial has exactly its own record
        rec = by_id[t.user_attrs["candidate_id"] if "candidate_id" in t.user_attrs else f"t{t.number:04d}"]
        assert rec.trial == t.number
        assert (rec.status == "ok") == (t.state == optuna.trial.TrialState.COMPLETE)
    assert len([r for r in records if r.method != "teacher"]) == len(finished)
    return trials, records


def _two_workers(url: str | None, out: Path, cfg: Path, n: int) -> list[str]:
    storage = ["--storage", url] if url else []
    setup = subprocess.run(_cli("sweep", "--config", str(cfg), "--out", str(out), "--setup-only", *storage),
                           cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    procs = [subprocess.Popen(_cli("worker", "--study", STUDY, "--out", str(out), *storage), cwd=REPO, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = []
    for p in procs:
        o, _ = p.communicate(timeout=400)
        outputs.append(o)
        assert p.returncode == 0, o[-2000:]
    _check_study(url or default_storage_url(out), out, n)
    return [setup.stdout + setup.stderr, *outputs]


def test_two_workers_share_a_local_journal_study(tmp_path, tiny_data):
    n = 5
    cfg = _config(tmp_path / "tiny.yaml", tiny_data, trials=n)
    logs = _two_workers(None, tmp_path / "out", cfg, n)
    assert all("worker done" in o for o in logs[1:])


def _pg_admin(sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qc", sql],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def pg_url():
    ok = shutil.which("pg_ctlcluster") is not None and shutil.which("runuser") is not None and os.geteuid() == 0
    if ok:
        subprocess.run(["pg_ctlcluster", "15", "main", "start"], capture_output=True, timeout=60)  # no-op if running
        ok = subprocess.run(["pg_isready", "-h", "localhost", "-t", "20"], capture_output=True, timeout=60).returncode == 0
    require_system("postgresql (pg_ctlcluster 15 main, as root)", ok)
    name = f"ddsp_test_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:10]}"
    assert _pg_admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'").returncode == 0
    assert _pg_admin(f"CREATE DATABASE {name} OWNER {name}").returncode == 0
    try:
        yield f"postgresql://{name}:{password}@localhost:5432/{name}", password
    finally:
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _pg_admin(f"DROP ROLE IF EXISTS {name}")


def test_two_workers_share_a_postgresql_study_and_never_show_the_password(tmp_path, tiny_data, pg_url):
    url, password = pg_url
    n = 4
    out = tmp_path / "out"
    cfg = _config(tmp_path / "tiny.yaml", tiny_data, trials=n)
    logs = _two_workers(url, out, cfg, n)
    assert not (out / "study.journal").exists()  # the study lives in PostgreSQL
    written = "".join(logs) + "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.suffix in (".yaml", ".jsonl", ".json", ".md"))
    assert password not in written
    assert "***@localhost" in written


def _wait_mid_trial(proc: subprocess.Popen[str], url: str, timeout: float = 300) -> None:
    """Wait until one trial has finished and the next is running (then a little longer)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        time.sleep(0.3)
        try:
            states = [t.state for t in _study(url).get_trials(deepcopy=False)]
        except Exception:  # noqa: BLE001 - the study may not exist yet
            continue
        if states.count(optuna.trial.TrialState.COMPLETE) >= 1 and optuna.trial.TrialState.RUNNING in states:
            time.sleep(0.2)
            return
    raise AssertionError("no trial started in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_killed_sweep_resumes_without_losing_or_duplicating(tmp_path, tiny_data, sig):
    n = 2
    out = tmp_path / "out"
    # The second trial trains long enough (several seconds even on an idle machine) to be caught mid-way.
    cfg = _config(tmp_path / "tiny.yaml", tiny_data, trials=n, student_steps=600)
    cmd = _cli("sweep", "--config", str(cfg), "--out", str(out), "--no-report")
    url = default_storage_url(out)
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_mid_trial(proc, url)
    proc.send_signal(sig)
    first_out, _ = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, first_out[-2000:]
        states = {t.number: t for t in _study(url).get_trials(deepcopy=False)}
        interrupted = [t for t in states.values() if t.user_attrs.get("interrupted")]
        assert len(interrupted) == 1 and interrupted[0].state == optuna.trial.TrialState.FAIL
    else:
        assert proc.returncode == -signal.SIGKILL
    before = {r.candidate_id: r for r in read_records([out / "records.jsonl"]) if r.method != "teacher" and r.status == "ok"}
    assert before, "the first trial finished before the kill"

    again = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resuming: 1 of 2" in again.stdout
    trials, records = _check_study(url, out, n)
    after = {r.candidate_id: r for r in records}
    for cid, rec in before.items():  # finished trials are still there, untouched
        assert after[cid] == rec
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1
    rec = after[f"t{interrupted[0].number:04d}"]
    assert rec.status == "failed" and rec.error.startswith("interrupted")
    # the interrupted candidate was run again as a new trial with the same choices
    rerun = [t for t in trials if t.number > interrupted[0].number and t.params == interrupted[0].params]
    assert rerun and rerun[0].state == optuna.trial.TrialState.COMPLETE
