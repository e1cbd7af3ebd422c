"""Small-sample statistics of the reports: exact sign-flip p-values worked by hand, Holm, the
not-enough-data path, intervals, and the practical threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ddspbench.reports.stats import (
    apply_holm,
    holm,
    mean_interval,
    min_signflip_p,
    paired_comparison,
    signflip_test,
    wilcoxon_exact,
)


def test_exact_signflip_p_values_worked_by_hand():
    # d = (1, 2, 3): the 8 sign patterns give sums 6, 4, 2, 0, 0, -2, -4, -6; |sum| >= 6 in 2 -> 2/8
    p, test = signflip_test([1.0, 2.0, 3.0])
    assert p == 0.25 and test.startswith("exact sign-flip permutation test (2^3 = 8 sign patterns)")
    # d = (1, 2, -3, 4), sum 4: flipping a subset S of {1, 2, 3, 4} gives 10 - 2 sum(S); |.| >= 4 when
    # sum(S) <= 3 (5 subsets) or >= 7 (5 subsets): 10/16
    assert signflip_test([1.0, 2.0, -3.0, 4.0])[0] == 0.625
    # the smoke case: 6 clips all one way -> 2/64; one small clip the other way -> 4/64
    assert signflip_test([0.5, 1.0, 2.0, 3.0, 4.0, 5.0])[0] == pytest.approx(2 / 64)
    assert signflip_test([1.0, 2.0, 3.0, 4.0, 5.0, -0.5])[0] == pytest.approx(4 / 64)
    assert signflip_test(np.zeros(5))[0] == 1.0


def test_signflip_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(3)
    for n in (5, 7, 10):
        d = rng.normal(0.3, 1.0, n)
        ref = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                                     alternative="two-sided")
        assert signflip_test(d)[0] == pytest.approx(ref.pvalue, abs=1e-12)


def test_wilcoxon_is_exact_and_named():
    p, test = wilcoxon_exact([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert p == pytest.approx(2 / 64) and "exact" in test
    p, test = wilcoxon_exact([1.0, 1.0, -2.0, 3.0])
    assert "approximation" in test and 0 < p <= 1


def test_holm_on_a_known_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    adj = holm([0.01, 0.04, 0.03, 0.005])
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # NaN rows are outside the family and stay NaN; m counts the others only
    adj = holm([0.01, np.nan, 0.02])
    assert adj[0] == pytest.approx(0.02) and np.isnan(adj[1]) and adj[2] == pytest.approx(0.02)
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])


def test_too_few_clips_is_not_enough_data_to_tell():
    assert min_signflip_p(5) == pytest.approx(2 / 32) and min_signflip_p(6) == pytest.approx(2 / 64)
    # 4 clips, all far worse: the best possible p is 2/16 = 0.125 > 0.05
    base = np.array([5.0, 6.0, 7.0, 8.0])
    res = paired_comparison(base + 3.0, base)
    assert res["p_value"] == 0.125 and res["min_p"] == 0.125 and not res["enough_data"]
    table = apply_holm(pd.DataFrame([res]))
    assert table["verdict"].iloc[0] == "not enough data to tell"
    # 6 clips reach 2/64 = 0.031 alone, but not once Holm multiplies by two rows (0.0625)
    base6 = np.arange(5.0, 11.0)
    one = paired_comparison(base6 + 3.0, base6)
    assert apply_holm(pd.DataFrame([one]))["verdict"].iloc[0] == "method worse"
    two = apply_holm(pd.DataFrame([one, one]))
    assert (two["verdict"] == "not enough data to tell").all() and two["min_p_holm"].iloc[0] == pytest.approx(0.0625)


def test_a_tiny_consistent_difference_is_not_a_finding():
    # the quick-preset case: 27.31 vs 27.30 on 8 clips, every clip the same way
    rng = np.random.default_rng(0)
    base = 27.30 + rng.normal(0, 0.2, 8)
    res = paired_comparison(base + 0.01, base)
    assert res["p_value"] == pytest.approx(2 / 256) and res["rel_effect"] == pytest.approx(0.01 / base.mean())
    assert not res["relevant"] and res["threshold"] == pytest.approx(0.05 * base.mean())
    verdict = apply_holm(pd.DataFrame([res]))["verdict"].iloc[0]
    assert verdict == "significant but below the practical threshold"
    # a seed-to-seed spread larger than 5 % of the mean becomes the threshold
    res = paired_comparison(base + 2.0, base, seed_sd=3.0)
    assert res["threshold"] == 3.0 and not res["relevant"]


def test_sign_convention_is_method_minus_baseline():
    base = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    better = paired_comparison(base - 1.0, base)
    assert better["diff"] == pytest.approx(-1.0) and better["ci_high"] <= 0
    assert apply_holm(pd.DataFrame([better]))["verdict"].iloc[0] == "method better"
    maxed = apply_holm(pd.DataFrame([better]), lower_is_better=False)  # a metric where higher is better
    assert maxed["verdict"].iloc[0] == "method worse"


def test_intervals_bca_with_a_stated_fallback():
    rng = np.random.default_rng(5)
    d = rng.normal(1.0, 0.5, 12)
    lo, hi, method = mean_interval(d)
    assert method.startswith("BCa") and lo < d.mean() < hi
    lo, hi, method = mean_interval([2.0, 2.0, 2.0])
    assert (lo, hi) == (2.0, 2.0) and method.startswith("none")
    lo, hi, method = mean_interval([1.0, 3.0])  # n = 2: BCa's jackknife acceleration is degenerate
    assert lo <= 2.0 <= hi and method
