"""The sweep's sampler settings follow from the trial budget (suite.sweep.sampler)."""

from __future__ import annotations

import optuna
import pytest

from ddspbench.suite.errors import UserError
from ddspbench.suite.sweep.sampler import (
    budget_sampler,
    default_sampler_name,
    describe_sampler,
    nsga2_population,
    tpe_settings,
)


def test_settings_follow_the_budget():
    assert [nsga2_population(n) for n in (9, 12, 60, 400)] == [4, 4, 15, 50]
    assert [tpe_settings(n)["n_startup_trials"] for n in (9, 12, 20, 60)] == [3, 3, 5, 10]
    assert tpe_settings(12)["multivariate"] and tpe_settings(60)["group"]
    assert default_sampler_name(9) == default_sampler_name(60) == "tpe"
    assert describe_sampler("auto", 60) == "multi-objective TPE (multivariate), 10 random start-up trial(s) of 60"
    assert describe_sampler("nsga2", 12) == "NSGA-II, population 4 for 12 trials"


def test_nsga2_leaves_its_random_first_generation_within_a_small_budget():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=budget_sampler("nsga2", 0, 12))
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1 - t.suggest_float("y", 0, 1)), n_trials=12)
    assert study.trials[-1].system_attrs["NSGAIISampler:generation"] == 2  # Optuna's default (50) stays at 0


def test_samplers_by_name():
    tpe = budget_sampler("auto", 3, 9)
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._n_startup_trials == 3
    assert isinstance(budget_sampler("random", 0, 9), optuna.samplers.RandomSampler)
    with pytest.raises(UserError, match="unknown sampler 'bogus'"):
        budget_sampler("bogus", 0, 9)
