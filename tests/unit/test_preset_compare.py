"""The compare preset is a fixed grid at matched budgets: nothing sampled, prune/quantize from the same teacher,
pruned students about the reduced size, fine-tuned as long as the students train."""

from __future__ import annotations

import pytest
import torch

from ddspbench.compressors import CompressContext, count_params, get_compressor
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.pipeline import teacher_config
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.registry import SIZES
from ddspbench.suite.sweep.config import config_from_dict
from ddspbench.suite.sweep.space import covering_trials, resolve_space


def _config():  # type: ignore[no-untyped-def]
    cfg = config_from_dict(preset_tree("compare"), where="compare")
    assert cfg.repeats == 8 and cfg.teacher.seeds == 2 and cfg.evaluation.speed_backend == "native"
    return cfg


def test_compare_is_a_fixed_grid_of_every_arm() -> None:
    cfg = _config()
    space = resolve_space(cfg)
    fixed = covering_trials(space, cfg.trials, grid=cfg.grid)
    assert len(fixed) == cfg.trials == 14
    arms = {(t["family"], t.get("method"), t.get("scratch.budget"), t.get("prune.kd_weight")) for t in fixed}
    assert len(arms) == 14
    for f in ("hpn", "ddx7"):  # compute-matched scratch, and prune with the KD loss, beside the plain arms
        assert {(m, b, k) for fam, m, b, k in arms if fam == f} == {
            ("scratch", "student", None), ("scratch", "teacher+student", None), ("kd_audio", None, None),
            ("kd_control", None, None), ("prune", None, 0.0), ("prune", None, 0.5), ("quantize", None, None)}
    for t in fixed:  # nothing is left to the sampler: every searched parameter is fixed by the grid
        assert set(t) >= {"family", "method"}
    for method, params in cfg.space.params.items():
        for name, spec in params.items():
            assert spec.choices is not None, f"{method}.{name} would be sampled"
    # prune fine-tunes as long as the family's students train (finetune_steps None = the student budget)
    assert cfg.space.params["prune"]["finetune_steps"].choices == [None]
    assert cfg.student.steps_for("hpn") == 1200 and cfg.student.steps_for("ddx7") == 300
    assert cfg.teacher.steps_for("hpn") == 1200 and cfg.teacher.steps_for("ddx7") == 300
    assert cfg.data.dataset == "soundfont" and cfg.data.options["instruments"] == "violin"
    assert cfg.data.options["recordings"] == 80  # 8 test recordings (10 %)
    assert "fad" in cfg.evaluation.metrics and cfg.evaluation.embedding == "aisfx"


@pytest.mark.parametrize("family", ["hpn", "ddx7"])
def test_pruned_teacher_is_about_the_reduced_students_size(family: str) -> None:
    load_catalog()
    cfg = _config()
    cls = type(SIZES.get(f"{family}/full")())
    torch.manual_seed(0)
    teacher = cls(**teacher_config(family, cfg))
    ratio = cfg.space.params["prune"]["ratio"].choices[0]
    pruned = get_compressor("prune").compress(teacher, CompressContext(), ratio=ratio, finetune_steps=0).model
    reduced = count_params(SIZES.get(f"{family}/reduced")())
    assert abs(count_params(pruned) / reduced - 1) < 0.15
    assert pruned.size_name == f"{teacher.size_name}:pruned"  # as the sweep's record names it
