"""The README's first command as a new user runs it: a relative ``--out`` from another working directory.

One cut-down smoke sweep, then what a user looks at: the listening page (a player for every Pareto
candidate, every source file present), ``import ddspbench`` in a notebook, the CSV in pandas, and the
study in Optuna's own tools (objective names, metrics in trial attributes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, cut_smoke

pytestmark = pytest.mark.slow

CUT = cut_smoke(6, n_audio_examples=2)


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("relative")
    cut = base / "cut.yaml"
    cut.write_text(yaml.safe_dump(CUT))
    cwd = base / "elsewhere"
    cwd.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "80",
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "ddspbench", "sweep", "--preset", "smoke", "--config", str(cut),
                           "--out", "results/smoke"], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the terminal leaderboard fits 80 columns: no line wider, no row split into fragments
    table = [line for line in proc.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80, "\n".join(table)
    return cwd, cwd / "results" / "smoke"


def test_listening_page_has_a_player_for_every_pareto_candidate(swept):
    _, out = swept
    index = out / "report" / "index.html"
    page = index.read_text()
    assert "No rendered audio found" not in page
    players = re.findall(r'<audio [^>]*src="([^"]+)"', page)
    cands = re.findall(r'<div class="candidate"><h3>([^<]+)</h3>', page)
    report = json.loads((out / "report" / "report.json").read_text())
    rows = [r for r in report["rows"] if r["method"] != "teacher"]  # the ok candidates (failed ones are apart)
    pareto = {r["uid"] for r in rows if r["pareto"]}
    best: dict[tuple, dict] = {}
    for r in rows:  # every family and method's best by the leaderboard's metric (mss)
        key = (r["dataset"], r.get("instrument"), r["family"], r["method"])
        if key not in best or r["metrics"]["mss"] < best[key]["metrics"]["mss"]:
            best[key] = r
    # smoke has fewer than max_listen (12) such candidates: all of them get players
    assert pareto and set(cands) == pareto | {r["uid"] for r in best.values()}
    assert len(players) == len(cands) * 2 * 3  # 2 clips x (target, teacher, candidate)
    for src in players + re.findall(r'<img [^>]*src="([^"]+)"', page):
        assert (index.parent / src).is_file(), src
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    for rec in records:  # stored relative to the results folder (or absolute), never to the working directory
        for path in rec.get("artifacts", {}).values():
            assert Path(path).is_absolute() or (out / path).exists(), path
            assert not path.startswith("results/"), path


def test_notebook_api_csv_and_optuna_tools(swept):
    cwd, out = swept
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    code = "import ddspbench; df = ddspbench.load_results('results/smoke'); print(len(df), sorted(df['method']))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("8 ") and "teacher" in proc.stdout

    board = pd.read_csv(out / "report" / "leaderboard.csv")
    units = json.loads((out / "report" / "leaderboard.units.json").read_text())
    assert board["mss"].notna().all() and units["mss"] == "1" and units["param_bytes"] == "B"
    for col in ("p99_ms_stream_64", "miss_rate_stream_64", "rtf_stream_256", "hparams"):
        assert col in board.columns, col
    assert {"prune.ratio", "quantize.method"} & set(board.columns)

    import optuna

    from ddspbench.suite.sweep.storage import default_storage_url, open_storage

    study = optuna.load_study(study_name="smoke", storage=open_storage(default_storage_url(out)))
    assert study.metric_names == ["mss", "rtf_stream_64", "param_bytes"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:
        assert t.user_attrs["candidate_id"] == f"t{t.number:04d}" and t.user_attrs["record"] == "records.jsonl"
        assert t.user_attrs["metric.mss"] == pytest.approx(t.values[0])
        assert "metric.p99_ms_stream_64" in t.user_attrs


def test_run_sweep_resumes_and_evaluate_checkpoint(swept, monkeypatch):
    import ddspbench

    cwd, out = swept
    monkeypatch.chdir(cwd)
    df = ddspbench.run_sweep(preset="smoke", out="results/smoke", report=False, **CUT)  # nothing left to run
    assert len(df) == 8 and (df["status"] == "ok").all()
    data = next(p for p in (out / "cache" / "data").glob("synthetic-*") if p.is_dir())
    res = ddspbench.evaluate_checkpoint(out / "candidates" / "t0000" / "model.pt", data, metrics="mss,size")
    row = df[df["uid"] == "t0000"].iloc[0]
    # the sweep measured a cropped subset of the test split (data.max_test, data.frames); this is the whole split
    assert np.isfinite(res.metrics["mss"]) and res.metrics["mss"] > 0 and res.units["mss"] == "1"
    assert res.metrics["params"] == row["params"] and res.artifacts["checkpoint"].endswith("model.pt")


def test_optuna_dashboard_serves_the_study(swept, tmp_path):
    """optuna-dashboard (extra ``dashboard``) on the sweep's journal: the study, its objective names and trials."""
    import socket
    import time
    import urllib.request

    pytest.importorskip("optuna_dashboard")
    _, out = swept
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = "import sys; from optuna_dashboard._cli import main; sys.argv[0] = 'optuna-dashboard'; sys.exit(main())"
    server = subprocess.Popen([sys.executable, "-c", cli, str(out / "study.journal"), "--host", "127.0.0.1",
                               "--port", str(port), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        studies = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    studies = json.loads(r.read())["study_summaries"]
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.5)
        assert studies and [s["study_name"] for s in studies] == ["smoke"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}", timeout=30) as r:
            detail = json.loads(r.read())
        assert detail["objective_names"] == ["mss", "rtf_stream_64", "param_bytes"]
        assert len(detail["trials"]) >= 6 and detail["best_trials"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard/studies/{studies[0]['study_id']}", timeout=30) as r:
            assert r.status == 200 and b"<html" in r.read(2000).lower()
    finally:
        server.terminate()
        server.wait(timeout=10)
