"""Compute accounting, compute-matched arms and teacher seeds (issue 21), through a real tiny sweep.

- every record says what it spent (``own``) and what it inherited from its teacher (``inherited``), and ``total``
  is their sum; scratch inherits nothing, int8 spends no steps of its own, KD's FLOPs per step include its
  teacher's forward pass;
- scratch at ``budget: teacher+student`` trains the student's steps plus the teacher's, and prune with
  ``kd_weight > 0`` is fine-tuned on the KD loss: each is its own arm in the verdict table;
- with ``teacher.seeds: 2`` run ``k`` of a configuration starts from teacher ``k mod 2`` (trained with seed
  ``seed + k``), int8 runs once per teacher, and the records and the report name the teacher.
"""

from __future__ import annotations

import json

import pytest
import yaml

from ddspbench import reports
from ddspbench.suite.cli import main
from ddspbench.suite.compute import candidate_compute, step_flops
from ddspbench.suite.records import read_records
from ddspbench.suite.sweep.config import config_from_dict, config_hash
from ddspbench.suite.sweep.space import covering_trials, resolve_space
from tests.unit.test_compressor_description import _tiny_tree

STUDENT_STEPS, TEACHER_STEPS = 2, 3


def _tree(tmp_path):
    tree = _tiny_tree(tmp_path, families=["hpn"], methods=["scratch", "kd_audio", "prune", "quantize"],
                      sizes=["reduced"],
                      params={"scratch": {"budget": {"choices": ["student", "teacher+student"]}},
                              "kd_audio": {"kd_weight": {"choices": [0.5]}},
                              "prune": {"ratio": {"choices": [0.5]}, "finetune_steps": {"choices": [None]},
                                        "kd_weight": {"choices": [0.0, 0.5]}},
                              "quantize": {"method": {"choices": ["int8"]}}})
    tree["teacher"] = {**tree["teacher"], "steps": TEACHER_STEPS, "seeds": 2}
    tree["student"] = {**tree["student"], "steps": STUDENT_STEPS}
    tree["data"] = {**tree["data"], "options": {"recordings": 4, "clips_per_recording": 1}, "max_test": 2}
    tree["evaluation"] = {**tree["evaluation"], "metrics": ["mss", "fad", "stream", "size"]}
    tree.update(study="fair", trials=6, sampler="random", seed=3, repeats=2, grid=True)
    return tree


def test_grid_covering_enqueues_every_arm_once():
    tree = _tiny_tree(None, families=["hpn"], methods=["scratch", "prune"], sizes=["reduced"],
                      params={"scratch": {"budget": {"choices": ["student", "teacher+student"]}},
                              "prune": {"kd_weight": {"choices": [0.0, 0.5]}, "ratio": {"low": 0.3, "high": 0.6}}})
    cfg = config_from_dict({**tree, "grid": True, "trials": 10})
    fixed = covering_trials(resolve_space(cfg), cfg.trials, grid=True)
    # prune's finetune_steps keeps its default two choices (0, 200): 2 x 2 prune trials, 2 scratch trials
    assert len(fixed) == 6
    assert sorted(d.get("scratch.budget", "") for d in fixed if d["method"] == "scratch") == [
        "student", "teacher+student"]
    assert {(d["prune.kd_weight"], d["prune.finetune_steps"]) for d in fixed if d["method"] == "prune"} == {
        (0.0, 0), (0.0, 200), (0.5, 0), (0.5, 200)}
    assert all("prune.ratio" not in d for d in fixed)  # a numeric range stays with the sampler
    assert len(covering_trials(resolve_space(cfg), 3, grid=True)) == 3  # never more than the budget
    plain = covering_trials(resolve_space(cfg), cfg.trials)
    assert len(plain) == 2  # without grid: one trial per (method, family) pair, as before
    # grid and one teacher are left out of the config hash: studies made before them keep theirs
    base = config_from_dict(tree)
    assert config_hash(base) == config_hash(config_from_dict({**tree, "grid": False,
                                                               "teacher": {**tree["teacher"], "seeds": 1}}))
    assert config_hash(base) != config_hash(config_from_dict({**tree, "grid": True}))


