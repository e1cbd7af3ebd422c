from __future__ import annotations

import dataclasses

from ddspbench.suite.pipeline import (
    Workspace,
    one_line,
    run_candidate,
    teacher_key,
    teacher_size_label,
)
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.recipe import Recipe
from ddspbench.suite.records import read_records
from ddspbench.suite.sweep.config import config_from_dict


def _cfg(**changes):
    cfg = config_from_dict(preset_tree("smoke"))
    return dataclasses.replace(cfg, **changes)


def test_teacher_key_is_stable_and_tracks_what_matters():
    cfg = _cfg()
    key = teacher_key("hpn", cfg)
    assert key == teacher_key("hpn", config_from_dict(cfg.to_dict()))  # same config, same key (new objects)
    assert len(key) == 16 and key.isalnum()
    # what does not change the teacher: study name, trial count, device, search space, student recipe
    assert teacher_key("hpn", _cfg(study="other", trials=99, device="cuda")) == key
    other_space = _cfg()
    other_space.space.methods = ["scratch"]
    other_space.student.steps = 1
    assert teacher_key("hpn", other_space) == key
    # what does
    assert teacher_key("wavetable", cfg) != key
    assert teacher_key("hpn", _cfg(seed=1)) != key
    steps = _cfg()
    steps.teacher.steps += 1
    assert teacher_key("hpn", steps) != key
    width = _cfg()
    width.teacher.widths = {"hpn": {"hidden": 32}}
    assert teacher_key("hpn", width) != key
    data = _cfg()
    data.data.options = {**data.data.options, "recordings": 7}
    assert teacher_key("hpn", data) != key
    crop = _cfg()
    crop.data.frames = 125
    assert teacher_key("hpn", crop) != key
    # per-family budgets: only the family's own steps count, and a budget equal to the default is the same teacher
    fam = _cfg()
    fam.teacher.family_steps = {"ddx7": 5}
    assert teacher_key("hpn", fam) == key and teacher_key("ddx7", fam) != teacher_key("ddx7", cfg)
    fam.teacher.family_steps = {"hpn": cfg.teacher.steps}
    assert teacher_key("hpn", fam) == key
    fam.teacher.family_steps = {"hpn": cfg.teacher.steps + 1}
    assert teacher_key("hpn", fam) == teacher_key("hpn", steps)


def test_family_steps_are_checked_and_give_each_family_its_budget():
    import pytest

    from ddspbench.suite.errors import UserError

    tree = preset_tree("smoke")
    tree["student"] = {**tree["student"], "steps": 7, "family_steps": {"ddx7": 3}}
    cfg = config_from_dict(tree)
    assert cfg.student.steps_for("ddx7") == 3 and cfg.student.steps_for("hpn") == 7
    assert config_from_dict(cfg.to_dict()).student.family_steps == {"ddx7": 3}  # written configs read back
    for bad, msg in (({"hnp": 3}, "student.family_steps: unknown family 'hnp'"),
                     ({"hpn": -1}, "student.family_steps.hpn: steps >= 0 are required")):
        with pytest.raises(UserError, match=msg):
            config_from_dict({**tree, "student": {**tree["student"], "family_steps": bad}})


def test_teacher_size_label_names_the_width_override():
    cfg = _cfg()
    assert teacher_size_label("hpn", cfg) == "full:hidden=64"
    assert teacher_size_label("ddx7", cfg) == "full"


def test_run_steps_give_each_step_its_params_and_the_size_to_the_first():
    one = Recipe("hpn", "reduced", (("kd_audio", {"kd_weight": 0.5}),))
    assert one.run_steps() == [("kd_audio", {"size": "reduced", "kd_weight": 0.5})]
    custom = Recipe("hpn", "hidden=32", (("scratch", {}),))
    assert custom.run_steps() == [("scratch", {"hidden": 32})]
    chain = Recipe("hpn", None,
                      (("prune", {"ratio": 0.5, "finetune_steps": 0}), ("quantize", {"method": "int8"})))
    assert chain.run_steps() == [("prune", {"ratio": 0.5, "finetune_steps": 0}), ("quantize", {"method": "int8"})]
    student_chain = Recipe("hpn", "reduced",
                              (("kd_audio", {"kd_weight": 0.5}), ("quantize", {"method": "bf16"})))
    assert student_chain.run_steps() == [("kd_audio", {"size": "reduced", "kd_weight": 0.5}),
                                         ("quantize", {"method": "bf16"})]
    assert student_chain.steps[0][1] == {"kd_weight": 0.5}  # the candidate itself is not changed


def test_one_line_errors():
    assert one_line(ValueError("bad\nsecond line")) == "ValueError: bad"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert len(one_line(ValueError("x" * 1000))) == 300


