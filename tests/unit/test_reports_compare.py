from __future__ import annotations

import numpy as np
import pytest

from ddspbench.reports import load_results
from ddspbench.reports.compare import (
    assign_buckets,
    bucket_bounds,
    bucket_index,
    bucket_label,
    is_kd_method,
    kd_vs_others,
    kd_vs_scratch,
)
from tests.unit.test_reports_data import write_results_dir


def test_budget_buckets_are_log_spaced_bands():
    # two bands per decade: [1, 3.16), [3.16, 10), [10, 31.6), ...
    assert [bucket_index(v) for v in (1.0, 3.0, 3.17, 9.99, 10.0, 31.0, 100.0)] == [0, 0, 1, 1, 2, 2, 4]
    assert bucket_index(0.5) == -1 and bucket_index(0.3) == -2 and bucket_index(0.0) is None and bucket_index(float("nan")) is None
    assert bucket_index(1e6, per_decade=1) == 6 and bucket_index(999_999.0, per_decade=1) == 5
    lo, hi = bucket_bounds(9, per_decade=2)
    assert lo == pytest.approx(10**4.5) and hi == pytest.approx(1e5)
    assert bucket_label(9, 2, "B") == "[31.6 kB, 100 kB)"
    b = assign_buckets([94_048.0, 54_000.0, 720_000.0, -1.0, float("nan")])
    assert b.iloc[:3].tolist() == [9, 9, 11] and b.iloc[3:].isna().all()
    # every value sits inside its own band
    for v in np.geomspace(1e-3, 1e9, 97):
        k = bucket_index(float(v), 3)
        lo, hi = bucket_bounds(k, 3)
        assert lo <= v * (1 + 1e-12) and v < hi * (1 + 1e-12)


def test_kd_method_detection():
    # by the tags the steps declared, never by name (tests/unit/test_recipe.py greps for name tests)
    assert is_kd_method(("distillation",)) and is_kd_method(("distillation", "pruning", "quantization"))
    assert not is_kd_method(("from_scratch",)) and not is_kd_method(("pruning", "quantization"))
    assert not is_kd_method(("reference",)) and not is_kd_method(())


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    root = write_results_dir(tmp_path_factory.mktemp("cmp") / "r", audio=False)
    return load_results([root])


def test_kd_vs_others_best_per_method_per_band(frame):
    table = kd_vs_others(frame, quality="mss", budget="param_bytes")
    assert set(table["method"]) >= {"scratch", "kd_audio", "prune", "quantize", "prune+kd_audio+quantize"}
    assert "teacher" not in set(table["method"])
    # one chosen row per (group, band, method)
    assert not table.duplicated(["dataset", "instrument", "band", "method"]).any()
    # these records carry no validation value, so arms with several configurations are chosen on test (and say so)
    for _, grp in table.groupby(["dataset", "instrument", "band"]):
        kd = grp[grp["method"].isin(set(frame.loc[frame["tags"].map(is_kd_method), "method"]))]
        if len(kd):
            assert grp.loc[grp["kd_best"], "mss"].iloc[0] == kd["mss"].min()
    # scratch students of the same byte band are compared with KD's arm: KD is better there by construction
    vs = table[(table["method"] == "scratch") & table["vs_kd"].notna()]
    assert len(vs) >= 2 and (vs["diff"] < 0).all()  # diff = KD - scratch: negative, KD better
    # one run per arm: the run-to-run variance is unknown, so no verdict can be more than inconclusive
    tested = table[table["vs_kd"].notna()]
    assert (tested["verdict"] == "inconclusive").all()
    assert tested["note"].str.contains("one run per arm: run-to-run variance not measured").all()


def test_kd_vs_scratch_single_runs_are_inconclusive(frame):
    table = kd_vs_scratch(frame, quality="mss")
    assert len(table) == 24 and (table["verdict"] == "inconclusive").all() and not table["kd_worse"].any()
    one = frame[(frame["family"] == "hpn") & (frame["instrument"] == "violin")]
    table = kd_vs_scratch(one, quality="mss")
    # the constructed KD-made-worse pair: clearly worse on every clip, yet one run each cannot say "KD worse"
    row = table[(table["size"] == "reduced") & (table["method"] == "kd_audio")].iloc[0]
    assert row["diff"] > 1.0 and row["verdict"] == "inconclusive"
    assert "one run per arm" in row["note"] and not np.isfinite(row["ci_low"])


def test_kd_summary_counts_bands_per_method(frame):
    from ddspbench.reports.compare import kd_summary

    table = kd_vs_others(frame, quality="mss", budget="param_bytes")
    summary = kd_summary(table)
    compared = table[table["vs_kd"].notna()]
    assert summary["bands"].sum() == len(compared)
    parts = summary["kd_better"] + summary["kd_worse"] + summary["equivalent"] + summary["inconclusive"]
    assert (parts == summary["bands"]).all() and (summary["inconclusive"] == summary["bands"]).all()
