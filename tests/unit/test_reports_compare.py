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
from ddspbench.reports.stats import paired_comparison
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


def test_clearly_different_clips_are_significant_paired():
    rng = np.random.default_rng(0)
    base = rng.normal(5.0, 1.0, 40)  # clip difficulty varies a lot; the paired difference does not
    worse = base + 0.3 + rng.normal(0, 0.05, 40)
    res = paired_comparison(worse, base)
    assert res["diff"] == pytest.approx(0.3, abs=0.05) and res["ci_low"] > 0 and res["p_value"] < 0.01
    assert res["test"].startswith("sign-flip permutation test (20000 random") and res["relevant"]  # 0.3 > 5 % of 5


def test_identical_or_same_distribution_is_not_significant():
    x = np.random.default_rng(1).normal(5.0, 0.5, 30)
    same = paired_comparison(x, x.copy())
    assert same["diff"] == 0.0 and same["p_value"] == 1.0 and not same["relevant"]
    rng = np.random.default_rng(2)
    res = paired_comparison(rng.normal(5.0, 0.5, 30), rng.normal(5.0, 0.5, 30))
    assert res["ci_low"] < 0 < res["ci_high"] and res["p_value"] > 0.05


def test_different_clip_counts_are_not_tested():
    with pytest.raises(ValueError, match="not paired"):
        paired_comparison(np.ones(25), np.ones(30))
    with pytest.raises(ValueError):
        paired_comparison([1.0], [2.0])


def test_kd_method_detection():
    assert is_kd_method("kd_audio") and is_kd_method("prune+kd_control+quantize")
    assert not is_kd_method("scratch") and not is_kd_method("prune+quantize") and not is_kd_method("teacher")


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    root = write_results_dir(tmp_path_factory.mktemp("cmp") / "r", audio=False)
    return load_results([root])


def test_kd_vs_others_best_per_method_per_band(frame):
    table = kd_vs_others(frame, quality="mss", budget="param_bytes")
    assert set(table["method"]) >= {"scratch", "kd_audio", "prune", "quantize", "prune+kd_audio+quantize"}
    assert "teacher" not in set(table["method"])
    # one best row per (group, band, method)
    assert not table.duplicated(["dataset", "instrument", "band", "method"]).any()
    # each KD-best row is the best KD candidate of its band
    for _, grp in table.groupby(["dataset", "instrument", "band"]):
        kd = grp[grp["method"].map(is_kd_method)]
        if len(kd):
            assert grp.loc[grp["kd_best"], "mss"].iloc[0] == kd["mss"].min()
    # scratch students of the same byte band are compared with KD's best: KD is better there by construction
    vs = table[(table["method"] == "scratch") & table["vs_kd"].notna()]
    assert len(vs) >= 2 and (vs["diff"] < 0).all()  # diff = KD - scratch: negative, KD better
    assert vs["pairing"].str.startswith("paired, 8 clips").all()
    assert vs["test"].str.startswith("exact sign-flip permutation test (2^8 = 256").all()
    # 8 clips: no p below 2/256, and Holm over the table's tested rows never lowers a p-value
    tested = table[table["p_value"].notna()]
    assert (tested["p_value"] >= 2 / 256 - 1e-12).all() and (tested["p_holm"] >= tested["p_value"]).all()
    assert set(tested["verdict"]) <= {"method better", "method worse", "no significant difference",
                                      "significant but below the practical threshold", "not enough data to tell"}


def test_kd_vs_scratch_flags_the_student_kd_made_worse(frame):
    # 8 clips and 24 KD/scratch pairs: Holm multiplies the smallest possible p (2/2^8) by 24 -> 0.19, so no
    # pair can be a finding, whatever the data say
    table = kd_vs_scratch(frame, quality="mss")
    assert len(table) == 24 and (table["verdict"] == "not enough data to tell").all() and not table["kd_worse"].any()
    assert np.allclose(table["min_p_holm"], 24 * 2 / 256)
    # one study (hpn/violin: 6 pairs): 6 * 2/256 = 0.047 < 0.05, and the constructed KD-made-worse pair shows
    one = frame[(frame["family"] == "hpn") & (frame["instrument"] == "violin")]
    table = kd_vs_scratch(one, quality="mss")
    worse = table[table["kd_worse"]]
    assert len(worse) == 1
    row = worse.iloc[0]
    assert (row["family"], row["instrument"], row["size"], row["method"]) == ("hpn", "violin", "reduced", "kd_audio")
    assert row["verdict"] == "method worse" and row["p_holm"] < 0.05 and row["relevant"]
    assert row["diff"] > 1.0 and row["ci_low"] > 0
    assert table.index[table["kd_worse"]].tolist() == [0]  # flagged pairs listed first
    assert (table.loc[~table["kd_worse"], "diff"] < 0).all()


def test_kd_summary_counts_bands_per_method(frame):
    from ddspbench.reports.compare import kd_summary

    table = kd_vs_others(frame, quality="mss", budget="param_bytes")
    summary = kd_summary(table)
    compared = table[table["vs_kd"].notna()]
    assert summary["bands"].sum() == len(compared)
    scratch = summary[summary["method"] == "scratch"]
    assert (scratch["kd_worse"] == 0).all() and scratch["kd_better"].sum() >= 1
    parts = summary["kd_better"] + summary["kd_worse"] + summary["no_clear_difference"] + summary["not_enough_data"]
    assert (parts == summary["bands"]).all()
