"""Every number a command takes is declared with its bounds, and random values outside them never pass (issue #24).

The options are read from the argparse parsers and the datasets' declarations, so a new option is covered without
editing this file. Values come from a seeded generator (hypothesis is not a dependency). Everything runs in-process
through :func:`ddspbench.suite.cli.main` and stops at parsing or at the declarations: no work is done.
"""

from __future__ import annotations

import argparse
import math
import random

import numpy as np
import pytest
import torch

from ddspbench.suite import bounds
from ddspbench.suite.bounds import Bound, IntList
from ddspbench.suite.cli import build_parser, main
from ddspbench.suite.data.store import save_dataset
from ddspbench.suite.errors import UserError
from tests.unit.test_train import make_clips

pytestmark = pytest.mark.usefixtures("one_thread")

DECLARED = (Bound, IntList)


def _numeric_options() -> list[tuple[str, str, object]]:
    """``(command, flag, declaration)`` for every option of every command that takes a number."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, p in sub.choices.items():
        for action in p._actions:
            if isinstance(action.type, DECLARED) and action.option_strings:
                out.append((name, action.option_strings[-1], action.type))
    return out


def _dataset_bounds() -> list[tuple[str, str, Bound]]:
    from ddspbench.suite.registry import DATASETS

    return [(name, key, spec) for name in DATASETS.list()
            for key, spec in DATASETS.entry(name).meta["options"].items() if isinstance(spec, Bound)]


def _outside(bound: Bound, rng: random.Random) -> list[str]:
    """Random texts a ``bound`` must refuse: beyond each end, non-finite, a fraction for an integer, not a number."""
    values = ["nan", "inf", "-inf", rng.choice(["abc", "", "1,2", "0x", "1e", "\x1b[2J"])]
    if bound.low is not None:
        below = bound.low if bound.low_open else bound.low - rng.choice([1, 7, 10 ** rng.randint(1, 12)])
        values.append(repr(int(below)) if bound.kind is int else repr(float(below)))
    if bound.high is not None:
        values.append(repr(int(bound.high) + rng.choice([1, 3, 10 ** rng.randint(1, 15)])))
    if bound.kind is int:
        values.append(repr(rng.uniform(1.01, 9.99)))
    return values


def _int_list_outside(spec: IntList, rng: random.Random) -> list[str]:
    m = spec.multiple
    return ["nan", f"{m},inf", str(-m), str(m + 1), str(spec.high + m * rng.randint(1, 1000)), "", f"{m},,x"]


def _assert_refused(code: int, err: str, flag: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and "\x1b" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], err


def test_every_numeric_option_of_every_command_is_declared_with_bounds():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.type not in (int, float), f"{name} {action.option_strings}: declare it with suite.bounds"
    options = _numeric_options()
    assert len(options) >= 35
    assert {cmd for cmd, _, _ in options} >= {"train", "compress", "evaluate", "synth", "data", "report", "sweep",
                                              "worker", "fad", "mss"}
    for _, flag, spec in options:
        if isinstance(spec, Bound):  # a declaration is bounded at both ends
            assert spec.low is not None and spec.high is not None and math.isfinite(spec.high), flag


def test_random_values_outside_every_option_bound_are_refused(capsys, tmp_path):
    rng = random.Random(24)
    seen = 0
    for cmd, flag, spec in _numeric_options():
        texts = _outside(spec, rng) if isinstance(spec, Bound) else _int_list_outside(spec, rng)
        for text in texts:
            # the value alone: a type error stops parsing before the required arguments are even looked at
            code = main([cmd, f"{flag}={text}"])
            _assert_refused(code, capsys.readouterr().err, flag)
            seen += 1
    assert seen >= 200
    assert list(tmp_path.iterdir()) == []


def test_values_inside_every_option_bound_parse():
    parser = build_parser()
    for cmd, flag, spec in _numeric_options():
        if isinstance(spec, Bound):
            low = spec.low if not spec.low_open else spec.low + (1 if spec.kind is int else 1e-3)
            for value in (low, spec.high):
                text = str(int(value)) if spec.kind is int else repr(float(value))
                assert spec(text) == value or math.isclose(spec(text), value), (cmd, flag, text)
        else:
            assert spec(f"{spec.multiple},{spec.high}") == (spec.multiple, spec.high)
    assert parser.parse_args(["train", "--family", "hpn", "--data", "d", "--steps", "1", "--out", "o",
                              "--lr", "0.5", "--seed", str(2**32 - 1)]).seed == 2**32 - 1


def test_every_dataset_option_is_declared():
    from ddspbench.suite.data import dataset_options
    from ddspbench.suite.registry import DATASETS

    for name in DATASETS.list():
        assert set(DATASETS.entry(name).meta["options"]) == set(dataset_options(name)), name


def test_random_values_outside_every_dataset_option_bound_are_refused(capsys, tmp_path):
    rng = random.Random(2024)
    out = tmp_path / "out"
    for name, key, spec in _dataset_bounds():
        texts = [t for t in _outside(spec, rng) if t not in ("", "abc", "1,2", "0x", "1e", "\x1b[2J")]
        texts += [".nan", ".inf", "-.inf", "[1]", "true", "{a: 1}"]
        for text in texts:
            code = main(["data", "--dataset", name, "--set", f"{key}={text}", "--out", str(out)])
            _assert_refused(code, capsys.readouterr().err, key)
    assert not out.exists()


def _compressor_bounds() -> list[tuple[str, str, Bound]]:
    from ddspbench.suite.registry import COMPRESSORS

    return [(name, key, spec) for name in COMPRESSORS.list()
            for key, spec in COMPRESSORS.get(name).bounds.items() if isinstance(spec, Bound)]


def test_every_compressor_parameter_is_declared():
    from ddspbench.suite.registry import COMPRESSORS

    for name in COMPRESSORS.list():
        cls = COMPRESSORS.get(name)
        assert set(cls.bounds) == set(cls.defaults), name
        for key, value in cls.defaults.items():  # the defaults themselves pass
            if value is not None:
                cls.bounds[key].check(value, key)
    assert len(_compressor_bounds()) >= 15


def test_random_values_outside_every_compressor_bound_are_refused_before_the_teacher_is_read(capsys, tmp_path):
    rng = random.Random(7)
    out = tmp_path / "out"
    for name, key, spec in _compressor_bounds():
        texts = [t for t in _outside(spec, rng) if t not in ("", "abc", "1,2", "0x", "1e", "\x1b[2J")]
        for text in [*texts, ".nan", ".inf", "-.inf", "[1]", "true"]:
            code = main(["compress", "--method", name, "--teacher", str(tmp_path / "none.pt"), "--set", f"{key}={text}",
                         "--out", str(out)])
            _assert_refused(code, capsys.readouterr().err, f"{name} option {key}")
    assert not out.exists()


@pytest.fixture
def low_memory(monkeypatch: pytest.MonkeyPatch) -> int:
    """The machine reports 1 GB available, so the estimates of moderate sizes are refused wherever this runs."""
    monkeypatch.setattr(bounds, "available_bytes", lambda: 10**9)
    return 10**9


def test_a_dataset_beyond_the_memory_is_refused_naming_the_estimate(low_memory, capsys, tmp_path):
    code = main(["data", "--set", "recordings=2000", "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    _assert_refused(code, err, "dataset 'synthetic' with 18,000 clips needs an estimated")
    assert "GB of memory and about" in err and "1 GB available" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("yaml_text", "match"), [
    ("data:\n  options:\n    recordings: 2000\n", "dataset 'synthetic' with 18,000 clips needs an estimated"),
    ("teacher:\n  batch_size: 512\n", "training with batch 512 x 250 frames"),
    ("teacher:\n  widths:\n    hpn: {hidden: 8000}\n", "the hpn teacher with"),
])
def test_a_sweep_beyond_the_memory_is_refused_before_anything_is_written(yaml_text, match, low_memory, capsys, tmp_path):
    (tmp_path / "big.yaml").write_text(yaml_text)
    code = main(["sweep", "--setup-only", "--no-report", "--families", "hpn", "--config", str(tmp_path / "big.yaml"),
                 "--out", str(tmp_path / "sweep")])
    _assert_refused(code, capsys.readouterr().err, match)
    assert not (tmp_path / "sweep").exists()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("bounds")
    save_dataset(root / "data", {"train": make_clips(4), "valid": make_clips(2, seed=1, prefix="v"),
                                 "test": make_clips(2, seed=2, prefix="t")}, {"name": "tones"})
    return str(root / "data")


def test_a_training_batch_beyond_the_memory_is_refused_before_the_data_are_read(low_memory, data_dir, capsys, tmp_path,
                                                                                monkeypatch):
    import ddspbench.suite.data.store as store

    read: list[str] = []
    monkeypatch.setattr(store, "load_split", lambda *a, **k: read.append("read"))
    code = main(["train", "--family", "hpn", "--size", "reduced", "--data", data_dir, "--steps", "1",
                 "--batch-size", "1024", "--out", str(tmp_path / "t")])
    _assert_refused(code, capsys.readouterr().err, "training with batch 1024 x 1000 frames")
    assert not read and not (tmp_path / "t").exists()


def test_a_run_whose_loss_becomes_nan_exits_1_with_one_line(data_dir, capsys, tmp_path, monkeypatch):
    import ddspbench.suite.train as train_mod

    real = train_mod.mss_loss_fn
    calls: list[int] = []

    def nan_after_one(*a, **k):
        fn = real(*a, **k)

        def loss(out, batch):
            value, logs = fn(out, batch)
            calls.append(1)
            return (value * float("nan") if len(calls) > 1 else value), logs
        return loss

    monkeypatch.setattr(train_mod, "mss_loss_fn", nan_after_one)
    code = main(["train", "--family", "hpn", "--size", "reduced", "--data", data_dir, "--steps", "3", "--batch-size", "2",
                 "--out", str(tmp_path / "t"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("error: training diverged at step 2: loss is nan"), err


def test_an_update_that_leaves_nan_weights_fails_even_when_the_loss_was_finite(data_dir, capsys, tmp_path, monkeypatch):
    """What `--lr inf` did: the one step's loss is finite, the update breaks every weight, and the run said ok."""
    real_step = torch.optim.AdamW.step

    def poisoned(self, *a, **k):
        result = real_step(self, *a, **k)
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned)
    out = tmp_path / "t"
    code = main(["train", "--family", "hpn", "--size", "reduced", "--data", data_dir, "--steps", "1", "--batch-size", "2",
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1 and "the weights hold NaN/inf after the update" in err, err
    assert not (out / "last.pt").exists() and not (out / "best.pt").exists()


def test_a_diverged_training_is_a_failed_record_in_a_sweep(data_dir, tmp_path, monkeypatch):
    """The sweep's candidate runner turns the same TrainingDiverged into a failed record, never an ok one."""
    import dataclasses

    import ddspbench.suite.train as train_mod
    from ddspbench.suite.pipeline import Workspace, run_candidate
    from ddspbench.suite.presets import preset_tree
    from ddspbench.suite.recipe import Recipe
    from ddspbench.suite.sweep.config import config_from_dict

    def nan_loss(*a, **k):
        return lambda out, batch: (out["audio"].sum() * float("nan"), {})

    monkeypatch.setattr(train_mod, "mss_loss_fn", nan_loss)
    cfg = config_from_dict(preset_tree("smoke"))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=data_dir))
    rec = run_candidate(Recipe("hpn", "reduced", (("scratch", {}),)), Workspace(cfg, tmp_path / "out"),
                        candidate_id="t0000", trial=0)
    assert rec.status == "failed" and "diverged" in (rec.error or ""), rec.error


