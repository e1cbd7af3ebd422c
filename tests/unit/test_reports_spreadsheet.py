"""leaderboard.csv: text a spreadsheet would run as a formula is neutralised; numbers stay numbers."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from ddspbench.reports import build_report
from ddspbench.reports.spreadsheet import neutralise_cell, neutralise_frame
from ddspbench.suite.records import ResultRecord, append_record


@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("hpn", "hpn"), ("", ""),
    (-1.5, -1.5), (-3, -3), (None, None),
])
def test_neutralise_cell(value, expected):
    assert neutralise_cell(value) == expected


def test_neutralise_frame_keeps_numbers_and_attrs():
    df = pd.DataFrame({"id": ["=x", "ok"], "mss": [-0.5, 2.0], "n": [-1, 2]})
    df.attrs["units"] = {"mss": "1"}
    out = neutralise_frame(df)
    assert out["id"].tolist() == ["'=x", "ok"] and out["mss"].tolist() == [-0.5, 2.0] and out["n"].tolist() == [-1, 2]
    assert out.attrs["units"] == {"mss": "1"} and df["id"].tolist() == ["=x", "ok"]


def test_leaderboard_csv_cells_cannot_run(tmp_path):
    hostile = {"candidate_id": "=HYPERLINK(\"http://evil\",\"x\")", "family": "hpn", "size": "-1+cmd|' /C calc'!A0",
               "method": "+kd_audio", "dataset": "@synthetic", "seed": 0}
    append_record(tmp_path / "records.jsonl", ResultRecord.with_units(
        **hostile, metrics={"mss": 4.0, "rtf_stream_64": -0.25, "params": 100.0}))
    append_record(tmp_path / "records.jsonl", ResultRecord.with_units(
        candidate_id="c2", family="hpn", size="reduced", method="scratch", dataset="@synthetic", seed=0,
        metrics={"mss": 5.0, "rtf_stream_64": 0.1, "params": 50.0}))
    written = build_report([tmp_path], tmp_path / "rep", formats=("csv",))
    rows = list(csv.reader(written["csv"].open(encoding="utf-8")))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _is_number(c))]
    assert any(c.startswith("'=HYPERLINK") for c in cells) and "-0.25" in cells  # negative numbers stay numbers


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
