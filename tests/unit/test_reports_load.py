from __future__ import annotations

import json

import numpy as np
import pytest

from ddspbench.reports import load_results
from ddspbench.suite.errors import UserError
from ddspbench.suite.records import ResultRecord, append_record
from tests.unit.test_reports_data import write_results_dir


def test_one_row_per_candidate_with_typed_metric_columns(tmp_path):
    root = write_results_dir(tmp_path / "r", families=("hpn",), instruments=("violin",))
    df = load_results([root])
    assert len(df) == 14 and df["uid"].is_unique
    assert df.attrs["units"]["mss"] == "1" and df.attrs["units"]["param_bytes"] == "B"
    assert df["mss"].dtype == np.float64 and df["rtf_stream_64"].dtype == np.float64
    failed = df[df["status"] == "failed"]
    assert len(failed) == 1 and np.isnan(failed["mss"]).all() and "NaN" in failed["error"].iloc[0]
    ok = df[df["status"] == "ok"]
    assert (ok["mss_ci_low"] <= ok["mss"]).all() and (ok["mss"] <= ok["mss_ci_high"]).all()
    assert set(ok["machine"]) == {"m-test-1"} and set(ok["threads"]) == {1}
    assert all(len(pc["mss"]) == 8 for pc in ok["per_clip"])
    assert all((tmp_path / "r" / "targets").samefile(d) for d in ok["target_audio_dir"])


def test_several_dirs_and_clashing_ids_get_unique_uids(tmp_path):
    a = write_results_dir(tmp_path / "a", families=("hpn",), instruments=("violin",), study_prefix="s1-", audio=False)
    b = write_results_dir(tmp_path / "b", families=("hpn",), instruments=("violin",), study_prefix="s1-", audio=False)
    df = load_results([a, b])
    assert len(df) == 28 and df["uid"].is_unique


def test_a_rerun_candidate_keeps_its_last_record(tmp_path):
    base = dict(candidate_id="c1", family="hpn", size="reduced", method="scratch", dataset="d", seed=0)
    append_record(tmp_path / "records.jsonl", ResultRecord.with_units(status="failed", error="killed", **base))
    append_record(tmp_path / "records.jsonl", ResultRecord.with_units(metrics={"mss": 5.0}, **base))
    df = load_results(tmp_path)
    assert len(df) == 1 and df["status"].iloc[0] == "ok" and df["mss"].iloc[0] == 5.0


@pytest.mark.parametrize("kw, word", [({"machine": "other-box"}, "machine"), ({"threads": 4}, "threads")])
def test_mixed_hardware_is_refused_unless_allowed(tmp_path, kw, word):
    a = write_results_dir(tmp_path / "a", families=("hpn",), instruments=("violin",), audio=False)
    b = write_results_dir(tmp_path / "b", families=("ddx7",), instruments=("violin",), audio=False, **kw)
    with pytest.raises(UserError) as info:
        load_results([a, b])
    msg = str(info.value)
    assert "\n" not in msg and f"{word} differs" in msg and "--allow-mixed-hardware" in msg
    assert "m-test-1" in msg or "1 (" in msg
    df = load_results([a, b], allow_mixed_hardware=True)
    assert len(df) == 28 and any(word in m for m in df.attrs["mixed"])


def test_different_metric_definitions_are_refused(tmp_path):
    a = write_results_dir(tmp_path / "a", families=("hpn",), instruments=("violin",), audio=False)
    b = write_results_dir(tmp_path / "b", families=("ddx7",), instruments=("violin",), audio=False,
                          mss_def="mss/4096-128/1")
    with pytest.raises(UserError, match="definition of mss differs"):
        load_results([a, b])
    assert load_results([a, b], allow_mixed_hardware=True).attrs["mixed"]


def test_failed_rows_do_not_count_as_other_hardware(tmp_path):
    base = dict(family="hpn", size="reduced", method="scratch", dataset="d", seed=0)
    append_record(tmp_path / "records.jsonl", ResultRecord.with_units(
        candidate_id="a", metrics={"mss": 5.0}, provenance={"machine": "x", "threads": 1}, **base))
    append_record(tmp_path / "records.jsonl", ResultRecord.with_units(
        candidate_id="b", status="failed", error="boom", provenance={"machine": "y", "threads": 2}, **base))
    assert len(load_results(tmp_path)) == 2


def test_missing_or_empty_results_dir_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_results([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no result records"):
        load_results([tmp_path / "empty"])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "records.jsonl").write_text(json.dumps({"hello": 1}) + "\n")
    with pytest.raises(UserError, match="no result records"):
        load_results(tmp_path / "junk")
    with pytest.raises(UserError):
        load_results([])


def test_reports_never_import_models_or_torch(tmp_path):
    import subprocess
    import sys

    root = write_results_dir(tmp_path / "r", families=("hpn",), instruments=("violin",), audio=False)
    code = (
        "import sys\nimport ddspbench.reports\n"
        f"ddspbench.reports.build_report([{str(root)!r}], {str(tmp_path / 'o')!r}, formats=('csv', 'json'))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(('ddspbench.baselines', 'ddspbench.compressors'))]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]


def test_a_parent_folder_of_several_studies_keeps_them_apart(tmp_path):
    write_results_dir(tmp_path / "all" / "a", families=("hpn",), instruments=("violin",))
    write_results_dir(tmp_path / "all" / "b", families=("hpn",), instruments=("flute",))
    df = load_results(tmp_path / "all")
    assert len(df) == 28 and df["uid"].is_unique  # same candidate ids in both studies
    assert {str(tmp_path / "all" / x) for x in "ab"} == set(df["results_dir"])
    ok = df[df["status"] == "ok"]
    assert all(d.startswith(r) for d, r in zip(ok["audio_dir"], ok["results_dir"]))


def test_a_teachers_learning_curve_is_not_a_setting():
    from ddspbench.reports.load import hyperparameters

    mp = {"preset": "smoke", "steps": 120, "config": {"hidden": 64},
          "train": {"steps": 120, "best_valid": 9.1, "curve": [[6, 30.0], [120, 9.1]], "convergence": {"converged": True}}}
    rec = ResultRecord.with_units(candidate_id="t", family="hpn", size="full", method="teacher", method_params=mp,
                                  dataset="d", seed=0)  # a schema-1 teacher, upgraded
    assert hyperparameters(rec.recipe) == {"teacher.steps": 120}
    assert rec.training[0]["best_valid"] == 9.1 and rec.provenance == {}


def test_rows_timed_under_load_get_a_note_that_counts_them(tmp_path):
    from ddspbench.reports.load import loaded_note

    base = dict(family="hpn", size="reduced", method="scratch", dataset="d", seed=0)
    for cid, load in (("quiet", 0.4), ("busy", 5.5), ("at-cores", 2.0), ("unknown", None)):
        prov = {"machine": "m", "threads": 1, "device": "cpu", "cpu_count": 2, "load_avg_1m": load}
        append_record(tmp_path / "records.jsonl",
                      ResultRecord.with_units(candidate_id=cid, metrics={"mss": 5.0}, provenance=prov, **base))
    append_record(tmp_path / "records.jsonl", ResultRecord.with_units(candidate_id="dead", status="failed", error="x",
                                                           provenance={"cpu_count": 2, "load_avg_1m": 9.0}, **base))
    df = load_results(tmp_path)
    note = loaded_note(df)
    assert note is not None and note.startswith("Timed under load: 1 of 4 ok rows")  # the failed row timed nothing
    assert "up to 5.5 on 2 cores" in note
    assert loaded_note(df[df["candidate_id"] != "busy"]) is None  # load equal to the cores is not above them
