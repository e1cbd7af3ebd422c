"""The verdict statistics (reports.stats, issue 20): the training run is the unit, four verdicts named after KD,
Holm over one family. Each statistic is checked against an independent implementation (scipy's Welch test, a
hierarchical bootstrap written here) and through the verdict it feeds; the coverage and the false-claim rate are
checked by simulation on runs with run, recording and arm-by-recording effects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ddspbench.reports.compare import Family, verdict_tables
from ddspbench.reports.stats import (
    VERDICTS,
    PairingError,
    RunMatrix,
    claim_verdicts,
    holm,
    run_level_comparison,
    run_matrix,
    runs_needed,
)


def _matrix(values: np.ndarray, recordings: list[str] | None = None) -> RunMatrix:
    values = np.asarray(values, dtype=float)
    recs = tuple(recordings or [f"r{j}" for j in range(values.shape[1])])
    return RunMatrix(values=values, recordings=recs, clips=recs, runs=tuple(range(values.shape[0])))


def _arm(rng: np.random.Generator, n: int, mu: float, rec: np.ndarray, *, sd_run: float, sd_armrec: float,
         sd_clip: float, clips: int = 3) -> np.ndarray:
    """(n runs, R recordings) means of ``clips`` clips each: mean + shared recording effect + this arm's
    recording interaction + run effect + clip noise."""
    r = rec.size
    inter = rng.normal(0, sd_armrec, r)
    run = rng.normal(0, sd_run, (n, 1))
    noise = rng.normal(0, sd_clip, (n, r, clips)).mean(axis=2)
    return mu + rec + inter + run + noise


def _runs(values: np.ndarray, recs: list[str], clips_per_rec: int = 1, seed0: int = 0) -> list[dict]:
    """Per-run dicts as records give them (per-clip values with clip and recording ids)."""
    out = []
    for i, row in enumerate(values):
        ids = [f"{rec}_c{k}[0:250]" for rec in recs for k in range(clips_per_rec)]
        rr = [rec for rec in recs for _ in range(clips_per_rec)]
        vals = [float(v) for v in row for _ in range(clips_per_rec)]
        out.append({"seed": seed0 + i, "values": vals, "clip_ids": ids, "recording_ids": rr})
    return out


def test_one_recording_is_welchs_t_test():
    # with one test recording the recording term vanishes and the test is Welch's over run means: scipy's
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 0.3, (4, 1))
    b = rng.normal(5.4, 0.1, (6, 1))
    res = run_level_comparison(_matrix(a), _matrix(b))
    ref = stats.ttest_ind(a[:, 0], b[:, 0], equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res["p_zero"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert res["df"] == pytest.approx(ref.df, rel=1e-9)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert "one test recording" in res["note"]


def _hier_bootstrap_se(a: np.ndarray, b: np.ndarray, draws: int, rng: np.random.Generator) -> float:
    """An independent estimate: resample recordings (shared by both arms) and each arm's runs, with replacement."""
    ra, rb = a.shape[0], b.shape[0]
    r = a.shape[1]
    cols = rng.integers(0, r, (draws, r))
    rows_a = rng.integers(0, ra, (draws, ra))
    rows_b = rng.integers(0, rb, (draws, rb))
    out = np.empty(draws)
    for k in range(draws):
        out[k] = a[np.ix_(rows_a[k], cols[k])].mean() - b[np.ix_(rows_b[k], cols[k])].mean()
    return float(out.std(ddof=1))