def test_control_characters_in_names_are_escaped(capsys):
    assert main(["list", "sizes\x1b[2J\x1b[31mRED"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "sizes\\x1b[2J\\x1b[31mRED" in err
    from ddspbench.suite.errors import one_line_message, printable

    assert printable("a\x1b[0m\x07\x9b b\tc") == "a\\x1b[0m\\x07\\x9b b\tc"
    assert one_line_message("\x1b]0;title\x07 x") == "\\x1b]0;title\\x07 x"


def test_warnings_quoting_a_file_escape_its_control_characters(tmp_path, capsys):
    results = tmp_path / "results\x1b[2J"
    results.mkdir()
    (results / "records.jsonl").write_text('{"schema": "ddspbench.result/1", "bogus": 1}\n')
    main(["report", "--results", str(results), "--format", "csv"])
    err = capsys.readouterr().err
    assert "skipped" in err and "\x1b" not in err and "results\\x1b[2J" in err, err


def test_a_soundfont_is_checked_by_its_header(tmp_path):
    from ddspbench.suite.bounds import SoundFontFile

    good = tmp_path / "ok.sf2"
    good.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    assert SoundFontFile().check(str(good), "soundfont") == good
    for body in (b"root:x:0:0:root:/root:/bin/bash\n", b"RIFF\x04\x00\x00\x00WAVE", b"RIFF", b""):
        bad = tmp_path / "bad.sf2"
        bad.write_bytes(body)
        with pytest.raises(UserError, match="not a SoundFont file"):
            SoundFontFile().check(str(bad), "soundfont")


def test_numpy_integers_pass_an_integer_bound():
    assert Bound(int, 1, 10).check(np.int64(3), "x") == 3
    with pytest.raises(UserError, match="x must be an integer in"):
        Bound(int, 1, 10).check(np.float64(3.0), "x")
