"""Results folders written before the verdict rework (issue 20) still load and report: the committed compare run of
2026-11-27 (last-checkpoint weights, no clip ids, convergence stored under the old rule)."""

from __future__ import annotations

import json
from pathlib import Path

from ddspbench.reports import build_report, load_results
from ddspbench.reports.stats import VERDICTS

OLD = Path(__file__).resolve().parents[2] / "benchmarks" / "results_compare_v1"


def test_the_old_compare_run_reports_with_the_new_verdicts(tmp_path: Path) -> None:
    df = load_results([OLD])
    assert len(df) == 28 and df["clip_ids"].isna().all()  # written before records kept clip identity
    assert set(df.loc[df["method"] != "quantize", "evaluated_at"].dropna()) == {"last"}
    written = build_report([OLD], tmp_path / "rep", formats="md,json")
    data = json.loads(written["json"].read_text())
    tested = [r for r in data["verdicts"] if r.get("vs_kd")]
    assert len(tested) == 6 and {r["verdict"] for r in tested} <= set(VERDICTS)
    assert all("clips paired by position" in r["note"] for r in tested)
    # KD's arm is chosen on validation: for HpN that is kd_control (valid 5.567 < kd_audio's 5.587), although
    # kd_audio is better on the test clips
    arm = {r["family"]: r["method"] for r in data["verdicts"] if r.get("kd_arm")}
    assert arm == {"hpn": "kd_control", "ddx7": "kd_audio"}
    # one verdict per pair, the same in every table
    by_pair = {(r["vs_kd"], r["uid"]): r["verdict"] for r in tested}
    for r in data["kd_vs_scratch"]:
        if (r["uid"], r["scratch_uid"]) in by_pair:
            assert r["verdict"] == by_pair[(r["uid"], r["scratch_uid"])]
    md = written["md"].read_text()
    assert md.index("## Verdict per family") < md.index("## Leaderboard")
