from __future__ import annotations

import optuna
import pytest

from ddspbench.suite.errors import UserError
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.sweep.config import ParamSpec, config_from_dict
from ddspbench.suite.sweep.runner import count_trials
from ddspbench.suite.sweep.space import (
    SAMPLERS,
    ResolvedSpace,
    covering_trials,
    make_sampler,
    parse_size,
    resolve_space,
    suggest_candidate,
)
from ddspbench.suite.sweep.space import (
    CandidateSpec as Recipe,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space() -> ResolvedSpace:
    return ResolvedSpace(
        families=["hpn", "ddx7"],
        methods=["scratch", "kd_audio", "prune", "quantize", "prune+quantize"],
        sizes={"hpn": ["reduced", "hidden=32"], "ddx7": ["reduced"]},
        params={
            "scratch": {},
            "kd_audio": {"kd_weight": ParamSpec(low=0.25, high=1.0)},
            "prune": {"ratio": ParamSpec(low=0.25, high=0.75), "finetune_steps": ParamSpec(choices=[0, 20])},
            "quantize": {"method": ParamSpec(choices=["int8", "bf16"])},
        },
    )


def test_parameters_are_conditional_on_the_method():
    space = _space()
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler("random", 0))
    seen = {}
    for _ in range(60):
        trial = study.ask()
        spec = suggest_candidate(trial, space)
        study.tell(trial, [0.0, 0.0])
        seen.setdefault(spec.method, set()).add(frozenset(trial.params))
        keys = set(trial.params)
        assert keys >= {"family", "method"}
        if spec.method in ("scratch", "kd_audio"):
            assert f"size.{spec.family}" in keys and spec.size in space.sizes[spec.family]
        else:
            assert not any(k.startswith("size.") for k in keys) and spec.size is None
        assert ("kd_audio.kd_weight" in keys) == (spec.method == "kd_audio")
        assert ("prune.ratio" in keys) == ("prune" in spec.method)
        assert ("quantize.method" in keys) == ("quantize" in spec.method)  # int8 and bf16 on every family
        if "quantize" in spec.method:
            assert spec.method_params["quantize"]["method"] in ("int8", "bf16")
        if spec.method == "prune+quantize":
            assert [s[0] for s in spec.steps] == ["prune", "quantize"]
            assert set(spec.method_params) == {"prune", "quantize"}
            assert 0.25 <= spec.method_params["prune"]["ratio"] <= 0.75
    assert set(seen) == set(space.methods)


def test_covering_set_is_enqueued_first_and_covers_methods_and_families():
    space = _space()
    fixed = covering_trials(space, budget=6)
    assert {f["method"] for f in fixed} == set(space.methods)
    assert {f["family"] for f in fixed} == set(space.families)
    more = covering_trials(space, budget=9)
    assert more[: len(fixed)] == fixed and len(more) == 8  # one trial left to the sampler
    assert {f["family"] for f in more if f["method"] == "scratch"} == {"hpn", "ddx7"}
    full = covering_trials(space, budget=100)
    assert {(f["method"], f["family"]) for f in full} == {(m, f) for m in space.methods for f in space.families}
    study = optuna.create_study(directions=["minimize"], sampler=make_sampler("nsga2", 1))
    for params in fixed:
        study.enqueue_trial(params)
    got = []
    for _ in fixed:
        trial = study.ask()
        spec = suggest_candidate(trial, space)
        study.tell(trial, [1.0])
        got.append((spec.method, spec.family))
    assert got == [(f["method"], f["family"]) for f in fixed]


def test_samplers_by_name_are_seeded_and_reproducible():
    space = _space()
    for name in SAMPLERS:
        runs = []
        for _ in range(2):
            study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler(name, 7))
            labels = []
            for _ in range(5):
                t = study.ask()
                labels.append(suggest_candidate(t, space).describe())
                study.tell(t, [1.0, 2.0])
            runs.append(labels)
        assert runs[0] == runs[1], name
    with pytest.raises(UserError, match="unknown sampler 'bogus'"):
        make_sampler("bogus", 0)


def test_parse_size():
    assert parse_size("reduced") is None
    assert parse_size("hidden=32") == {"hidden": 32}
    assert parse_size("n_blocks=2, hidden=32") == {"n_blocks": 2, "hidden": 32}
    with pytest.raises(UserError):
        parse_size("hidden=")


def test_candidate_spec_labels_and_params():
    spec = Recipe("hpn", "reduced", (("kd_audio", {"kd_weight": 0.5}),))
    assert spec.method_params == {"size": "reduced", "kd_audio": {"kd_weight": 0.5}}
    assert spec.describe() == "hpn reduced kd_audio kd_weight=0.5"


def test_resume_counting_ignores_interrupted_and_counts_running():
    study = optuna.create_study(directions=["minimize"])
    for value in (1.0, 2.0):
        t = study.ask()
        study.tell(t, [value])
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    interrupted = study.ask()
    interrupted.set_user_attr("interrupted", True)
    study.tell(interrupted, state=optuna.trial.TrialState.FAIL)
    study.ask()  # running
    assert count_trials(study) == (3, 1)


def test_resolve_space_checks_names_against_registries():
    cfg = config_from_dict(preset_tree("smoke"))
    cfg.space.families = ["hpn"]
    space = resolve_space(cfg)
    assert space.families == ["hpn"]
    assert space.sizes["hpn"] == ["reduced"]
    assert "quantize" in space.params and "method" in space.params["quantize"]
    cfg.space.methods = ["kd_*", "prune"]  # wildcards expand through the registry
    wild = resolve_space(cfg)
    assert {"kd_audio", "kd_control", "prune"} <= set(wild.methods)
    assert all(wild.needs_student(m) for m in wild.methods if m.startswith("kd_"))
    assert not wild.needs_student("prune")
    cfg.space.families = ["nosuchfamily"]
    with pytest.raises(UserError, match="nosuchfamily"):
        resolve_space(cfg)
    cfg.space.families = ["hpn"]
    cfg.space.methods = ["scratch", "prune+nosuch"]
    with pytest.raises(UserError, match="nosuch"):
        resolve_space(cfg)
    cfg.space.methods = ["scratch"]
    cfg.space.sizes = ["gigantic"]
    with pytest.raises(UserError, match="gigantic"):
        resolve_space(cfg)
