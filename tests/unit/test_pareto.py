from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ddspbench.reports.pareto import (
    hypervolume,
    is_pareto_front,
    non_dominated_ranks,
    pareto_mask,
    parse_objectives,
    reference_point,
    to_minimise,
)
from ddspbench.suite.errors import UserError
from ddspbench.suite.records import Direction


def test_front_on_hand_made_points():
    pts = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [5, 5]], dtype=float)
    assert is_pareto_front(pts).tolist() == [True, True, False, True, False]


def test_ties_in_one_objective_are_dominated_when_worse_in_another():
    assert is_pareto_front(np.array([[1.0, 2.0], [1.0, 3.0]])).tolist() == [True, False]
    assert is_pareto_front(np.array([[1.0, 2.0], [2.0, 2.0]])).tolist() == [True, False]


def test_duplicates_are_all_on_the_front_or_all_off():
    pts = np.array([[1, 1], [1, 1], [2, 0.5], [3, 3], [3, 3]], dtype=float)
    assert is_pareto_front(pts).tolist() == [True, True, True, False, False]


def test_non_finite_rows_never_on_front_and_never_dominate():
    pts = np.array([[np.nan, 0.0], [1.0, 1.0], [0.0, np.inf], [2.0, 2.0]])
    assert is_pareto_front(pts).tolist() == [False, True, False, False]
    assert not is_pareto_front(np.full((3, 2), np.nan)).any()


def test_three_objectives_and_maximisation():
    pts = np.array([[1, 1, 9], [2, 2, 2], [3, 3, 3], [1, 1, 9]], dtype=float)
    assert is_pareto_front(pts).tolist() == [True, True, False, True]
    # maximising the first column turns the order around
    mx = to_minimise(np.array([[1.0, 1.0], [2.0, 1.0]]), [Direction.MAXIMIZE, Direction.MINIMIZE])
    assert mx.tolist() == [[-1.0, 1.0], [-2.0, 1.0]]
    assert is_pareto_front(mx).tolist() == [False, True]


def test_non_dominated_ranks_peel_fronts():
    pts = np.array([[1, 4], [2, 2], [4, 1], [3, 3], [5, 5], [np.nan, 1]], dtype=float)
    assert non_dominated_ranks(pts).tolist() == [0, 0, 0, 1, 2, -1]


def test_hypervolume_2d_by_hand():
    pts = np.array([[1, 3], [2, 2], [3, 1]], dtype=float)
    # staircase: (4-1)*(4-3) + (4-2)*(3-2) + (4-3)*(2-1) = 3 + 2 + 1
    assert hypervolume(pts, [4, 4]) == pytest.approx(6.0)
    more = np.vstack([pts, [[3, 3], [5, 0], [2, 2]]])  # dominated, outside ref, duplicate: add nothing
    assert hypervolume(more, [4, 4]) == pytest.approx(6.0)
    assert hypervolume(np.array([[4.0, 1.0]]), [4, 4]) == 0.0  # on the reference boundary


def test_hypervolume_3d_by_hand():
    assert hypervolume(np.array([[1.0, 1.0, 1.0]]), [2, 3, 4]) == pytest.approx(6.0)
    # boxes 2*2*1 and 1*1*2 overlap in [1,2]^3 (volume 1): 4 + 2 - 1
    assert hypervolume(np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), [2, 2, 2]) == pytest.approx(5.0)


def test_hypervolume_3d_matches_cell_counting():
    rng = np.random.default_rng(3)
    pts = rng.integers(0, 6, size=(12, 3)).astype(float)
    cells = np.array(list(itertools.product(range(6), repeat=3)), dtype=float)
    dominated = (pts[None, :, :] <= cells[:, None, :]).all(axis=2).any(axis=1)
    assert hypervolume(pts, [6, 6, 6]) == pytest.approx(float(dominated.sum()))


def test_reference_point_is_just_beyond_the_worst():
    ref = reference_point(np.array([[1.0, 10.0], [3.0, 10.0]]))
    assert ref.tolist() == pytest.approx([3.2, 11.0])


def test_parse_objectives_and_mask_on_frame():
    assert parse_objectives("mss,rtf_stream_64") == [("mss", Direction.MINIMIZE), ("rtf_stream_64", Direction.MINIMIZE)]
    with pytest.raises(UserError):
        parse_objectives("mss")
    with pytest.raises(UserError, match="unknown metric"):
        parse_objectives("mss,speed")
    df = pd.DataFrame({
        "status": ["ok", "ok", "failed", "ok"],
        "mss": [5.0, 4.0, 1.0, 4.0],
        "rtf_stream_64": [0.1, 0.3, 0.01, 0.3],
    })
    # the failed row would dominate everything; it is never on the front. Rows 1 and 3 are duplicates.
    assert pareto_mask(df, "mss,rtf_stream_64").tolist() == [True, True, False, True]
    with pytest.raises(UserError, match="fad"):
        pareto_mask(df, "mss,fad")


def test_blocked_front_matches_brute_force_on_many_points():
    rng = np.random.default_rng(7)
    pts = np.round(rng.random((700, 3)), 1)  # many ties and duplicates
    brute = np.array([not any((q <= p).all() and (q < p).any() for q in pts) for p in pts])
    assert (is_pareto_front(pts) == brute).all()
