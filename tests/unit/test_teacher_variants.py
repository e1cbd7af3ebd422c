"""Teacher variants (issue 21, "teacher budget/size axis"): other teachers of the same family and data, chosen per
trial by methods that use a teacher, named in records and reports, and never changing the default teacher's key."""

from __future__ import annotations

import json

import pytest
import yaml

from ddspbench.reports.load import hparams_text
from ddspbench.suite.cli import main
from ddspbench.suite.compute import uses_teacher_training
from ddspbench.suite.errors import UserError
from ddspbench.suite.pipeline import teacher_key, with_teacher
from ddspbench.suite.recipe import Recipe, Step
from ddspbench.suite.records import read_records
from ddspbench.suite.registry import COMPRESSORS
from ddspbench.suite.sweep.config import config_from_dict, config_hash
from ddspbench.suite.sweep.space import covering_trials, resolve_space
from tests.unit.test_compressor_description import _tiny_tree

STUDENT_STEPS, TEACHER_STEPS, SHORT_STEPS = 2, 3, 1


def _tree(tmp_path, variants=None, **space):
    tree = _tiny_tree(tmp_path, **({"families": ["hpn"], "methods": ["scratch", "kd_audio", "quantize"],
                                    "sizes": ["reduced"],
                                    "params": {"kd_audio": {"kd_weight": {"choices": [0.5]}},
                                               "quantize": {"method": {"choices": ["int8"]}}}} | space))
    tree["teacher"] = {**tree["teacher"], "steps": TEACHER_STEPS}
    if variants is not None:
        tree["teacher"]["variants"] = variants
    tree["student"] = {**tree["student"], "steps": STUDENT_STEPS}
    return tree


def test_variants_are_validated_and_leave_the_default_teacher_and_old_hashes_alone(tmp_path):
    plain = config_from_dict(_tree(tmp_path))
    cfg = config_from_dict(_tree(tmp_path, {"short": {"steps": SHORT_STEPS}, "small": {"size": "reduced"}}))
    # the default teacher is the same teacher with or without variants beside it: same key, same cache
    assert teacher_key("hpn", cfg) == teacher_key("hpn", plain)
    assert teacher_key("hpn", with_teacher(cfg, "short")) != teacher_key("hpn", cfg)
    assert teacher_key("hpn", with_teacher(cfg, "small")) not in (teacher_key("hpn", cfg),
                                                                  teacher_key("hpn", with_teacher(cfg, "short")))
    # a variant that repeats the default recipe is the default teacher (the key is the content, not the name)
    same = config_from_dict(_tree(tmp_path, {"again": {"steps": TEACHER_STEPS}}))
    assert teacher_key("hpn", with_teacher(same, "again")) == teacher_key("hpn", plain)
    # no variants: the config hash studies had before variants existed
    assert config_hash(plain) == config_hash(config_from_dict(_tree(tmp_path, {})))
    assert config_hash(plain) != config_hash(cfg)
    # what a variant changes, and what it resets: a new size drops the default's widths, new steps its family_steps
    base = config_from_dict(_tree(tmp_path, {"small": {"size": "reduced"}, "short": {"steps": 5}})).teacher
    base.widths = {"hpn": {"hidden": 8}}
    base.family_steps = {"hpn": 9}
    small, short = base.variant("small"), base.variant("short")
    assert (small.size, small.widths, small.steps_for("hpn")) == ("reduced", {}, 9)
    assert (short.size, short.widths, short.steps_for("hpn")) == ("full", {"hpn": {"hidden": 8}}, 5)
    assert base.variant("default").variants == {} and base.variant(None).steps_for("hpn") == 9
    with pytest.raises(UserError, match="unknown teacher variant 'nope'"):
        base.variant("nope")


@pytest.mark.parametrize("variants, message", [
    ({"default": {"steps": 5}}, "not a usable variant name"),
    ({"a b": {"steps": 5}}, "not a usable variant name"),
    ({"short": {"stepz": 5}}, "unknown key 'stepz'"),
    ({"short": {"steps": -1}}, "teacher.variants.short.steps"),
    ({"tiny": {"size": "nosuchsize"}}, "teacher.variants.tiny.size: hpn has no size 'nosuchsize'"),
    ({"wide": {"widths": {"hpn": {"hidden": 0}}}}, "teacher.variants.wide.widths.hpn.hidden: must be > 0"),
    ({"short": {"family_steps": {"nofamily": 3}}}, "teacher.variants.short.family_steps: unknown family"),
])
def test_a_bad_variant_is_refused_in_one_line_naming_it(tmp_path, variants, message):
    with pytest.raises(UserError, match=message) as err:
        config_from_dict(_tree(tmp_path, variants))
    assert "\n" not in str(err.value)


