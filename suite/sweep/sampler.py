"""Samplers sized to the trial budget.

Optuna's ``NSGAIISampler`` defaults to a population of 50: its first generation (50 trials) is
random sampling, so the presets' budgets (smoke 9, quick 12 trials) never got past it and paper
(60 trials) ran one generation of evolution. :func:`budget_sampler` builds the sampler a sweep uses,
with settings that follow from the budget:

* ``nsga2``: NSGA-II with ``population_size`` = :func:`nsga2_population` (``trials // 4``, between 4
  and 50), so a budget holds about four generations of evolution instead of part of one random one.
* ``tpe``: multi-objective TPE (``multivariate``, ``group``, constant-liar for parallel workers) whose
  random start-up is ``trials // 4`` trials (3 to 10) instead of Optuna's fixed 10
  (:func:`tpe_settings`), since the covering set enqueued before the sampler already spreads the
  first trials. (One start-up trial with independent densities was tried for small budgets and
  rejected: out of sample it was no better than random at 9 trials.)
* ``auto``: the budget's default, :func:`default_sampler_name`: multi-objective TPE at every budget
  measured. On the stand-in benchmark (``benchmarks/results_sampler.md``: 3 objectives, the covering
  set first, 100 seeds not used to choose the settings) TPE beat random sampling at 60 trials
  (normalised hypervolume +0.185 of at most 1.331, p < 1e-4) and at 9 (+0.019, p = 0.02); at 12 it
  was not distinguishable from random (+0.005, p = 0.56), because the covering set takes 11 of the
  12 trials and leaves the sampler one trial and the covering trials' hyper-parameters (with 24
  trials in the same space it wins clearly: +0.037, p = 1e-4). NSGA-II,
  with Optuna's population or a budget-sized one, did not beat random at any of the three budgets.
* ``nsga3`` and ``random`` as in :mod:`suite.sweep.space`.

The measured comparison with random sampling, at each preset's budget and over 20 seeds, is
``benchmarks/bench_sampler.py`` / ``benchmarks/results_sampler.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ddspbench.suite.errors import UserError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "budget_sampler",
    "default_sampler_name",
    "describe_sampler",
    "nsga2_population",
    "tpe_settings",
]

def nsga2_population(trials: int) -> int:
    """NSGA-II population for a budget: a quarter of it (about four generations), 4 to 50."""
    return max(4, min(50, int(trials) // 4))


def tpe_settings(trials: int) -> dict[str, int | bool]:
    """TPE keyword arguments for a budget (see the module docstring)."""
    return {"n_startup_trials": max(3, min(10, int(trials) // 4)), "multivariate": True, "group": True}


def default_sampler_name(trials: int) -> str:
    """The sampler ``auto`` picks for a budget of ``trials``: TPE (see the module docstring for why;
    its settings still follow from ``trials``, :func:`tpe_settings`)."""
    del trials  # every measured budget (9 to 60 trials) chose TPE
    return "tpe"


def describe_sampler(name: str, trials: int) -> str:
    """One line saying which sampler and settings a budget gets (for the sweep's log and records)."""
    name = default_sampler_name(trials) if name == "auto" else name
    if name == "nsga2":
        return f"NSGA-II, population {nsga2_population(trials)} for {trials} trials"
    if name == "tpe":
        kw = tpe_settings(trials)
        kind = "multivariate" if kw["multivariate"] else "independent"
        return f"multi-objective TPE ({kind}), {kw['n_startup_trials']} random start-up trial(s) of {trials}"
    return name


def budget_sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """A seeded sampler whose settings follow from the trial budget (see the module docstring).

    Raises:
        UserError: an unknown sampler name.
    """
    import warnings

    import optuna

    if name == "auto":
        name = default_sampler_name(trials)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(trials))
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            kw = tpe_settings(trials)
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=int(kw["n_startup_trials"]),
                                              multivariate=bool(kw["multivariate"]), group=bool(kw["group"]))
    from ddspbench.suite.sweep.space import make_sampler

    try:
        return make_sampler(name, seed)
    except UserError:
        raise UserError(f"unknown sampler {name!r}; known: auto, nsga2, nsga3, tpe, random") from None
