"""Clip-level tools of the reports (exact sign-flip p-values worked by hand, Wilcoxon, Holm, bootstrap intervals).
The run-level verdict statistics are tested in ``test_reports_verdicts.py``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ddspbench.reports.stats import (
    holm,
    mean_interval,
    min_signflip_p,
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


def test_intervals_bca_with_a_stated_fallback():
    rng = np.random.default_rng(5)
    d = rng.normal(1.0, 0.5, 12)
    lo, hi, method = mean_interval(d)
    assert method.startswith("BCa") and lo < d.mean() < hi
    lo, hi, method = mean_interval([2.0, 2.0, 2.0])
    assert (lo, hi) == (2.0, 2.0) and method.startswith("none")
    lo, hi, method = mean_interval([1.0, 3.0])  # n = 2: BCa's jackknife acceleration is degenerate
    assert lo <= 2.0 <= hi and method


def test_min_signflip_p():
    assert min_signflip_p(5) == pytest.approx(2 / 32) and min_signflip_p(6) == pytest.approx(2 / 64)
    assert min_signflip_p(0) == 1.0
