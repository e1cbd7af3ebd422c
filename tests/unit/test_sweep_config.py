from __future__ import annotations

import pytest

from ddspbench.suite.errors import UserError
from ddspbench.suite.presets import PRESETS, preset_tree
from ddspbench.suite.sweep.config import (
    ParamSpec,
    SweepConfig,
    config_from_dict,
    config_hash,
    deep_merge,
    load_yaml,
)
from ddspbench.suite.sweep.storage import mask_url, storage_kind


def test_every_preset_validates_and_smoke_is_marked():
    for name in PRESETS:
        cfg = config_from_dict(preset_tree(name), where=name)
        assert cfg.preset == name
        assert cfg.objectives and all(isinstance(o, str) for o in cfg.objectives)
    smoke = config_from_dict(preset_tree("smoke"))
    assert {"scratch", "kd_audio", "kd_control", "prune", "quantize"} <= set(smoke.space.methods)
    assert len(smoke.space.families) >= 2
    assert smoke.evaluation.embedding == "logmel" and 64 in smoke.evaluation.stream_buffers
    assert config_from_dict(preset_tree("paper")).student.batch_size == 16


def test_round_trip_through_dict_keeps_hash():
    cfg = config_from_dict(preset_tree("smoke"))
    again = config_from_dict(cfg.to_dict())
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    # the trial count and study name do not change the hash; the search space does
    changed = config_from_dict({**cfg.to_dict(), "trials": 99, "study": "other"})
    assert config_hash(changed) == config_hash(cfg)
    tree = cfg.to_dict()
    tree["space"]["methods"] = ["scratch"]
    assert config_hash(config_from_dict(tree)) != config_hash(cfg)


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"trails": 3}, "unknown key 'trails'"),
        ({"space": {"famlies": ["hpn"]}}, "config.space: unknown key 'famlies'"),
        ({"trials": "many"}, "config.trials: expected an integer"),
        ({"trials": 0}, "config.trials must be an integer in [1, 100000], got 0"),
        ({"objectives": ["mss", "loudness"]}, "unknown metric 'loudness'"),
        ({"objectives": ["mss", "mss"]}, "listed twice"),
        ({"device": "tpu"}, "not cpu or cuda"),
        ({"sampler": "grid-ish"}, "unknown sampler 'grid-ish'"),
        ({"space": {"params": {"prune": {"ratio": {"low": 0.9, "high": 0.1}}}}}, "is above"),
        ({"space": {"params": {"prune": {"ratio": {"low": 0.1}}}}}, "both 'low' and 'high'"),
        ({"space": {"params": {"quantize": {"dtype": {"choices": []}}}}}, "non-empty list"),
        ({"data": {"frames": 2}}, "config.data.frames must be an integer in [4, 1000]"),
        ({"teacher": {"lr": -1.0}}, "config.teacher.lr must be a finite number > 0"),
        ({"teacher": {"lr": float("inf")}}, "config.teacher.lr: expected a finite number, got inf"),
        ({"student": {"batch_size": 10**6}}, "config.student.batch_size must be an integer in [1, 4096]"),
        ({"seed": -1}, "config.seed must be an integer in [0, 4294967295]"),
        ({"repeats": 1000}, "config.repeats must be an integer in [1, 100]"),
        ({"data": {"options": {"timbres": []}}}, "option timbres must name at least one"),
        ({"data": {"options": {"recordings": 10**9}}}, "option recordings must be an integer in [1, 100000]"),
        ({"space": {"params": {"prune": {"ratio": {"low": 0.5, "high": 3}}}}}, "space.params.prune.ratio must be"),
        ({"space": {"params": {"kd_audio": {"kd_weight": {"choices": [0.5, -1]}}}}}, "kd_weight must be"),
        ({"covering": "yes"}, "expected true or false"),
        ({"evaluation": {"stream_buffers": "64"}}, "expected a list"),
        ({"evaluation": {"speed_backend": "tensorrt"}}, "speed_backend: 'tensorrt' is not one of"),
    ],
)
def test_validation_errors_are_one_line_and_name_the_key(tree, message):
    with pytest.raises(UserError) as err:
        config_from_dict(tree)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_deep_merge_overrides_single_parameters():
    base = preset_tree("smoke")
    merged = deep_merge(base, {"space": {"params": {"prune": {"ratio": {"low": 0.4, "high": 0.6}}}}, "trials": 3})
    cfg = config_from_dict(merged)
    assert cfg.trials == 3
    assert cfg.space.params["prune"]["ratio"] == ParamSpec(low=0.4, high=0.6)
    assert cfg.space.params["prune"]["finetune_steps"].choices == [0, 20]  # kept from the preset
    assert cfg.space.families == base["space"]["families"]


def test_param_spec_kinds():
    assert ParamSpec(choices=["int8", "bf16"]).kind == "categorical"
    assert ParamSpec(low=1, high=8).kind == "int"
    assert ParamSpec(low=0.1, high=0.9).kind == "float"
    assert ParamSpec(low=1, high=8, step=0.5).kind == "float"
    assert ParamSpec(low=0.1, high=0.9).contains(0.5) and not ParamSpec(low=0.1, high=0.9).contains(1.5)


