from __future__ import annotations

import json
import math
import os

import pytest

from ddspbench.suite.records import ResultRecord, append_record, read_records


def _rec(**kw):
    base = dict(candidate_id="c1", family="hpn", size="reduced", method="kd_audio", dataset="synthetic", seed=0)
    base.update(kw)
    return ResultRecord.with_units(**base)


def test_units_filled_and_required():
    r = _rec(metrics={"mss": 4.2, "rtf_stream_64": 0.1})
    assert r.units == {"mss": "1", "rtf_stream_64": "s/s"}
    with pytest.raises(ValueError):
        ResultRecord(candidate_id="c", family="f", size="s", dataset="d", seed=0, metrics={"x": 1.0})


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


def test_every_skipped_line_is_reported_with_its_number_and_why(tmp_path, capsys):
    from ddspbench.suite.records import SkippedLine

    path = tmp_path / "records.jsonl"
    append_record(path, _rec())
    good = json.loads(_rec(candidate_id="c2").to_json())
    with open(path, "ab") as fh:
        fh.write((json.dumps({**good, "surprise": 1}) + "\n").encode())  # 2: a later version's field: kept
        fh.write((json.dumps({**good, "metrics": {"mss": "4.2"}, "units": {"mss": "1"}}) + "\n").encode())  # 3
        fh.write(b"\xff\xfe garbage\n")  # 4: not UTF-8
        fh.write(b"\n")  # 5: blank, ignored silently
        fh.write((json.dumps(good) + "\n").encode())  # 6: fine
        fh.write(b'{"schema": "ddspbench.result/1", "cand')  # 7: cut short
    skipped: list[SkippedLine] = []
    got = list(read_records([path], on_skip=skipped.append))
    assert [r.candidate_id for r in got] == ["c1", "c2", "c2"]
    assert got[1].extra == {"surprise": 1} and json.loads(got[1].to_json())["surprise"] == 1  # passed through
    assert [s.line for s in skipped] == [3, 4, 7]
    reasons = [s.reason for s in skipped]
    assert "not a number" in reasons[0] and "UTF-8" in reasons[1] and "truncated" in reasons[2]
    # the default: one warning line per skipped line, on stderr, naming file and line
    list(read_records([path]))
    err = capsys.readouterr().err.splitlines()
    assert [e.split(":")[2] for e in err] == ["3", "4", "7"] and all(e.startswith("warning: ") for e in err)


def test_a_record_after_a_cut_short_line_starts_its_own_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"schema": "ddspbench.result/1", "cand')  # a writer killed mid-line
    append_record(path, _rec())
    got = list(read_records([path], on_skip=None))
    assert [r.candidate_id for r in got] == ["c1"] and path.read_bytes().endswith(b"\n")


@pytest.mark.parametrize("failure", ["short_then_enospc", "zero_bytes", "raises"])
def test_a_short_write_fails_loudly_and_leaves_the_file_as_it_was(tmp_path, monkeypatch, failure):
    import errno

    from ddspbench.suite.records import RecordNotWritten

    path = tmp_path / "r.jsonl"
    append_record(path, _rec())
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def disk_full(fd, data):
        calls.append(len(data))
        if failure == "raises":
            raise OSError(errno.ENOSPC, "No space left on device")
        if failure == "zero_bytes" or len(calls) > 1:
            if failure == "zero_bytes":
                return 0
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data[:594])  # the first write stores a prefix only

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(RecordNotWritten, match="c2 not written"):
        append_record(path, _rec(candidate_id="c2", metrics={"mss": 1.0}, method_params={"pad": "x" * 4000}))
    monkeypatch.undo()
    assert path.read_bytes() == before
    append_record(path, _rec(candidate_id="c3"))
    assert [r.candidate_id for r in read_records([path], on_skip=None)] == ["c1", "c3"]


def test_a_full_tmpfs_keeps_whole_records_only(tmp_path):
    import shutil
    import subprocess

    from ddspbench.suite.records import RecordNotWritten

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.getuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        path = mnt / "records.jsonl"
        written = 0
        with pytest.raises(RecordNotWritten):
            for i in range(100):
                append_record(path, _rec(candidate_id=f"c{i}", method_params={"pad": "x" * 1500}))
                written += 1
        got = list(read_records([path], on_skip=None))
        assert len(got) == written and path.read_bytes().endswith(b"\n")
        assert path.read_bytes().count(b"\n") == written
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