def test_only_methods_that_use_the_teacher_choose_one_and_the_grid_runs_each_teacher():
    def classes(method):
        from ddspbench.compressors.chain import parse_chain
        return [(COMPRESSORS.get(n), p) for n, p in parse_chain(method)]

    assert not uses_teacher_training(classes("scratch"))
    assert not uses_teacher_training(classes("scratch+quantize"))  # quantizes the scratch student, not the teacher
    assert uses_teacher_training(classes("scratch+kd_audio"))  # learns from the teacher's outputs
    assert all(uses_teacher_training(classes(m)) for m in ("kd_audio", "kd_control", "prune", "quantize",
                                                           "prune+quantize"))
    tree = _tree(None, {"short": {"steps": SHORT_STEPS}})
    tree.update(grid=True, trials=20)
    space = resolve_space(config_from_dict(tree))
    assert space.teachers == ["default", "short"]
    fixed = covering_trials(space, 20, grid=True)
    by_method: dict = {}
    for d in fixed:
        by_method.setdefault(d["method"], []).append(d.get("teacher"))
    assert by_method == {"scratch": [None], "kd_audio": ["default", "short"], "quantize": ["default", "short"]}
    # scratch compute-matched to a teacher (budget teacher+student) is matched to each teacher in turn; at the
    # student's budget it uses none, so it is not repeated per teacher
    matched = _tree(None, {"short": {"steps": SHORT_STEPS}}, methods=["scratch"],
                    params={"scratch": {"budget": {"choices": ["student", "teacher+student"]}}})
    mspace = resolve_space(config_from_dict({**matched, "grid": True, "trials": 20}))
    assert sorted((d["scratch.budget"], d.get("teacher") or "-") for d in covering_trials(mspace, 20, grid=True)) == [
        ("student", "-"), ("teacher+student", "default"), ("teacher+student", "short")]
    assert mspace.teachers_for("scratch", [Step("scratch", {"budget": "teacher+student"})]) == ["default", "short"]
    assert mspace.teachers_for("scratch", [Step("scratch", {"budget": "student"})]) == []
    assert mspace.teachers_for("scratch", [Step("scratch", {})]) == []  # the default budget is the student's
    assert mspace.teachers_for("scratch") == []
    # without variants there is nothing to choose: no teacher parameter, trials as before
    plain = resolve_space(config_from_dict({**_tree(None), "grid": True, "trials": 20}))
    assert plain.teachers == [] and all("teacher" not in d for d in covering_trials(plain, 20, grid=True))


def test_a_recipe_names_its_teacher_only_when_it_is_not_the_default():
    r = Recipe("hpn", "reduced", (Step("kd_audio", {"kd_weight": 0.5}),))
    assert "teacher" not in r.to_dict() and Recipe.from_dict(r.to_dict()) == r
    v = Recipe("hpn", "reduced", (Step("kd_audio", {"kd_weight": 0.5}),), teacher="short")
    assert v.to_dict()["teacher"] == "short" and Recipe.from_dict(v.to_dict()) == v
    assert v.describe().endswith("teacher=short")
    # the leaderboard's settings tell the two KD rows apart; a default-teacher row reads as before
    assert hparams_text(r) == "kd_weight=0.5"
    assert hparams_text(v) == "teacher=short kd_weight=0.5"
    assert hparams_text(Recipe.reference("hpn", teacher="short", steps=3)).startswith("teacher=short")