def test_compute_sums_own_and_inherited_and_marks_unknowns():
    report = {"train": {"compute": {"steps": 10, "examples": 80, "seconds": 2.0, "flops": 1000}},
              "finetune": [{"compute": {"steps": 5, "examples": 40, "seconds": 1.0, "flops": 500}}]}
    c = candidate_compute(report, 4.0, {"compute": {"steps": 7, "examples": 56, "seconds": 9.0, "flops": 700},
                                        "label": "the teacher"})
    assert c["own"] == {"steps": 15, "examples": 120, "seconds": 4.0, "flops": 1500}
    assert c["total"] == {"steps": 22, "examples": 176, "seconds": 13.0, "flops": 2200}
    assert c["inherited"]["teacher"] == "the teacher"
    scratch = candidate_compute(report, 4.0, None)
    assert scratch["inherited"] is None and scratch["total"] == scratch["own"]
    old_teacher = candidate_compute({}, 0.5, {"steps": 7, "train_seconds": 9.0, "key": "abc"})
    assert old_teacher["total"]["steps"] == 7 and old_teacher["total"]["flops"] is None  # unknown, not zero


def test_kd_step_flops_count_the_teachers_forward(tmp_path):
    import torch

    from ddspbench.compressors._distill import audio_kd_loss
    from ddspbench.suite.registry import SIZES
    from ddspbench.suite.train import TrainConfig

    torch.manual_seed(0)
    student, teacher = SIZES.get("hpn/reduced")(), SIZES.get("hpn/full")()
    clips = _clips(4, 40)
    cfg = TrainConfig(steps=1, batch_size=2, frames=40)
    plain = step_flops(student, clips, cfg)
    kd = step_flops(student, clips, cfg, audio_kd_loss(teacher, 0.5, 0.5))
    teacher_alone = step_flops(teacher, clips, cfg)
    assert plain > 0
    # the KD step adds the teacher's forward pass: more than a third of the teacher's own training step
    # (forward + backward ~ 3 forwards), less than all of it
    assert teacher_alone / 3 * 0.8 < kd - plain < teacher_alone
    assert all(p.grad is None for p in student.parameters())  # counting leaves no gradients behind


def _clips(n: int, frames: int):
    import numpy as np

    from ddspbench.suite.data.store import ClipSet
    from ddspbench.suite.features import BLOCK_SIZE

    rng = np.random.default_rng(0)
    ids = np.array([f"c{i}" for i in range(n)])
    return ClipSet(audio=(rng.standard_normal((n, frames * BLOCK_SIZE)) * 0.1).astype(np.float32),
                   f0_hz=np.full((n, frames), 220.0, dtype=np.float32),
                   loudness_db=np.full((n, frames), -30.0, dtype=np.float32),
                   clip_ids=ids, recording_ids=ids, instruments=np.array(["x"] * n))


