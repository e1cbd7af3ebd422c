"""The README's first command, cut down: ``ddspbench sweep --preset smoke`` with fewer steps and frames
(the same code path: data, teachers, every compressor, evaluation, records, report)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ddspbench.reports import is_pareto_front
from ddspbench.suite.records import read_records
from tests.conftest import REPO, cut_smoke

pytestmark = pytest.mark.slow

SMOKE_METHODS = {"scratch", "kd_audio", "kd_control", "prune", "quantize"}


def test_smoke_preset_cut_down_end_to_end(tmp_path):
    cut = tmp_path / "cut.yaml"
    cut.write_text(yaml.safe_dump(cut_smoke(6)))
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    proc = subprocess.run([sys.executable, "-m", "ddspbench", "sweep", "--preset", "smoke", "--config", str(cut), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"leaderboard: {out / 'report'}" in proc.stdout
    assert "SMOKE PRESET" in proc.stdout

    records = list(read_records([out / "records.jsonl"]))
    teachers = [r for r in records if r.method == "teacher"]
    cands = [r for r in records if r.method != "teacher"]
    assert len(cands) == 6 and {r.trial for r in cands} == set(range(6))
    assert {r.family for r in teachers} == {"hpn", "ddx7"}
    assert not [r for r in cands if r.status != "ok"], [(r.candidate_id, r.method, r.error) for r in cands]
    methods = {part for r in cands for part in r.method.split("+")}
    assert SMOKE_METHODS <= methods
    assert {r.family for r in cands} == {"hpn", "ddx7"}
    for r in records:
        assert r.provenance["preset"] == "smoke" and r.recipe is not None and r.steps
        assert r.metrics, r.candidate_id
        for name in ("mss", "fad", "rtf_stream_64", "rtf_stream_256", "param_bytes", "peak_mem_bytes", "params"):
            v = r.metrics.get(name)
            assert isinstance(v, (int, float)) and math.isfinite(v), (r.candidate_id, name, v)
        assert (out / "candidates" / r.candidate_id / "audio").is_dir()
        assert os.path.isfile(out / r.artifacts["checkpoint"])  # relative to the results folder (or absolute)
    for r in cands:
        assert math.isfinite(r.metrics["mss_teacher"])
    teacher_params = {r.family: r.metrics["params"] for r in teachers}
    pruned = [r for r in cands if "prune" in r.method.split("+")]
    assert pruned and all(r.metrics["params"] < teacher_params[r.family] for r in pruned)
    for r in cands:  # every candidate is cheaper than its teacher in bytes (students, pruned or quantized)
        teacher_bytes = next(t.metrics["param_bytes"] for t in teachers if t.family == r.family)
        assert r.metrics["param_bytes"] < teacher_bytes, (r.candidate_id, r.method)
    objectives = ["mss", "rtf_stream_64", "param_bytes"]
    values = np.array([[r.metrics[o] for o in objectives] for r in cands], dtype=float)
    assert is_pareto_front(values).any()
    assert (out / "targets").is_dir() and list((out / "targets").glob("*.wav"))
    report = (out / "report" / "report.md").read_text()
    assert "SMOKE PRESET" in "\n".join(report.splitlines()[:3])
    assert "SMOKE PRESET" in (out / "report" / "index.html").read_text()
    assert (out / "config.smoke.yaml").is_file()
