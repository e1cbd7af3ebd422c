"""``ddspbench sweep --preset smoke --repeats 2``, cut down: every trained configuration measured with two
seeds through the real CLI, and a leaderboard of configurations (n_seeds 2, intervals over seeds)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import defaultdict

import pytest
import yaml

from ddspbench.suite.records import read_records
from tests.conftest import REPO, cut_smoke

pytestmark = pytest.mark.slow


def test_smoke_sweep_with_two_repeats_reports_configurations_over_seeds(tmp_path):
    cut = tmp_path / "cut.yaml"
    cut.write_text(yaml.safe_dump(cut_smoke(3)))
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "ddspbench", "sweep", "--preset", "smoke", "--config", str(cut),
                           "--repeats", "2", "--out", str(out), "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 seeds per configuration (0..1)" in proc.stdout

    cands = [r for r in read_records([out / "records.jsonl"]) if r.method != "teacher"]
    assert not [r for r in cands if r.status != "ok"], [(r.candidate_id, r.error) for r in cands]
    configs: dict[str, list] = defaultdict(list)
    for r in cands:
        configs[str(r.config_id)].append(r)
    assert len(configs) == 3
    trained = {cid: recs for cid, recs in configs.items() if len(recs) == 2}
    assert trained, "the smoke covering set starts with trained candidates (scratch)"
    for cid, recs in trained.items():
        assert sorted((r.candidate_id, r.seed) for r in recs) == [(cid, 0), (f"{cid}-s1", 1)]
        assert len({r.trial for r in recs}) == 1

    report = json.loads((out / "report" / "report.json").read_text())
    rows = {row["uid"]: row for row in report["rows"]}
    assert set(configs) <= set(rows) and not any("-s1" in uid for uid in rows)  # one row per configuration
    for cid, recs in trained.items():
        row = rows[cid]
        assert row["n_seeds"] == 2
        low, high = row["intervals"]["mss"]
        mean = sum(r.metrics["mss"] for r in recs) / 2
        assert math.isclose(row["metrics"]["mss"], mean, rel_tol=1e-9)
        a, b = (r.metrics["mss"] for r in recs)
        half = 12.706204736174707 * abs(a - b) / 2  # t_{0.975, 1} * sd / sqrt(2), sd = |a - b| / sqrt(2)
        assert math.isclose(low, mean - half, rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(high, mean + half, rel_tol=1e-6, abs_tol=1e-9)
    spread = [cid for cid, recs in trained.items() if recs[0].metrics["mss"] != recs[1].metrics["mss"]]
    assert spread, "two seeds of a trained configuration gave the same MSS everywhere"
    md = (out / "report" / "report.md").read_text()
    assert "n_seeds" in md and "n_seeds" in proc.stdout  # the report and the printed leaderboard show it
