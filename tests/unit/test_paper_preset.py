"""The ``paper`` preset is the reference paper's grid (issue 13, item 4)."""

from __future__ import annotations

from pathlib import Path

from ddspbench.suite.presets import PAPER_INSTRUMENT_CONFIG, preset_tree
from ddspbench.suite.sweep.config import config_from_dict, deep_merge, load_yaml
from ddspbench.suite.sweep.space import covering_trials, resolve_space

ROOT = Path(__file__).resolve().parents[2]


def test_paper_is_the_grid_of_families_by_methods_at_the_paper_recipe() -> None:
    cfg = config_from_dict(preset_tree("paper"))
    assert (cfg.teacher.steps, cfg.teacher.batch_size, cfg.teacher.lr, cfg.teacher.size) == (120_000, 16, 1e-3, "full")
    assert (cfg.student.steps, cfg.student.batch_size, cfg.student.lr) == (120_000, 16, 1e-3)
    assert cfg.data.frames is None  # whole 4 s clips
    space = resolve_space(cfg)
    grid = {(t["family"], t["method"]) for t in covering_trials(space, cfg.trials)}
    assert grid == {(f, m) for f in ("hpn", "wavetable", "ddx7") for m in ("scratch", "kd_audio", "kd_control")}
    assert cfg.trials == len(grid)  # every trial enqueued: the sampler chooses nothing
    assert all(t[f"size.{t['family']}"] == "reduced" for t in covering_trials(space, cfg.trials))
    # the paper's loss weights, each a single choice
    weights = {c: {k: spec.choices for k, spec in space.params_of(c).items()} for c in ("kd_audio", "kd_control")}
    assert weights == {"kd_audio": {"kd_weight": [0.5], "target_weight": [0.5]},
                       "kd_control": {"kd_weight": [1.0], "target_weight": [0.5]}}


def test_per_instrument_config_selects_one_instrument() -> None:
    tree = deep_merge(preset_tree("paper"), load_yaml(ROOT / PAPER_INSTRUMENT_CONFIG))
    tree["data"]["path"] = "/data/URMP"  # what --data-path sets
    cfg = config_from_dict(tree)
    assert cfg.data.options == {"instruments": "violin"} and cfg.study == "paper-violin"
    assert cfg.teacher.steps == 120_000 and cfg.trials == 9