def _pair(seed: int, n: int, r: int, shift: float, sd_run: tuple[float, float], sd_armrec: float,
          sd_clip: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Two simulated arms sharing ``r`` recordings (the second ``shift`` above the first) and their comparison."""
    rng = np.random.default_rng(seed)
    rec = rng.normal(0, 0.5, r)
    a = _arm(rng, n, 5.0, rec, sd_run=sd_run[0], sd_armrec=sd_armrec, sd_clip=sd_clip)
    b = _arm(rng, n, 5.0 + shift, rec, sd_run=sd_run[1], sd_armrec=sd_armrec, sd_clip=sd_clip)
    return a, b, run_level_comparison(_matrix(a), _matrix(b))


def test_standard_error_agrees_with_a_hierarchical_bootstrap():
    # large design: the bootstrap's small-sample bias is negligible, so both estimate the same sampling spread
    a, b, res = _pair(1, 40, 40, 0.2, (0.2, 0.1), 0.15, 0.1)
    boot = _hier_bootstrap_se(a, b, 3000, np.random.default_rng(2))
    assert res["se"] == pytest.approx(boot, rel=0.12)


def _coverage(design: dict, sims: int, rng: np.random.Generator) -> float:
    hits = 0
    for _ in range(sims):
        rec = rng.normal(0, design["sd_rec"], design["R"])
        a = _arm(rng, design["n"], 5.0, rec, sd_run=design["sd_run"], sd_armrec=design["sd_armrec"],
                 sd_clip=design["sd_clip"])
        b = _arm(rng, design["n"], 5.3, rec, sd_run=design["sd_run"], sd_armrec=design["sd_armrec"],
                 sd_clip=design["sd_clip"])
        res = run_level_comparison(_matrix(a), _matrix(b))
        hits += res["ci_low"] <= -0.3 <= res["ci_high"]
    return hits / sims


@pytest.mark.parametrize("design", [
    # spreads like the compare preset's (HpN seed sd ~0.1, DDX7 ~0.3; recordings differ by ~0.5 MSS)
    {"n": 3, "R": 4, "sd_run": 0.1, "sd_rec": 0.5, "sd_armrec": 0.1, "sd_clip": 0.2},
    {"n": 3, "R": 8, "sd_run": 0.3, "sd_rec": 0.5, "sd_armrec": 0.1, "sd_clip": 0.3},
    {"n": 8, "R": 8, "sd_run": 0.2, "sd_rec": 0.5, "sd_armrec": 0.15, "sd_clip": 0.3},
])
def test_interval_coverage_by_simulation(design):
    cov = _coverage(design, 1500, np.random.default_rng(7))
    assert 0.90 <= cov <= 0.98, cov


def test_a_null_arm_is_rarely_called_different():
    # no true difference, T = 0 (so "better"/"worse" is plain significance): at most alpha of the runs may claim one
    rng = np.random.default_rng(11)
    claims, sims = 0, 2000
    for _ in range(sims):
        rec = rng.normal(0, 0.5, 6)
        a = _arm(rng, 4, 5.0, rec, sd_run=0.2, sd_armrec=0.1, sd_clip=0.2)
        b = _arm(rng, 4, 5.0, rec, sd_run=0.2, sd_armrec=0.1, sd_clip=0.2)
        res = run_level_comparison(_matrix(a), _matrix(b), rel_threshold=0.0)
        _, (v,) = claim_verdicts([res["p_claim"]], [res["claim"]])
        claims += v in ("KD better", "KD worse")
    assert claims / sims <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / sims)


def test_run_variance_enters_the_interval():
    # KD's runs average 1.0 lower, consistently across recordings, but the runs themselves scatter by 2: three runs
    # cannot tell. Dropping the run-to-run term would call it "KD better".
    rec = np.array([0.0, 0.5, -0.5, 1.0])
    a = 7.0 + rec + np.array([[-2.0], [0.5], [1.5]])
    b = 8.0 + rec + np.array([[0.0], [0.01], [-0.01]])
    res = run_level_comparison(_matrix(a), _matrix(b))
    assert res["diff"] == pytest.approx(-1.0) and res["var_recordings"] == pytest.approx(0.0)
    assert res["claim"] == "KD better" or res["ci_high"] > -res["threshold"]
    _, (v,) = claim_verdicts([res["p_claim"]], [res["claim"]])
    assert v == "inconclusive" and res["ci_low"] < -1.5 and res["ci_high"] > 0


def test_four_verdicts_from_the_interval():
    rec = np.array([0.0, 0.3, -0.2, 0.4, -0.1, 0.2])
    base = 8.0 + rec + np.array([[0.0], [0.02], [-0.02], [0.01]])
    def verdict(shift: float, jitter: float = 0.02) -> str:
        kd = base + shift + np.array([[jitter], [-jitter], [0.0], [0.01]])
        res = run_level_comparison(_matrix(kd), _matrix(base))
        return claim_verdicts([res["p_claim"]], [res["claim"]])[1][0]
    t = 0.05 * 8.0
    assert verdict(-2 * t) == "KD better"  # KD lower MSS by twice the threshold
    assert verdict(+2 * t) == "KD worse"
    assert verdict(0.0) == "equivalent within +-T"
    assert verdict(-1.0 * t) == "inconclusive"  # right at the threshold: neither beyond nor inside
    assert set(VERDICTS) == {"KD better", "KD worse", "equivalent within +-T", "inconclusive"}


def test_a_significant_difference_smaller_than_t_is_equivalent_not_better():
    rec = np.array([0.0, 0.3, -0.2, 0.4, -0.1, 0.2])
    base = 27.3 + rec + np.array([[0.0], [0.01], [-0.01]])
    kd = base - 0.1  # 0.4 % better, every run and recording: significant, practically nothing
    res = run_level_comparison(_matrix(kd), _matrix(base))
    assert res["p_zero"] < 1e-3
    assert claim_verdicts([res["p_claim"]], [res["claim"]])[1][0] == "equivalent within +-T"


def test_holm_adjusted_p_decides_not_the_raw_one():
    # three claims each at p 0.03: each alone holds, together Holm lifts them to 0.09
    assert claim_verdicts([0.03], ["KD better"])[1] == ["KD better"]
    adj, v = claim_verdicts([0.03, 0.03, 0.03], ["KD better", "KD worse", "equivalent within +-T"])
    assert np.allclose(adj, 0.09) and v == ["inconclusive"] * 3
    # Holm-significant where Bonferroni is not: no other gate may overrule it
    adj, v = claim_verdicts([0.01, 0.03], ["KD better", "KD worse"])
    assert adj == pytest.approx([0.02, 0.03]) and v == ["KD better", "KD worse"]
    assert claim_verdicts([math.nan, 0.001], ["inconclusive", "KD better"])[1] == ["inconclusive", "KD better"]
    assert holm([0.01, 0.03]) == pytest.approx([0.02, 0.03])


def test_pairing_is_by_clip_id_not_position():
    recs = ["a", "b", "c", "d"]
    rec_eff = np.array([0.0, 2.0, -1.0, 3.0])  # recordings differ a lot; the arms differ by 1 on each
    kd = _runs(6.0 + rec_eff + np.array([[0.0], [0.02], [-0.02]]), recs, clips_per_rec=2)
    other = _runs(7.0 + rec_eff + np.array([[0.0], [0.01], [-0.01]]), recs, clips_per_rec=2)
    ref = run_level_comparison(run_matrix(kd), run_matrix(other))
    assert ref["diff"] == pytest.approx(-1.0) and ref["claim"] == "KD better" and ref["p_claim"] < 0.01
    # the same clips in another order: the same answer
    perm = np.random.default_rng(0).permutation(8)
    shuffled = [{**r, "values": [r["values"][i] for i in perm], "clip_ids": [r["clip_ids"][i] for i in perm],
                 "recording_ids": [r["recording_ids"][i] for i in perm]} for r in kd]
    again = run_level_comparison(run_matrix(shuffled), run_matrix(other))
    assert again["ci_low"] == pytest.approx(ref["ci_low"]) and again["p_claim"] == pytest.approx(ref["p_claim"])
    # values stored sorted while the ids keep their order: the pairing breaks and the answer with it
    broken = [{**r, "values": sorted(r["values"])} for r in kd]
    bad = run_level_comparison(run_matrix(broken), run_matrix(other))
    assert bad["var_recordings"] > 10 * (ref["var_recordings"] + 1e-6)
    assert claim_verdicts([bad["p_claim"]], [bad["claim"]])[1] == ["inconclusive"]


def test_mismatched_clip_sets_are_refused_in_one_line():
    recs = ["a", "b", "c"]
    kd = _runs(np.ones((2, 3)), recs)
    other = _runs(np.ones((2, 3)), ["a", "b", "x"])
    with pytest.raises(PairingError, match=r"^not the same test clips: 1 only in KD's arm") as exc:
        run_level_comparison(run_matrix(kd), run_matrix(other))
    assert "\n" not in str(exc.value)
    with pytest.raises(PairingError, match="not the same test clips"):
        run_matrix([kd[0], _runs(np.ones((1, 3)), ["a", "b", "x"])[0]])


def test_one_run_arms():
    rec = np.array([0.0, 0.4, -0.3, 0.2])
    kd = 5.0 + rec + np.array([[0.1], [-0.1], [0.05]])
    int8 = (5.1 + rec)[None, :]
    res = run_level_comparison(_matrix(kd), _matrix(int8))
    assert res["testable"] and res["var_runs_other"] == res["var_runs_kd"]
    assert "the other arm has one run: its run variance taken equal to KD's (3 runs)" in res["note"]
    both = run_level_comparison(_matrix(kd[:1]), _matrix(int8))
    assert not both["testable"] and both["claim"] == "inconclusive" and "one run per arm" in both["note"]


def test_identical_arms_are_equivalent():
    rec = np.array([0.0, 0.4, -0.3, 0.2, 0.1])
    kd = 5.0 + rec + np.array([[0.05], [-0.05], [0.02], [0.0]])
    res = run_level_comparison(_matrix(kd), _matrix(kd.copy()))
    assert res["diff"] == 0.0 and res["claim"] == "equivalent within +-T"
    # no variance at all: the interval is the point
    flat = np.full((3, 4), 5.0)
    res = run_level_comparison(_matrix(flat), _matrix(flat.copy()))
    assert res["se"] == 0 and res["ci_low"] == res["ci_high"] == 0 and res["p_claim"] == 0.0


def test_runs_needed_reaches_its_precision():
    _, _, res = _pair(6, 3, 6, 0.05, (0.3, 0.3), 0.05, 0.1)
    need = runs_needed(res)
    n = need["runs_needed"]
    assert n is not None and n > 3 and "runs per arm" in need["power_note"]
    gap = abs(abs(res["diff"]) - res["threshold"])
    se_n = math.sqrt((res["var_runs_kd"] + res["var_runs_other"]) / n + res["var_recordings"] / res["n_recordings"])
    assert se_n <= gap / (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) + 1e-12
    se_prev = math.sqrt((res["var_runs_kd"] + res["var_runs_other"]) / (n - 1)
                        + res["var_recordings"] / res["n_recordings"])
    assert n == 2 or se_prev > gap / (stats.norm.ppf(0.975) + stats.norm.ppf(0.8))


# --- through the tables: one family, chosen on validation, the same verdict everywhere -------------------------

def _config_row(uid: str, method: str, values: np.ndarray, recs: list[str], *, valid: float, size: str = "reduced",
                family: str = "hpn") -> dict:
    runs = _runs(values, recs)
    from ddspbench.suite.upgrade import LEGACY_TAGS

    return {"uid": uid, "method": method, "family": family, "size": size, "dataset": "syn", "instrument": None,
            "tags": LEGACY_TAGS.get(method, ()), "status": "ok", "mss": float(values.mean()), "n_seeds": values.shape[0], "runs": runs,
            "valid_mss": valid, "params": 1000.0, "param_bytes": 4000.0, "converged": True}


def test_tables_share_one_family_and_choose_on_validation():
    recs = ["r0", "r1", "r2", "r3", "r4", "r5"]
    rec = np.array([0.0, 0.5, -0.4, 0.3, -0.2, 0.1])
    jit = np.array([[0.0], [0.02], [-0.02], [0.01]])
    rows = [
        # kd_audio is better on test but worse on validation: kd_control must be KD's arm
        _config_row("kda", "kd_audio", 7.0 + rec + jit, recs, valid=7.4),
        _config_row("kdc", "kd_control", 7.3 + rec + jit, recs, valid=7.2),
        _config_row("scr", "scratch", 8.5 + rec + jit, recs, valid=8.4),
        _config_row("prn", "prune", 7.3 + rec + jit, recs, valid=7.3, size="full:pruned"),
    ]
    df = pd.DataFrame(rows)
    tables = verdict_tables(df, quality="mss", budget="param_bytes")
    v = tables.verdicts.set_index("method")
    assert bool(v.loc["kd_control", "kd_arm"]) and not bool(v.loc["kd_audio", "kd_arm"])
    assert v.loc["scratch", "vs_kd"] == "kdc" and v.loc["scratch", "verdict"] == "KD better"
    assert v.loc["prune", "verdict"] == "equivalent within +-T"
    # the same pair (kd_control vs scratch) in the KD-vs-scratch table: the same numbers and verdict
    ks = tables.kd_vs_scratch.set_index("method")
    assert ks.loc["kd_control", "verdict"] == v.loc["scratch", "verdict"]
    assert ks.loc["kd_control", "p_holm"] == pytest.approx(v.loc["scratch", "p_holm"])
    # Holm's m is every distinct pair of the report: KD arm vs scratch and prune, kd_audio vs scratch (band pairs
    # repeat the verdict pairs)
    assert tables.family.size == 3
    adj = holm([tables.family.pairs[k]["p_claim"] for k in tables.family.pairs])
    assert sorted(adj) == pytest.approx(sorted(r["p_holm"] for r in tables.family.pairs.values()))


def test_family_refuses_unpaired_arms_with_a_note():
    recs = ["r0", "r1", "r2"]
    kd = pd.Series(_config_row("kd", "kd_audio", np.ones((2, 3)), recs, valid=1.0))
    other = pd.Series(_config_row("o", "scratch", np.ones((2, 3)), ["r0", "r1", "zz"], valid=1.0))
    fam = Family("mss")
    key = fam.add(kd, other)
    fam.finish()
    res = fam.result(key)
    assert res["verdict"] == "inconclusive" and res["note"].startswith("not tested: not the same test clips")
    assert fam.size == 0
