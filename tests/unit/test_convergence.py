"""Learning curves and the convergence verdict (issue 13, item 1): the rule, its place in records, the report."""

from __future__ import annotations

import json

import pytest

from ddspbench.reports import build_report
from ddspbench.reports.convergence import candidate_converged, converged_flags, flag_comparison
from ddspbench.reports.load import load_results
from ddspbench.suite.convergence import convergence
from ddspbench.suite.records import ResultRecord, append_record
from ddspbench.suite.train import (
    TrainConfig,
    TrainResult,
    curve_steps,
    learning_curve,
    train_summary,
)


def test_curve_steps_are_evenly_spaced_and_include_the_80_percent_mark() -> None:
    assert curve_steps(1000, 20) == set(range(50, 1001, 50))
    assert 800 in curve_steps(1000, 20) and 120 in curve_steps(150, 5)
    assert curve_steps(3, 20) == {1, 2, 3} and curve_steps(10, 0) == set() and curve_steps(0, 20) == set()


@pytest.mark.parametrize(("curve", "expected"), [
    # smoothed (median of 3) at the validation nearest N/2 vs at the end: the improvement of the last doubling
    ([[250, 10.0], [500, 5.0], [750, 4.95], [1000, 4.9]], True),    # 5.0 -> median(5.0, 4.95, 4.9) = 4.95: 1 %
    ([[250, 10.0], [500, 5.0], [750, 4.7], [1000, 4.6]], False),    # 5.0 -> 4.7: 6 %
    # one noisy dip at the end is not progress: the median of the last three ignores it
    ([[250, 8.0], [500, 5.0], [600, 5.1], [800, 5.0], [900, 5.05], [1000, 4.0]], True),
    # a run that got worse after its best has not "improved", but it is flagged as regressed
    ([[250, 8.0], [500, 5.0], [750, 5.3], [1000, 5.6]], True),
])
def test_rule(curve: list[list[float]], expected: bool) -> None:
    v = convergence(curve, 1000)
    assert v["converged"] is expected
    assert "doubling" in v["rule"] and "5%" in v["rule"]


def test_regression_flag_sees_a_run_that_ends_above_its_best() -> None:
    # the DDX7 scratch seed: ends 12 % above its best; the old rule called it converged and judged the last
    v = convergence([[60, 9.0], [120, 8.0], [180, 7.5], [240, 7.9], [300, 8.4]], 300)
    assert v["regressed"] is True and v["ended_above_best"] == pytest.approx(8.4 / 7.5 - 1)
    assert v["best_step"] == 180 and v["last"] == 8.4
    steady = convergence([[60, 9.0], [120, 8.0], [180, 7.5], [240, 7.45], [300, 7.6]], 300)
    assert steady["regressed"] is False


def test_rule_unknown_with_too_few_points() -> None:
    assert convergence([[1000, 3.0]], 1000)["converged"] is None  # only the final validation
    assert convergence([[800, 3.0], [900, 2.0], [1000, 1.9]], 1000)["converged"] is None  # 3 points
    assert convergence([[600, 3.0], [700, 2.0], [800, 1.9], [1000, 1.8]], 1000)["converged"] is None  # none <= N/2
    assert convergence([], 10)["converged"] is None
    v = convergence([[100, float("nan")], [250, 4.0], [500, 3.0], [750, 2.0], [1000, 1.0]], 1000)
    assert v["converged"] is False and v["before_step"] == 500 and v["before"] == 3.0 and v["after"] == 2.0


def test_train_summary_keeps_curve_and_verdict() -> None:
    hist = [{"step": 5, "loss": 9.0}, {"step": 8, "loss": 8.0, "valid": 6.0}, {"step": 10, "loss": 7.0, "valid": 5.0}]
    res = TrainResult(model=None, steps=10, seconds=1.23456, history=hist, best_valid=5.0, last_valid=5.0,  # type: ignore[arg-type]
                      selected="best", selected_step=10)
    s = train_summary(res)
    assert s["curve"] == learning_curve(hist) == [[8, 6.0], [10, 5.0]]
    assert s["convergence"]["converged"] is None  # two points cannot tell
    assert (s["checkpoint"], s["selected_step"], s["selected_valid"]) == ("best", 10, 5.0)
    json.dumps(s)  # JSON-able: it goes into records
    assert TrainConfig(steps=3).curve_points == 20 and TrainConfig(steps=3).checkpoint == "best"


_CONVERGED = [[25, 3.0], [50, 2.0], [75, 1.95], [100, 1.9]]
_STILL_IMPROVING = [[25, 3.0], [50, 2.6], [75, 2.2], [100, 1.9]]


def _params(flag: bool | None, nested: bool = False) -> dict:
    verdict = {"converged": flag, "improvement": None if flag is None else (0.01 if flag else 0.2)}
    curve = [[100, 1.9]] if flag is None else (_CONVERGED if flag else _STILL_IMPROVING)
    train = {"steps": 100, "curve": curve, "convergence": verdict}
    desc = {"method": "kd_audio", "train": train}
    return {"preset": "quick", "compressor": {"steps": [desc, {"finetune": train}]} if nested else desc}


def test_candidate_flag_from_method_params() -> None:
    assert candidate_converged(_params(True)) is True
    assert candidate_converged([_params(False)["compressor"]["train"]]) is False  # a record's training summaries
    assert candidate_converged(_params(None)) is None
    assert candidate_converged({"compressor": {"method": "quantize"}}) is None
    both = {"a": _params(True), "b": _params(False, nested=True)}
    assert candidate_converged(both) is False  # any run flagged "not converged" flags the candidate
    # the verdict is recomputed from the curve by today's rule, whatever an older record stored
    stale = {"compressor": {"method": "scratch", "train": {"steps": 100, "curve": _STILL_IMPROVING,
                                                           "convergence": {"converged": True}}}}
    assert candidate_converged(stale) is False


def _records(root) -> None:  # type: ignore[no-untyped-def]
    rows = [("teacher", 3.0, 4_000_000, {"steps": 100, "train": _params(True)["compressor"]["train"]}), ("scratch", 6.0, 20_000, _params(False)),
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
