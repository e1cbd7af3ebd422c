"""Compressors describe themselves and the sweep only reads those descriptions (issue 11, issue 12 support item).

- a compressor registered inside a test is sampled, run and reported by a sweep with no other change;
- the sampler never proposes an unsupported (family, method, size, value) combination; a chain
  supports the intersection of its steps;
- one candidate object: a repeated step keeps its own parameters, and a chain's fixed step
  defaults (no double fine-tuning) are not overwritten by sampled values.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import optuna
import pytest
import torch
import yaml
from torch import nn

from ddspbench import reports
from ddspbench.compressors import CompressContext, Compressor, clone_model
from ddspbench.compressors.chain import REGISTERED_CHAINS, compress_steps, parse_chain
from ddspbench.suite.candidate import ParamSpec
from ddspbench.suite.cli import main
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.records import read_records
from ddspbench.suite.registry import COMPRESSORS, SIZES
from ddspbench.suite.sweep.config import config_from_dict
from ddspbench.suite.sweep.space import (
    covering_trials,
    make_sampler,
    resolve_space,
    suggest_candidate,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


class _ToyJitter(Compressor):
    """Adds Gaussian noise of std ``sigma`` to every decoder weight (a toy 'compressor' for the tests)."""

    name: ClassVar[str] = "toy_jitter"
    defaults: ClassVar[Mapping[str, Any]] = {"sigma": 0.0}
    search_space: ClassVar[Mapping[str, ParamSpec]] = {"sigma": ParamSpec(low=1e-4, high=1e-3)}
    families: ClassVar[frozenset[str] | None] = frozenset({"hpn"})

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        model = clone_model(ctx.candidate if ctx.candidate is not None else teacher)
        gen = torch.Generator().manual_seed(ctx.seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * float(params["sigma"]))
        return model, {"jittered": sum(p.numel() for p in model.parameters())}


class _ToyNamedSizes(Compressor):
    """A student method that only trains registered size names (never ``key=value`` sizes)."""

    name: ClassVar[str] = "toy_named_sizes"
    defaults: ClassVar[Mapping[str, Any]] = {"size": None, "hidden": None, "mode": "a"}
    search_space: ClassVar[Mapping[str, ParamSpec]] = {"mode": ParamSpec(choices=["a", "b"])}
    trains_student: ClassVar[bool] = True
    first_only: ClassVar[bool] = True
    unsupported: ClassVar[Mapping[str, Mapping[str, tuple[Any, ...]]]] = {"wavetable": {"mode": ("b",)}}

    @classmethod
    def supports_size(cls, family: str, size: str) -> bool:
        return "=" not in size

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        raise NotImplementedError("only sampled in these tests")


@pytest.fixture
def registered(request: pytest.FixtureRequest) -> Iterator[None]:
    """Register the toy compressors for one test only."""
    toys = [_ToyJitter, _ToyNamedSizes]
    for cls in toys:
        COMPRESSORS.register(cls.name, obj=cls)
    try:
        yield
    finally:
        for cls in toys:
            COMPRESSORS.unregister(cls.name)


def _tiny_tree(tmp_path: Path, **space: Any) -> dict[str, Any]:
    tree = preset_tree("smoke")
    tree["data"] = {"dataset": "synthetic", "options": {"recordings": 2, "clips_per_recording": 1},
                    "frames": 40, "max_train": 2, "max_valid": 1, "max_test": 1}
    tree["teacher"] = {**tree["teacher"], "steps": 2}
    tree["student"] = {**tree["student"], "steps": 2}
    tree["evaluation"] = {**tree["evaluation"], "metrics": ["mss", "stream", "size"], "stream_buffers": [64],
                          "n_audio_examples": 1}
    tree["space"] = {**tree["space"], **space}
    return tree


def test_a_compressor_registered_in_a_test_is_sampled_run_and_reported(registered, tmp_path, capsys):
    tree = _tiny_tree(tmp_path, families=["hpn"], methods=["toy_jitter"], params={})
    tree.update(study="toy", trials=2, sampler="random")
    cfg_path = tmp_path / "toy.yaml"
    cfg_path.write_text(yaml.safe_dump(tree))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(cfg_path), "--out", str(out)]) == 0
    recs = [r for r in read_records([out / "records.jsonl"]) if r.method != "teacher"]
    assert len(recs) == 2 and all(r.status == "ok" for r in recs), [r.error for r in recs]
    sigmas = [r.method_params["toy_jitter"]["sigma"] for r in recs]
    assert all(1e-4 <= s <= 1e-3 for s in sigmas) and sigmas[0] != sigmas[1]  # sampled from its own range
    assert all(r.steps[0].details["jittered"] > 0 for r in recs)  # its run() did the work
    board = reports.leaderboard(reports.load_results([out]), metric="mss")
    assert (board["method"] == "toy_jitter").sum() == 2  # reported
    assert "toy_jitter" in (out / "report" / "report.md").read_text()
    assert "toy_jitter" in capsys.readouterr().out


def _runs_on(family: str, steps: tuple[tuple[str, dict[str, Any]], ...], size: str | None) -> bool:
    """The declared truth, asked of each step's class: a chain runs where every step does."""
    return all(COMPRESSORS.get(name).supports(family, params, size if i == 0 else None)
               for i, (name, params) in enumerate(steps))


