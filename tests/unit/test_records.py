from __future__ import annotations

import json
import math

import pytest

from suite.records import ResultRecord, append_record, read_records


def _rec(**kw):
    base = dict(candidate_id="c1", family="hpn", size="reduced", method="kd_audio", dataset="synthetic", seed=0)
    base.update(kw)
    return ResultRecord.with_units(**base)


def test_units_filled_and_required():
    r = _rec(metrics={"mss": 4.2, "rtf_stream_64": 0.1})
    assert r.units == {"mss": "1", "rtf_stream_64": "s/s"}
    with pytest.raises(ValueError):
        ResultRecord(candidate_id="c", family="f", size="s", method="m", dataset="d", seed=0, metrics={"x": 1.0})


def test_failed_needs_error():
    with pytest.raises(ValueError):
        _rec(status="failed")
    r = _rec(status="failed", error="RuntimeError: NaN in output")
    assert r.error


def test_jsonl_roundtrip_nonfinite_and_truncated_line(tmp_path):
    path = tmp_path / "r.jsonl"
    a = _rec(metrics={"mss": float("nan"), "fad": 1.5})
    b = _rec(candidate_id="c2", metrics={"mss": 3.0})
    append_record(path, a)
    append_record(path, b)
    with open(path, "a") as fh:  # a writer killed mid-line
        fh.write('{"schema": "ddspbench.result/1", "candid')
    got = list(read_records([tmp_path]))
    assert [r.candidate_id for r in got] == ["c1", "c2"]
    assert got[0].metrics["mss"] is None and got[0].metrics["fad"] == 1.5
    for line in path.read_text().splitlines()[:2]:
        d = json.loads(line)
        assert all(v is None or math.isfinite(v) for v in d["metrics"].values())
