"""Chains: spec parsing, parameter routing, step order, and that a chain is only registered compressors."""

from __future__ import annotations

import pytest

from ddspbench.compressors import CompressContext, get_compressor, parse_chain
from ddspbench.compressors.chain import REGISTERED_CHAINS, Chain, run_chain, split_params
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import COMPRESSORS
from tests.contract.test_compressors import tiny_context, tiny_teacher

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def _catalog() -> None:
    load_catalog()


def test_registered_chains_are_valid_and_listed() -> None:
    for spec in REGISTERED_CHAINS:
        steps = parse_chain(spec)
        assert "+".join(n for n, _ in steps) == spec
        assert spec in COMPRESSORS and issubclass(COMPRESSORS.get(spec), Chain)
        assert all(n in COMPRESSORS for n, _ in steps)


def test_any_spec_builds_a_chain() -> None:
    comp = get_compressor("kd_control+quantize")
    assert comp.name == "kd_control+quantize"
    adhoc = get_compressor("scratch+prune+quantize")
    assert isinstance(adhoc, Chain) and [n for n, _ in adhoc.steps] == ["scratch", "prune", "quantize"]


def test_parameter_routing() -> None:
    steps = parse_chain("prune+kd_audio+quantize")
    routed = split_params(steps, {"prune.ratio": 0.3, "kd_weight": 0.7, "quantize": {"method": "bf16"}})
    assert routed[0] == {"finetune_steps": 0, "ratio": 0.3, "kd_weight": 0.7}  # both prune and kd_audio take kd_weight
    assert routed[1] == {"kd_weight": 0.7}
    assert routed[2] == {"method": "bf16"}
    with pytest.raises(UserError, match="not in the chain"):
        split_params(steps, {"scratch.size": "reduced"})
    with pytest.raises(UserError, match="accepts parameter"):
        split_params(steps, {"temperature": 2})


def test_chain_steps_see_the_previous_candidate_and_the_original_teacher() -> None:
    teacher = tiny_teacher()
    model, steps = run_chain(teacher, tiny_context(steps=1), [("prune", {"ratio": 0.5, "finetune_steps": 0}),
                                                              ("kd_audio", {"steps": 1})])
    assert [s.method for s in steps] == ["prune", "kd_audio"]  # typed step reports (suite.recipe.StepReport)
    assert steps[1].details["student"] == "previous chain step" and steps[1].tags == ("distillation",)
    assert steps[1].before["params"] == steps[0].after["params"]  # kd started from the pruned model
    assert model.config["widths"]["gru"] == 16


def test_chain_refuses_a_size_after_the_first_step() -> None:
    with pytest.raises(UserError, match="previous model"):
        get_compressor("prune+kd_audio").compress(tiny_teacher(), tiny_context(steps=1), **{"kd_audio.size": "reduced"})


def test_scratch_must_come_first() -> None:
    with pytest.raises(UserError, match="first step"):
        run_chain(tiny_teacher(), CompressContext(), [("prune", {"finetune_steps": 0}), ("scratch", {})])
    with pytest.raises(UserError, match="first step"):
        parse_chain("prune+scratch")