def _some_value_runs(space: Any, family: str, method: str, size: str | None) -> bool:
    for i, (name, fixed) in enumerate(parse_chain(method)):
        cls = COMPRESSORS.get(name)
        first_size = size if i == 0 else None
        pick = dict(fixed)
        for key, spec in space.params_of(name).items():
            if key in fixed:
                continue
            if spec.choices is None:
                pick[key] = spec.low
                continue
            ok = [c for c in spec.choices if cls.supports(family, {**fixed, key: c}, first_size)]
            if not ok:
                return False
            pick[key] = ok[0]
        if not cls.supports(family, pick, first_size):
            return False
    return True


def test_the_sampler_never_proposes_an_unsupported_combination(registered):
    tree = preset_tree("smoke")
    methods = ["scratch", "kd_audio", "kd_feature", "prune", "quantize", "prune+quantize", "kd_feature+quantize",
               "toy_jitter", "toy_jitter+quantize", "toy_named_sizes", "prune+prune"]
    tree["space"] = {"families": ["hpn", "wavetable", "ddx7"], "methods": methods, "sizes": ["reduced", "hidden=32"],
                     "params": {"quantize": {"method": {"choices": ["int8", "bf16", "onnx_int8"]}}}}
    space = resolve_space(config_from_dict(tree))
    study = optuna.create_study(directions=["minimize"], sampler=make_sampler("random", 3))
    seen: set[tuple[str, str, str | None]] = set()
    for _ in range(600):
        trial = study.ask()
        cand = suggest_candidate(trial, space)
        study.tell(trial, [0.0])
        assert _runs_on(cand.family, cand.steps, cand.size), cand.describe()
        seen.add((cand.family, cand.method, cand.size))
        # the facts behind the declarations
        if cand.family == "ddx7":
            assert "kd_feature" not in cand.method and "toy_jitter" not in cand.method
            assert all(p.get("method") != "onnx_int8" for n, p in cand.steps if n == "quantize")
        if cand.method == "toy_named_sizes":
            assert cand.size == "reduced"
            if cand.family == "wavetable":
                assert cand.steps[0][1]["mode"] == "a"
    # and every combination some searched value of which runs is proposed (nothing runnable is dropped)
    expected = {(fam, m, size) for fam in space.families for m in methods
                for size in (["reduced", "hidden=32"] if COMPRESSORS.get(m.split("+")[0]).trains_student else [None])
                if _some_value_runs(space, fam, m, size)}
    assert expected == seen
    assert ("ddx7", "quantize", None) in seen  # still searched for DDX7, with bf16 only
    assert ("hpn", "toy_named_sizes", "hidden=32") not in seen
    assert not any(f == "ddx7" and "kd_feature" in m for f, m, _ in seen)


def test_a_family_that_supports_no_searched_method_is_a_user_error(registered):
    tree = preset_tree("smoke")
    tree["space"] = {**tree["space"], "families": ["ddx7"], "methods": ["toy_jitter"]}
    from ddspbench.suite.errors import UserError

    with pytest.raises(UserError, match="ddx7.*supports none"):
        resolve_space(config_from_dict(tree))


def _tiny_hpn() -> nn.Module:
    torch.manual_seed(0)
    return SIZES.get("hpn/reduced")()