@pytest.mark.slow
def test_a_sweep_over_two_teachers_names_each_and_keeps_their_arms_apart(tmp_path):
    tree = _tree(tmp_path, {"short": {"steps": SHORT_STEPS}},
                 params={"kd_audio": {"kd_weight": {"choices": [0.5]}}, "quantize": {"method": {"choices": ["int8"]}},
                         "scratch": {"budget": {"choices": ["student", "teacher+student"]}}})
    tree["data"] = {**tree["data"], "options": {"recordings": 4, "clips_per_recording": 1}, "max_test": 2}
    tree.update(study="teachers", trials=7, sampler="random", seed=3, repeats=2, grid=True)
    tree["teacher"]["seeds"] = 2
    cfg_path = tmp_path / "teachers.yaml"
    cfg_path.write_text(yaml.safe_dump(tree))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(cfg_path), "--out", str(out), "--no-progress"]) == 0
    recs = list(read_records([out / "records.jsonl"]))
    assert not [r.error for r in recs if r.status != "ok"]
    teachers = [r for r in recs if r.method == "teacher"]
    # two seeds of each of two teachers, each trained for its own steps, the variant named in its recipe
    assert sorted((r.recipe.teacher or "default", r.seed, r.compute["own"]["steps"]) for r in teachers) == [
        ("default", 3, TEACHER_STEPS), ("default", 4, TEACHER_STEPS), ("short", 3, SHORT_STEPS),
        ("short", 4, SHORT_STEPS)]
    t_flops = {(r.recipe.teacher, r.seed): r.compute["own"]["flops"] for r in teachers}
    cands = [r for r in recs if r.method != "teacher"]
    arms = sorted({(r.method, r.recipe.teacher or "default") for r in cands})
    assert arms == [("kd_audio", "default"), ("kd_audio", "short"), ("quantize", "default"), ("quantize", "short"),
                    ("scratch", "default"), ("scratch", "short")]
    for r in cands:
        if r.method == "scratch":
            # no teacher used; the compute-matched budget adds the steps of the teacher it is matched to
            assert r.teacher is None and r.compute["inherited"] is None
            matched = r.recipe.steps[0].params["budget"] == "teacher+student"
            extra = (SHORT_STEPS if r.recipe.teacher == "short" else TEACHER_STEPS) if matched else 0
            assert r.recipe.teacher is None or matched
            assert r.compute["own"]["steps"] == STUDENT_STEPS + extra
            continue
        steps = SHORT_STEPS if r.recipe.teacher == "short" else TEACHER_STEPS
        assert r.teacher.get("variant") == r.recipe.teacher and r.teacher["steps"] == steps
        assert r.teacher["seed"] == r.seed  # run k uses teacher k of its variant
        assert r.compute["total"]["steps"] == r.compute["own"]["steps"] + steps
        assert r.compute["total"]["flops"] == r.compute["own"]["flops"] + t_flops[(r.recipe.teacher, r.seed)]
    # int8 of a 1-step teacher and of a 3-step one: two different models
    q = {r.recipe.teacher: r.metrics["mss"] for r in cands if r.method == "quantize" and r.seed == 3}
    assert q[None] != q["short"]

    report = json.loads((out / "report" / "report.json").read_text())
    rows = {r["arm"]: r for r in report["verdicts"]}
    assert {"kd_audio", "kd_audio (teacher short)", "quantize", "quantize (teacher short)", "scratch",
            "scratch (teacher+student steps)", "scratch (teacher+student steps; teacher short)"} == set(rows)
    assert rows["scratch (teacher+student steps; teacher short)"]["total_steps"] == STUDENT_STEPS + SHORT_STEPS
    assert rows["kd_audio (teacher short)"]["teacher"] == "teacher short: full:hidden=64, 1 step; 2 teachers (seeds 3, 4)"
    assert rows["kd_audio"]["teacher"] == "full:hidden=64, 3 steps; 2 teachers (seeds 3, 4)"
    assert rows["kd_audio (teacher short)"]["total_steps"] == STUDENT_STEPS + SHORT_STEPS
    # KD's arm is one of the two, chosen on validation; the other is listed as a KD arm not chosen
    assert sum(bool(r["kd_arm"]) for r in rows.values()) == 1
    md = (out / "report" / "report.md").read_text()
    section = md.split("### The teacher each arm started from")[1].split("\n## ")[0]
    lines = {ln.split(" | ")[1]: ln for ln in section.splitlines() if ln.startswith("| hpn |")}
    assert set(lines) == {"teacher short: full:hidden=64, 1 step; 2 teachers (seeds 3, 4)",
                          "full:hidden=64, 3 steps; 2 teachers (seeds 3, 4)"}
    assert all("scratch" not in ln for ln in lines.values())  # scratch uses no teacher
    assert "quantize (teacher short)" in lines["teacher short: full:hidden=64, 1 step; 2 teachers (seeds 3, 4)"]
    html = (out / "report" / "index.html").read_text()
    assert "The teacher each arm started from" in html and "teacher short: full:hidden=64, 1 step" in html
