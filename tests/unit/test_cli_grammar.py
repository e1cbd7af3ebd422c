"""One CLI grammar: --json on every result-producing command (valid JSON, alone on stdout), --no-progress and
--debug everywhere, help on every option, one spelling per flag, a default report --out, no unshipped documents."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.cli import build_parser, main
from ddspbench.suite.data.store import save_dataset
from ddspbench.suite.records import ResultRecord, append_record
from tests.unit.test_train import make_clips

pytestmark = pytest.mark.usefixtures("one_thread")

RESULT_COMMANDS = {"sweep", "report", "train", "compress", "synth", "worker", "data", "evaluate", "list", "mss", "fad"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_and_no_unshipped_document_is_cited():
    subs = _subparsers()
    assert RESULT_COMMANDS <= set(subs)
    for name, p in subs.items():
        for action in p._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help and action.help.strip(), f"{name} {action.option_strings or action.dest} has no help"
        text = p.format_help()
        assert "REFERENCE" not in text and "§" not in text, name
    assert "REFERENCE" not in build_parser().format_help()


def test_every_command_takes_no_progress_debug_and_results_take_json():
    subs = _subparsers()
    for name, p in subs.items():
        assert "--no-progress" in p._option_string_actions and "--debug" in p._option_string_actions, name
        if name in RESULT_COMMANDS:
            assert "--json" in p._option_string_actions, name


def test_one_spelling_per_flag_with_the_old_one_hidden():
    subs = _subparsers()
    for name in ("sweep", "report"):
        p = subs[name]
        assert p._option_string_actions["--family"].dest == p._option_string_actions["--families"].dest == "families"
        assert p._option_string_actions["--family"].help == argparse.SUPPRESS
    assert "--family " not in subs["report"].format_help()
    report = subs["report"]._option_string_actions
    assert report["--instrument"].dest == report["--instruments"].dest and report["--instrument"].help == argparse.SUPPRESS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES

    load_catalog()
    root = tmp_path_factory.mktemp("grammar")
    data = root / "data"
    save_dataset(data, {"train": make_clips(4), "valid": make_clips(2, seed=1, prefix="v"),
                        "test": make_clips(2, seed=2, prefix="t")}, {"name": "tones"})
    ckpt = save_checkpoint(SIZES.get("hpn/reduced")(), root / "hpn.pt", {"candidate_id": "hpn-small"})
    rng = np.random.default_rng(0)
    sf.write(root / "a.wav", rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
    sf.write(root / "b.wav", rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
    np.save(root / "a.npy", rng.normal(size=(20, 4)))
    np.save(root / "b.npy", rng.normal(size=(20, 4)) + 0.5)
    results = root / "results"
    for i, (method, mss) in enumerate([("teacher", 4.0), ("scratch", 6.0), ("kd_audio", 5.0)]):
        append_record(results / "records.jsonl", ResultRecord.with_units(
            candidate_id=f"c{i}", family="hpn", size="reduced", method=method, dataset="tones", seed=0,
            metrics={"mss": mss, "rtf_stream_64": 0.1 * (i + 1), "params": 100.0 * (3 - i)}))
    return {"root": str(root), "data": str(data), "ckpt": str(ckpt), "results": str(results)}


def _fake_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddspbench.suite.sweep.runner as runner

    def quick(spec, ws, *, candidate_id, trial=None, seed=0, config_id=None):
        return ResultRecord.with_units(candidate_id=candidate_id, family=spec.family, size="reduced", method=spec.method,
                                       dataset="synthetic", seed=seed, config_id=config_id, trial=trial, study=ws.cfg.study,
                                       metrics={"mss": 1.0 + trial, "rtf_stream_64": 0.1, "param_bytes": 100.0})

    monkeypatch.setattr(runner, "run_candidate", quick)


JSON_RUNS = {
    "list": "list families --json",
    "mss": "mss {root}/a.wav {root}/b.wav --json",
    "fad": "fad {root}/a.npy {root}/b.npy --json",
    "data": "data --set recordings=1 --set clips_per_recording=1 --set timbres=flute-like --no-cache --out {tmp}/d --json",
    "train": "train --family hpn --size reduced --data {data} --steps 2 --batch-size 2 --out {tmp}/t --json",
    "compress": "compress --method quantize --teacher {ckpt} --out {tmp}/c --json",
    "synth": "synth --model {ckpt} --data {data} --out {tmp}/s --json",
    "evaluate": "evaluate --model {ckpt} --data {data} --metrics mss,size --out {tmp}/e --json",
    "report": "report --results {results} --out {tmp}/r --json",
    "sweep": "sweep --trials 2 --no-report --out {tmp}/sw --json",
    "worker": "worker --study smoke --trials 3 --out {tmp}/sw --json",
}


@pytest.mark.parametrize("command", sorted(JSON_RUNS))
def test_json_is_the_only_thing_on_stdout(command, world, tmp_path, capsys, monkeypatch):
    _fake_trials(monkeypatch)
    if command == "worker":  # a worker joins a study a sweep made
        assert main(JSON_RUNS["sweep"].format(**world, tmp=tmp_path).split()) == 0
        capsys.readouterr()
    argv = JSON_RUNS[command].format(**world, tmp=tmp_path).split()
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    doc = json.loads(out)  # one JSON document, nothing else
    assert isinstance(doc, dict) and doc
    assert out.strip().startswith("{") and out.strip().endswith("}")


def test_json_in_a_real_process(world):
    out = subprocess.run([sys.executable, "-m", "ddspbench", "mss", f"{world['root']}/a.wav", f"{world['root']}/b.wav", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["unit"] == "1"


def test_report_out_defaults_to_the_results_folder(world, capsys):
    results = Path(world["results"])
    assert main(["report", "--results", str(results), "--family", "hpn"]) == 0
    assert (results / "report" / "leaderboard.csv").is_file()
    capsys.readouterr()
