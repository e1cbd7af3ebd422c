from __future__ import annotations

import json

from ddspbench.reports import build_report
from ddspbench.suite.records import ResultRecord, append_record


def _minimal_dir(root):
    """Records as sparse as a sweep may write them: no instrument, no intervals, no audio, no param_bytes."""
    for i, (method, mss, rtf, params) in enumerate([
        ("teacher", 4.0, 0.5, 4_000_000), ("scratch", 6.0, 0.1, 20_000), ("kd_audio", 5.5, 0.1, 20_000),
        ("prune", 6.5, 0.05, 8_000), ("quantize", 4.5, 0.2, 4_000_000),
    ]):
        append_record(root / "records.jsonl", ResultRecord.with_units(
            candidate_id=f"c{i}", family="hpn", size="reduced", method=method, dataset="synthetic", seed=0,
            metrics={"mss": mss, "rtf_stream_64": rtf, "params": float(params)},
        ))
    append_record(root / "records.jsonl", ResultRecord.with_units(
        candidate_id="c9", family="hpn", size="reduced", method="prune", dataset="synthetic", seed=0,
        status="failed", error="RuntimeError: boom"))
    return root


def test_sparse_records_still_give_a_full_report(tmp_path):
    root = _minimal_dir(tmp_path)
    written = build_report([root], tmp_path / "rep", n_clips=1)
    md = written["md"].read_text()
    assert "| kd_audio |" in md and "RuntimeError: boom" in md and "## KD vs others at matched budget (params)" in md
    data = json.loads(written["json"].read_text())
    assert data["budget_metric"] == "params"
    scratch = [r for r in data["kd_vs_others"] if r["method"] == "scratch"]
    assert scratch and scratch[0]["note"] == "no per-clip mss values: not tested" and scratch[0]["diff"] == -0.5
    assert scratch[0]["verdict"] == "inconclusive"
    front = {r["uid"] for r in data["pareto_front"]}
    assert front == {"c0", "c2", "c3", "c4"}  # scratch is dominated by kd_audio (same RTF, worse MSS)
    page = written["html"].read_text()
    assert "No rendered audio" in page and "<audio" not in page


def test_three_objectives_and_a_non_quality_ranking_metric(tmp_path):
    root = _minimal_dir(tmp_path)
    written = build_report([root], tmp_path / "rep", formats="json", metric="params",
                           objectives="mss,rtf_stream_64,params")
    data = json.loads(written["json"].read_text())
    assert data["ranked_by"] == "params" and [r["metrics"]["params"] for r in data["rows"]][:2] == [8_000, 20_000]
    # in 3-D kd_audio and scratch tie on RTF and params, so scratch (worse MSS) stays dominated
    assert {r["uid"] for r in data["pareto_front"]} == {"c0", "c2", "c3", "c4"}
    assert data["kd_vs_others"] and "mss" in data["kd_vs_others"][0]  # KD compared on quality, not on params
    assert data["hypervolume"][0]["method"] == "(all)" and data["hypervolume"][0]["hypervolume"] > 0


def test_smoke_records_carry_a_warning_into_every_page(tmp_path):
    root = tmp_path / "smoke"
    for i, method in enumerate(["teacher", "scratch", "kd_audio"]):
        append_record(root / "records.jsonl", ResultRecord.with_units(
            candidate_id=f"s{i}", family="hpn", size="reduced", method=method, dataset="synthetic", seed=0,
            metrics={"mss": 5.0 + i, "params": 1000.0 * (i + 1)}, provenance={"preset": "smoke"},
        ))
    written = build_report([root], tmp_path / "rep", formats=("md", "html"), n_clips=1)
    assert "SMOKE PRESET" in written["md"].read_text()
    assert "SMOKE PRESET" in written["html"].read_text()
    plain = build_report([_minimal_dir(tmp_path / "plain")], tmp_path / "rep2", formats=("md",), n_clips=1)
    assert "SMOKE PRESET" not in plain["md"].read_text()


def test_listening_hears_every_methods_best_then_the_pareto_set():
    import pandas as pd

    from ddspbench.reports.build import listening_candidates

    rows = [  # uid, family, method, mss, pareto
        ("t", "hpn", "teacher", 1.0, True), ("a1", "hpn", "kd_audio", 2.0, True), ("a2", "hpn", "kd_audio", 2.5, True),
        ("s1", "hpn", "scratch", 3.0, False), ("s2", "hpn", "scratch", 3.5, False), ("p1", "hpn", "prune", 9.0, True),
        ("d1", "ddx7", "scratch", 4.0, False), ("x", "hpn", "scratch", 0.5, False),
    ]
    df = pd.DataFrame([dict(uid=u, family=f, method=m, mss=v, pareto=p, dataset="d", instrument="violin",
                            tags=("reference",) if m == "teacher" else (),  # the teacher is told by its tag
                            status="failed" if u == "x" else "ok") for u, f, m, v, p in rows])
    got = listening_candidates(df, "mss", 12)
    assert list(got["uid"]) == ["a1", "a2", "s1", "d1", "p1"]  # best first; no teacher, no failed, no s2
    # the cap keeps every method's best before the rest of the Pareto set
    assert list(listening_candidates(df, "mss", 4)["uid"]) == ["a1", "s1", "d1", "p1"]
