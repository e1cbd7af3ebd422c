"""Learning curves and the convergence verdict (issue 13, item 1): the rule, its place in records, the report."""

from __future__ import annotations

import json

import pytest

from ddspbench.reports import build_report
from ddspbench.reports.convergence import candidate_converged, converged_flags, flag_comparison
from ddspbench.reports.load import load_results
from ddspbench.suite.records import ResultRecord, append_record
from ddspbench.suite.train import (
    TrainConfig,
    TrainResult,
    convergence,
    curve_steps,
    learning_curve,
    train_summary,
)


def test_curve_steps_are_evenly_spaced_and_include_the_80_percent_mark() -> None:
    assert curve_steps(1000, 20) == set(range(50, 1001, 50))
    assert 800 in curve_steps(1000, 20) and 120 in curve_steps(150, 5)
    assert curve_steps(3, 20) == {1, 2, 3} and curve_steps(10, 0) == set() and curve_steps(0, 20) == set()


@pytest.mark.parametrize(("curve", "expected"), [
    ([[200, 10.0], [800, 5.0], [1000, 4.9]], True),     # 2% in the last 20%
    ([[200, 10.0], [800, 5.0], [1000, 4.7]], False),    # 6%
    ([[800, 5.0], [900, 4.76], [1000, 4.8]], True),     # 4.8% at the best point, below the threshold
    ([[800, 5.0], [900, 4.7], [1000, 5.2]], False),     # the best of the window counts, not the last value
    ([[200, 4.0], [800, 5.0], [1000, 4.5]], True),      # best before the window was already lower: no improvement
])
def test_rule(curve: list[list[float]], expected: bool) -> None:
    v = convergence(curve, 1000)
    assert v["converged"] is expected
    assert "20%" in v["rule"] and "5%" in v["rule"]


def test_rule_unknown_without_points_on_both_sides() -> None:
    assert convergence([[1000, 3.0]], 1000)["converged"] is None  # only the final validation
    assert convergence([[100, 3.0], [500, 2.0]], 1000)["converged"] is None  # nothing in the last 20%
    assert convergence([], 10)["converged"] is None
    v = convergence([[100, float("nan")], [800, 2.0], [1000, 1.0]], 1000)
    assert v["converged"] is False and v["before_step"] == 800 and v["improvement"] == pytest.approx(0.5)


def test_train_summary_keeps_curve_and_verdict() -> None:
    hist = [{"step": 5, "loss": 9.0}, {"step": 8, "loss": 8.0, "valid": 6.0}, {"step": 10, "loss": 7.0, "valid": 5.0}]
    res = TrainResult(model=None, steps=10, seconds=1.23456, history=hist, best_valid=5.0, last_valid=5.0)  # type: ignore[arg-type]
    s = train_summary(res)
    assert s["curve"] == learning_curve(hist) == [[8, 6.0], [10, 5.0]]
    assert s["convergence"]["converged"] is False and s["convergence"]["improvement"] == pytest.approx(1 / 6)
    json.dumps(s)  # JSON-able: it goes into records
    assert TrainConfig(steps=3).curve_points == 20


def _params(flag: bool | None, nested: bool = False) -> dict:
    verdict = {"converged": flag, "improvement": None if flag is None else (0.01 if flag else 0.2)}
    train = {"steps": 100, "curve": [[80, 2.0], [100, 1.9]], "convergence": verdict}
    desc = {"method": "kd_audio", "train": train}
    return {"preset": "quick", "compressor": {"steps": [desc, {"finetune": train}]} if nested else desc}


def test_candidate_flag_from_method_params() -> None:
    assert candidate_converged(_params(True)) is True
    assert candidate_converged(json.dumps(_params(False))) is False
    assert candidate_converged(_params(None)) is None
    assert candidate_converged({"compressor": {"method": "quantize"}}) is None
    both = {"a": _params(True), "b": _params(False, nested=True)}
    assert candidate_converged(both) is False  # any run flagged "not converged" flags the candidate


def _records(root) -> None:  # type: ignore[no-untyped-def]
    rows = [("teacher", 3.0, 4_000_000, _params(True)), ("scratch", 6.0, 20_000, _params(False)),
            ("kd_audio", 5.0, 20_000, _params(True)), ("quantize", 3.5, 4_000_000, {"compressor": {"method": "quantize"}})]
    for i, (method, mss, params, mp) in enumerate(rows):
        append_record(root / "records.jsonl", ResultRecord.with_units(
            candidate_id=f"c{i}", family="hpn", size="reduced", method=method, dataset="synthetic", seed=0,
            method_params=mp, metrics={"mss": mss, "params": float(params)}))


def test_flags_on_constructed_records_and_in_the_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _records(tmp_path)
    df = load_results([tmp_path])
    flags = dict(zip(df["candidate_id"], converged_flags(df)))
    assert flags == {"c0": True, "c1": False, "c2": True, "c3": None}
    written = build_report([tmp_path], tmp_path / "rep", formats=("md", "json", "csv"), n_clips=1)
    md = written["md"].read_text()
    assert "converged = no" in md  # the note explaining the flag
    board = md.split("## Leaderboard")[1].split("##")[0]
    assert "converged" in next(line for line in board.splitlines() if line.startswith("| rank"))
    scratch_line = next(line for line in board.splitlines() if "| scratch |" in line)
    assert scratch_line.rstrip(" |").endswith("no")
    data = json.loads(written["json"].read_text())
    assert {r["uid"]: r["converged"] for r in data["rows"]} == flags
    vs_scratch = data["kd_vs_scratch"]
    assert vs_scratch and vs_scratch[0]["kd_converged"] is True and vs_scratch[0]["scratch_converged"] is False
    others = {r["uid"]: r for r in data["kd_vs_others"]}
    assert others["c1"]["converged"] is False and others["c1"]["vs_kd_converged"] is True
    assert "converged" in written["csv"].read_text().splitlines()[0]


def test_flag_comparison_leaves_frames_without_uids_alone() -> None:
    import pandas as pd

    df = pd.DataFrame({"uid": ["a"], "converged": [False]})
    frame = pd.DataFrame({"x": [1]})
    assert list(flag_comparison(frame, df, {"uid": "converged"}).columns) == ["x"]
    assert flag_comparison(pd.DataFrame(), df, {"uid": "c"}).empty