def test_a_repeated_step_keeps_its_own_parameters():
    tree = preset_tree("smoke")
    tree["space"] = {**tree["space"], "families": ["hpn"], "methods": ["prune+prune"],
                     "params": {"prune": {"finetune_steps": {"choices": [0]}}}}
    space = resolve_space(config_from_dict(tree))
    study = optuna.create_study(directions=["minimize"], sampler=make_sampler("random", 0))
    trial = study.ask()
    cand = suggest_candidate(trial, space)
    assert {"prune.ratio", "prune#2.ratio"} <= set(trial.params)
    first, second = cand.steps[0][1]["ratio"], cand.steps[1][1]["ratio"]
    assert first != second
    assert cand.method_params["prune"]["ratio"] == first and cand.method_params["prune#2"]["ratio"] == second
    teacher = _tiny_hpn()
    result = compress_steps(teacher, CompressContext(steps=0), cand.method, cand.run_steps())
    ran = [step["params"]["ratio"] for step in result.description["steps"]]
    assert ran == [first, second]  # each step ran with its own sampled ratio
    assert result.description["params"]["prune.ratio"] == first
    assert result.description["params"]["prune#2.ratio"] == second
    hidden = teacher.config["hidden"]
    expected = int(int(hidden * (1 - first)) * (1 - second))
    assert abs(result.model.config["hidden"] - expected) <= 2  # pruned twice, by two different ratios


def test_a_chain_fixed_step_default_is_not_overwritten_by_a_sampled_value():
    assert REGISTERED_CHAINS["prune+kd_audio"][0] == ("prune", {"finetune_steps": 0})
    tree = preset_tree("smoke")
    tree["space"] = {**tree["space"], "families": ["hpn"], "methods": ["prune+kd_audio", "prune"],
                     "params": {"prune": {"finetune_steps": {"choices": [20, 200]}}}}
    space = resolve_space(config_from_dict(tree))
    study = optuna.create_study(directions=["minimize"], sampler=make_sampler("random", 1))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        cand = suggest_candidate(trial, space)
        study.tell(trial, [0.0])
        seen.add(cand.method)
        prune = dict(cand.steps[0][1])
        if cand.method == "prune+kd_audio":
            assert prune["finetune_steps"] == 0  # the chain fine-tunes once, in kd_audio
            assert "prune.finetune_steps" not in trial.params
            assert cand.run_steps()[0].params["finetune_steps"] == 0
            assert cand.method_params["prune"]["finetune_steps"] == 0
        else:
            assert prune["finetune_steps"] in (20, 200)
    assert seen == {"prune+kd_audio", "prune"}
    # and the chain runs with it: the prune step does not fine-tune
    steps = [("prune", {"finetune_steps": 0, "ratio": 0.5}), ("quantize", {"method": "bf16", "measure_frames": 0})]
    result = compress_steps(_tiny_hpn(), CompressContext(steps=5), "prune+quantize", copy.deepcopy(steps))
    assert result.steps[0].training is None and result.description["steps"][0].get("train") is None


def test_covering_trials_enqueue_only_supported_pairs_under_per_family_names(registered):
    tree = preset_tree("smoke")
    tree["space"] = {**tree["space"], "families": ["hpn", "ddx7"], "methods": ["toy_jitter", "scratch", "quantize"]}
    space = resolve_space(config_from_dict(tree))
    assert space.methods_for("ddx7") == ["scratch", "quantize"]
    assert space.method_param("hpn") == "method.hpn" and space.method_param("ddx7") == "method.ddx7"
    fixed = covering_trials(space, budget=100)
    def chosen_method(f: dict) -> str:
        return f[space.method_param(f["family"])]

    pairs = {(f["family"], chosen_method(f)) for f in fixed}
    assert pairs == {("hpn", "toy_jitter"), ("hpn", "scratch"), ("hpn", "quantize"), ("ddx7", "scratch"),
                     ("ddx7", "quantize")}
    study = optuna.create_study(directions=["minimize"], sampler=make_sampler("nsga2", 0))
    for params in fixed:
        study.enqueue_trial(params)
    got = []
    for _ in fixed:
        trial = study.ask()
        cand = suggest_candidate(trial, space)
        study.tell(trial, [1.0])
        got.append((cand.family, cand.method))
    assert got == [(f["family"], chosen_method(f)) for f in fixed]  # the enqueued choices are replayed
    small = covering_trials(space, budget=3)
    assert {chosen_method(f) for f in small} == {"toy_jitter", "scratch", "quantize"}