def test_a_failing_candidate_becomes_a_failed_record_not_an_exception(tmp_path):
    cfg = _cfg()
    cfg.data.path = str(tmp_path / "no-such-dataset")
    ws = Workspace(cfg, tmp_path / "out")
    spec = Recipe("hpn", "reduced", (("scratch", {}),))
    rec = run_candidate(spec, ws, candidate_id="t0000", trial=0)
    assert rec.status == "failed"
    assert rec.error and "\n" not in rec.error
    assert rec.provenance["preset"] == "smoke" and rec.recipe == spec
    assert rec.candidate_id == "t0000" and rec.family == "hpn" and rec.method == "scratch"


def test_workspace_prepares_data_once_and_limits_splits(tmp_path):
    tree = preset_tree("smoke")
    tree["data"] = {"dataset": "synthetic", "options": {"recordings": 2, "clips_per_recording": 1},
                    "frames": 40, "max_train": 2, "max_valid": 1, "max_test": 1}
    cfg = config_from_dict(tree)
    ws = Workspace(cfg, tmp_path / "out")
    sp = ws.splits()
    assert len(sp["train"]) == 2 and len(sp["valid"]) <= 1 and len(sp["test"]) == 1
    assert sp["test"].f0_hz.shape[1] == 40 and sp["test"].audio.shape[1] == 40 * 64
    ddir = ws.dataset_dir()
    assert ddir.parent == tmp_path / "out" / "cache" / "data"
    again = Workspace(cfg, tmp_path / "out")
    assert again.dataset_dir() == ddir  # prepared once, found again
    targets = ws.write_targets()
    assert len(list(targets.glob("*.wav"))) == 1
    assert not list(read_records([tmp_path / "out"]))


def test_native_speed_backend_in_a_sweep_candidate(tmp_path):
    tree = preset_tree("smoke")
    tree["data"] = {"dataset": "synthetic", "options": {"recordings": 2, "clips_per_recording": 1},
                    "frames": 40, "max_train": 2, "max_valid": 1, "max_test": 1}
    tree["teacher"] = {**tree["teacher"], "steps": 2}
    tree["student"] = {**tree["student"], "steps": 2}
    tree["evaluation"] = {**tree["evaluation"], "metrics": ["mss", "stream", "size"], "stream_buffers": [64],
                          "speed_backend": "native"}
    ws = Workspace(config_from_dict(tree), tmp_path / "out")
    ok = run_candidate(Recipe("hpn", "reduced", (("scratch", {}),)), ws, candidate_id="t0000",
                       trial=0)
    assert ok.status == "ok", ok.error
    assert 0 < ok.metrics["rtf_stream_64"] < 10 and ok.metric_defs["rtf_stream_64"].endswith("backend=native")
    # the native engine runs the int8 (and bf16) models the quantize compressor makes: timed like the rest
    q = run_candidate(Recipe("hpn", None, (("quantize", {"method": "int8"}),)), ws,
                      candidate_id="t0001", trial=1)
    assert q.status == "ok", q.error
    assert 0 < q.metrics["rtf_stream_64"] < 10 and q.metric_defs["rtf_stream_64"].endswith("backend=native")


def test_a_teacher_whose_evaluation_fails_becomes_a_failed_record_and_students_go_on(tmp_path, monkeypatch):
    """A trained teacher that cannot be evaluated gets one failed record (its error, once); the students still run."""
    import ddspbench.suite.pipeline as pipeline

    tree = preset_tree("smoke")
    tree["data"] = {"dataset": "synthetic", "options": {"recordings": 2, "clips_per_recording": 1},
                    "frames": 40, "max_train": 2, "max_valid": 1, "max_test": 1}
    tree["teacher"] = {**tree["teacher"], "steps": 2}
    tree["student"] = {**tree["student"], "steps": 2}
    tree["evaluation"] = {**tree["evaluation"], "metrics": ["mss", "size"], "stream_buffers": [64]}
    ws = Workspace(config_from_dict(tree), tmp_path / "out")
    real = pipeline._evaluate

    def evaluate(model, ws_, teacher, ckpt, audio_out, seed=None):
        if "teacher-" in str(audio_out):
            raise TypeError("can't convert cuda:0 device type tensor to numpy\nsecond line")
        return real(model, ws_, teacher, ckpt, audio_out, seed)

    monkeypatch.setattr(pipeline, "_evaluate", evaluate)
    for i in range(2):
        rec = run_candidate(Recipe("hpn", "reduced", (("scratch", {}),)), ws, candidate_id=f"t000{i}",
                            trial=i)
        assert rec.status == "ok", rec.error
    teachers = [r for r in read_records([tmp_path / "out"]) if r.method == "teacher"]
    assert len(teachers) == 1  # recorded once, not retried by every student
    t = teachers[0]
    assert t.status == "failed" and t.error == "teacher evaluation: TypeError: can't convert cuda:0 device type tensor to numpy"
    assert t.method_params == {"teacher": {"steps": 2}} and t.tags == {"reference"} and t.provenance["preset"] == "smoke" and t.provenance.get("torch_version")