@pytest.mark.slow
def test_a_sweep_accounts_compute_matches_budgets_and_spreads_runs_over_teachers(tmp_path, capsys):
    tree = _tree(tmp_path)
    cfg_path = tmp_path / "fair.yaml"
    cfg_path.write_text(yaml.safe_dump(tree))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(cfg_path), "--out", str(out), "--no-progress"]) == 0
    recs = list(read_records([out / "records.jsonl"]))
    bad = [r.error for r in recs if r.status != "ok"]
    assert not bad, bad
    teachers = [r for r in recs if r.method == "teacher"]
    assert sorted(r.seed for r in teachers) == [3, 4]  # two teachers, seeds 3 and 4
    assert all(r.compute["own"]["steps"] == TEACHER_STEPS and r.compute["own"]["flops"] > 0 for r in teachers)
    t_flops = {r.seed: r.compute["own"]["flops"] for r in teachers}
    cands = [r for r in recs if r.method != "teacher"]

    def arm(r):
        return (r.method, r.method_params.get("scratch", {}).get("budget"),
                r.method_params.get("prune", {}).get("kd_weight"))

    by_arm: dict = {}
    for r in cands:
        by_arm.setdefault(arm(r), []).append(r)
    assert set(by_arm) == {("scratch", "student", None), ("scratch", "teacher+student", None),
                           ("kd_audio", None, None), ("prune", None, 0.0), ("prune", None, 0.5),
                           ("quantize", None, None)}
    for key, rs in by_arm.items():
        assert sorted(r.seed for r in rs) == [3, 4], key  # 2 runs each; int8 once per teacher
        for r in rs:
            own, total = r.compute["own"], r.compute["total"]
            if r.method == "scratch":
                assert r.teacher is None and r.compute["inherited"] is None and total == own
                want = STUDENT_STEPS + (TEACHER_STEPS if key[1] == "teacher+student" else 0)
                assert own["steps"] == want and own["examples"] == want * 2
            else:  # run k starts from teacher k: the records name it, and inherit its training
                assert r.teacher["seed"] == r.seed and r.compute["inherited"]["flops"] == t_flops[r.seed]
                assert total["steps"] == own["steps"] + TEACHER_STEPS
                assert total["flops"] == own["flops"] + t_flops[r.seed]
            if r.method == "quantize":
                assert own["steps"] == 0 and own["flops"] == 0
    kd_step = by_arm[("kd_audio", None, None)][0].compute["own"]["flops"] / STUDENT_STEPS
    scratch_step = by_arm[("scratch", "student", None)][0].compute["own"]["flops"] / STUDENT_STEPS
    assert kd_step > scratch_step  # the teacher's forward is the KD step's cost too

    # int8 made from two teachers: two different models, so two different test values
    q = by_arm[("quantize", None, None)]
    assert q[0].metrics["mss"] != q[1].metrics["mss"]

    # the report: each variant is its own arm, with its compute including the teacher's
    report = json.loads((out / "report" / "report.json").read_text())
    rows = {r["arm"]: r for r in report["verdicts"]}
    assert {"scratch", "scratch (teacher+student steps)", "prune", "prune (KD fine-tune)", "quantize",
            "kd_audio"} <= set(rows)
    assert rows["scratch (teacher+student steps)"]["own_steps"] == STUDENT_STEPS + TEACHER_STEPS
    assert rows["kd_audio"]["total_steps"] == STUDENT_STEPS + TEACHER_STEPS
    assert rows["kd_audio"]["teacher"] == f"full:hidden=64, {TEACHER_STEPS} steps; 2 teachers (seeds 3, 4)"
    md = (out / "report" / "report.md").read_text()
    section = md.split("## Verdict per family")[1].split("\n## ")[0]
    assert "compute incl. teacher" in section and f"{STUDENT_STEPS} + {TEACHER_STEPS} steps" in section
    assert "scratch (teacher+student steps)" in section and "prune (KD fine-tune)" in section
    frame = reports.load_results([out])
    assert frame.loc[frame["method"] == "scratch", "teacher"].isna().all()
    # FAD beside MSS: the same arms, a second family of tests; quality against cumulative compute is plotted
    assert report["secondary_quality"] == "fad"
    assert {r["arm"] for r in report["secondary_verdicts"]} == {r["arm"] for r in report["verdicts"]}
    assert all(r["n_recordings"] in (1, None) or r["n_recordings"] != r["n_recordings"]
               for r in report["secondary_verdicts"] if r.get("vs_kd"))
    assert "## Verdict on fad (secondary)" in md
    assert list((out / "report" / "plots").glob("compute_*.png"))


def test_fad_runs_are_one_value_each_and_tested_between_runs():
    from ddspbench.reports.seeds import record_run

    run = record_run({"seed": 1, "uid": "a", "fad": 12.5, "per_clip": {"mss": [1.0, 2.0]}}, "fad")
    assert run["values"] == [12.5] and run["clip_ids"] == ["test set"]
    assert record_run({"seed": 1, "fad": float("nan"), "per_clip": {}}, "fad") is None
    assert record_run({"seed": 1, "per_clip": {"mss": [1.0]}}, "mss")["values"] == [1.0]  # per clip, as before


def test_across_instruments_ranks_arms_and_flags_where_kd_was_hurt():
    import pandas as pd

    from ddspbench.reports.compare import instrument_aggregate

    rows = []
    for inst, vals, verdicts in (("violin", {"kd_audio": 5.0, "scratch": 6.0, "prune": 4.0},
                                  {"scratch": "KD better", "prune": "KD worse"}),
                                 ("flute", {"kd_audio": 3.0, "scratch": 3.5, "prune": 3.2},
                                  {"scratch": "inconclusive", "prune": "equivalent within +-T"})):
        for arm, v in vals.items():
            kd = arm == "kd_audio"
            rows.append({"dataset": "soundfont", "instrument": inst, "family": "hpn", "method": arm, "arm": arm,
                         "mss": v, "kd_arm": kd, "vs_kd": None if kd else "x", "verdict": verdicts.get(arm)})
    agg = instrument_aggregate(pd.DataFrame(rows), "mss")
    by = agg.set_index("arm")
    assert by.loc["kd_audio", "ranks"] == "flute 1, violin 2" and by.loc["kd_audio", "mean_rank"] == 1.5
    assert by.loc["prune", "mean_rank"] == 1.5 and by.loc["scratch", "mean_rank"] == 3.0
    assert by.loc["kd_audio", "kd_hurt"] == "violin: worse than prune" and bool(by.loc["kd_audio", "kd"])
    assert by.loc["prune", "kd_hurt"] == ""
    one = pd.DataFrame([r for r in rows if r["instrument"] == "violin"])
    assert instrument_aggregate(one, "mss").empty  # one instrument: nothing to aggregate