def test_yaml_loading_is_safe_and_checked(tmp_path):
    good = tmp_path / "s.yaml"
    good.write_text("preset: smoke\ntrials: 3\nspace:\n  methods: [scratch, prune+quantize]\n")
    assert load_yaml(good) == {"preset": "smoke", "trials": 3, "space": {"methods": ["scratch", "prune+quantize"]}}
    evil = tmp_path / "evil.yaml"
    evil.write_text("trials: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(evil)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="must be a mapping"):
        load_yaml(notmap)
    with pytest.raises(UserError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml(tmp_path / "empty.yaml") == {}


def test_shipped_yaml_configs_validate():
    from pathlib import Path

    from ddspbench import suite

    files = sorted((Path(suite.__file__).parent / "configs").glob("*.yaml"))
    assert files, "suite/configs/ ships example sweep files"
    for f in files:
        tree = load_yaml(f)
        cfg = config_from_dict(deep_merge(preset_tree(tree.get("preset", "smoke")), tree), where=str(f))
        assert isinstance(cfg, SweepConfig)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://alice:s3cr3t@db.example:5432/optuna", "postgresql://alice:***@db.example:5432/optuna"),
        ("postgresql+psycopg2://bob:p%40ss:w@localhost/x", "postgresql+psycopg2://bob:***@localhost/x"),
        ("postgresql://carol@localhost/x", "postgresql://carol@localhost/x"),
        ("sqlite:///tmp/study.db", "sqlite:///tmp/study.db"),
    ],
)
def test_mask_url_hides_passwords(url, masked):
    assert mask_url(url) == masked
    assert "s3cr3t" not in mask_url(url) and "p%40ss" not in mask_url(url)


def test_storage_kinds():
    assert storage_kind("journal:///tmp/x.journal") == "journal"
    assert storage_kind("/tmp/x.journal") == "journal"
    assert storage_kind("sqlite:///x.db") == "sqlite"
    assert storage_kind("postgresql://u:p@h/d") == "postgresql"
    with pytest.raises(UserError) as err:
        storage_kind("ftp-ish-thing")
    assert "ftp-ish-thing" in str(err.value)


BAD_SECTIONS = [
    ({"evaluation": {"metrics": ["mss", "nosuch"]}}, "evaluation.metrics"),
    ({"evaluation": {"embedding": "nosuch"}}, "evaluation.embedding"),
    ({"evaluation": {"threads": 0}}, "evaluation.threads"),
    ({"evaluation": {"n_audio_examples": -1}}, "n_audio_examples"),
    ({"evaluation": {"stream_buffers": [64, 100]}}, "stream_buffers"),
    ({"data": {"options": {"nosuch": 1}}}, "data.options"),
    ({"data": {"options": {"recordings": "abc"}}}, "recordings"),
    ({"data": {"dataset": "nosuch"}}, "data.dataset"),
    ({"data": {"max_train": -1}}, "data.max_train"),
    ({"data": {"max_test": 0}}, "data.max_test"),
    ({"teacher": {"widths": {"hpn": {"hidden": -64}}}}, "teacher.widths.hpn.hidden"),
    ({"teacher": {"widths": {"hpn": {"widths": {"gru": 0}}}}}, "teacher.widths.hpn.widths.gru"),
    ({"teacher": {"widths": {"nosuch": {"hidden": 8}}}}, "teacher.widths"),
    ({"teacher": {"size": "huge"}}, "teacher.size"),
    ({"space": {"params": {"prune": {"nosuch": {"choices": [1]}}}}}, "unknown parameter 'nosuch'"),
    ({"study": ".."}, "study"),
    ({"space": {"sizes": ["hidden=-4"]}}, "hidden must be > 0"),
    ({"space": {"sizes": ["nosuch=3"]}}, "cannot build a hpn model"),
]


@pytest.mark.parametrize(("tree", "match"), BAD_SECTIONS, ids=[m for _, m in BAD_SECTIONS])
def test_every_section_is_validated_up_front(tree, match):
    with pytest.raises(UserError, match=match.replace("(", r"\(").replace(".", r"\.")):
        config_from_dict(deep_merge(preset_tree("smoke"), tree))


@pytest.mark.parametrize(("tree", "match"), BAD_SECTIONS[:4], ids=[m for _, m in BAD_SECTIONS[:4]])
def test_setup_only_catches_them_before_a_study_exists(tree, match, tmp_path, capsys):
    import yaml

    from ddspbench.suite.cli import main

    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(tree))
    assert main(["sweep", "--setup-only", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    levels = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 8))
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("data:\n  options:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + levels)
    assert bomb.stat().st_size < 1000
    with pytest.raises(UserError, match="aliases are expanded"):
        load_yaml(bomb)
    fine = tmp_path / "fine.yaml"
    fine.write_text("base: &b {steps: 10}\nteacher: *b\nstudent: *b\n")
    assert load_yaml(fine)["student"] == {"steps": 10}


def test_a_sweep_file_that_is_not_utf8_is_one_line(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("study: café\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_yaml(bad)


def test_an_exported_speed_backend_is_allowed_with_a_cuda_device():
    """Training on CUDA, speed timed on the CPU deployment (a CPU copy of the candidate on the engine)."""
    cfg = config_from_dict(deep_merge(preset_tree("smoke"), {"device": "cuda"}), where="t")
    assert cfg.evaluation.speed_backend == "native" and cfg.device == "cuda"
