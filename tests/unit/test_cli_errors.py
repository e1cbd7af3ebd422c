"""One boundary: every bad input across every command gives one ``error:`` line on stderr, exit 2, no traceback.

The table runs in-process through :func:`ddspbench.suite.cli.main` (fast); a few cases run as real subprocesses.
Real bugs are different: one line naming the bug and suggesting ``--debug`` (exit 1); ``--debug`` shows
the traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.data.store import save_dataset
from tests.unit.test_train import make_clips

pytestmark = pytest.mark.usefixtures("one_thread")

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every kind of bad (and one good) input the table refers to, by name."""
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES

    load_catalog()
    root = tmp_path_factory.mktemp("bad")
    data = root / "data"
    save_dataset(data, {"train": make_clips(4), "valid": make_clips(2, seed=1, prefix="v"),
                        "test": make_clips(2, seed=2, prefix="t")}, {"name": "tones"})
    ckpt = save_checkpoint(SIZES.get("hpn/reduced")(), root / "hpn.pt", {})
    payload = torch.load(ckpt, weights_only=True)
    ddx7 = SIZES.get("ddx7/reduced")()
    foreign = root / "foreign.pt"  # ddx7's identity, hpn's weights
    torch.save({**payload, "family": "ddx7", "config": dict(ddx7.config), "size": "reduced"}, foreign)
    (root / "zero.pt").write_bytes(b"")
    (root / "garbage.pt").write_bytes(b"PK\x03\x04 not a zip at all")
    (root / "afile").write_text("I am a file\n")
    (root / "nonutf.yaml").write_bytes(b"preset: smoke\nstudy: caf\xe9\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdef", "bcdefg"))
    (root / "bomb.yaml").write_text("data:\n  options:\n" + "".join("    " + line + "\n" for line in bomb.splitlines()))
    (root / "threads0.yaml").write_text("evaluation: {threads: 0}\n")
    (root / "badmetric.yaml").write_text("evaluation: {metrics: [mss, nosuch]}\n")
    (root / "buffer100.yaml").write_text("evaluation: {stream_buffers: [100]}\n")
    (root / "maxtrain.yaml").write_text("data: {max_train: -1}\n")
    (root / "garbled").mkdir()
    (root / "garbled" / "study.journal").write_bytes(b'{"op_code": 0, "worker_id": "w"}\nthis is not json\n{"op_code": 1}\n')
    (root / "empty").mkdir()
    (root / "badrecords").mkdir()
    (root / "badrecords" / "records.jsonl").write_bytes(b'{"schema": "ddspbench.result/1", "oops": 1}\n\xff\xfe\n')
    np.save(root / "bad.npy", np.zeros((3,), dtype=np.float32))
    (root / "notaudio.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    import soundfile as sf

    sf.write(root / "tone.wav", np.zeros(16000, dtype=np.float32), 16000)
    return {"root": str(root), "data": str(data), "ckpt": str(ckpt), "foreign": str(foreign),
            "zero": str(root / "zero.pt"), "garbage": str(root / "garbage.pt"), "file": str(root / "afile"),
            "nonutf": str(root / "nonutf.yaml"), "bomb": str(root / "bomb.yaml"),
            "threads0": str(root / "threads0.yaml"), "badmetric": str(root / "badmetric.yaml"),
            "buffer100": str(root / "buffer100.yaml"), "maxtrain": str(root / "maxtrain.yaml"),
            "garbled": str(root / "garbled"), "empty": str(root / "empty"), "badrecords": str(root / "badrecords"),
            "badnpy": str(root / "bad.npy"), "notaudio": str(root / "notaudio.wav"), "wav": str(root / "tone.wav"),
            "missing": str(root / "does-not-exist")}


TRAIN = "train --family hpn --size reduced --data {data} --steps 1"
SWEEP = "sweep --no-report --setup-only"

BAD_INPUTS: list[tuple[str, str]] = [
    # train
    (f"{TRAIN} --out {{file}}", "exists and is not a folder"),
    ("train --family nosuch --size reduced --data {data} --steps 1 --out {new}", "nosuch"),
    ("train --family hpn --set hidden=-4 --data {data} --steps 1 --out {new}", "hidden"),
    ("train --family hpn --set hidden=abc --data {data} --steps 1 --out {new}", "cannot build hpn"),
    ("train --family hpn --set widths=[ --data {data} --steps 1 --out {new}", "not valid YAML"),
    ("train --family hpn --size reduced --data {data} --steps 0 --out {new}", "--steps"),
    (f"{TRAIN} --threads 0 --out {{new}}", "--threads"),
    (f"{TRAIN} --batch-size 0 --out {{new}}", "--batch-size"),
    (f"{TRAIN} --lr -1 --out {{new}}", "--lr"),
    (f"{TRAIN} --device cuda:99 --out {{new}}", "cuda"),
    (f"{TRAIN} --device tpu --out {{new}}", "unknown device"),
    ("train --family hpn --size nosuch --data {data} --steps 1 --out {new}", "unknown size"),
    ("train --family hpn --size reduced --data {missing} --steps 1 --out {new}", "does-not-exist"),
    ("train --family hpn --size reduced --data {file} --steps 1 --out {new}", "afile"),
    # compress
    ("compress --method kd_audio --teacher {zero} --out {new}", "empty file"),
    ("compress --method quantize --teacher {foreign} --out {new}", "do not fit a ddx7"),
    ("compress --method quantize --teacher {garbage} --out {new}", "not a loadable checkpoint"),
    ("compress --method nosuch --teacher {ckpt} --out {new}", "nosuch"),
    ("compress --method quantize --teacher {ckpt} --out {file}", "exists and is not a folder"),
    ("compress --method prune --teacher {ckpt} --set nosuch=1 --out {new}", "nosuch"),
    ("compress --method quantize --teacher {ckpt} --device cuda:99 --out {new}", "cuda"),
    ("compress --method quantize --teacher {ckpt} --batch-size 0 --out {new}", "--batch-size"),
    # evaluate
    ("evaluate --model {zero} --data {data}", "empty file"),
    ("evaluate --model {foreign} --data {data}", "do not fit a ddx7"),
    ("evaluate --model {ckpt} --data {data} --threads 0", "--threads"),
    ("evaluate --model {ckpt} --data {data} --buffers 100", "multiples of 64"),
    ("evaluate --model {ckpt} --data {data} --metrics nosuch", "unknown metric"),
    ("evaluate --model {ckpt} --data {data} --out {file}", "exists and is not a folder"),
    ("evaluate --model {ckpt} --data {data} --device cuda:99", "cuda"),
    ("evaluate --model {root} --data {data}", "checkpoint not found"),
    ("evaluate --model {ckpt} --data {data} --split nosuch", "nosuch"),
    ("evaluate --model {ckpt} --data {data} --limit 0", "--limit"),
    # synth
    ("synth --model {zero} --data {data} --out {new}", "empty file"),
    ("synth --model {ckpt} --data {data} --out {file}", "exists and is not a folder"),
    ("synth --model {ckpt} --data {data} --out {new} --batch-size 0", "--batch-size"),
    ("synth --model {ckpt} --data {data} --out {new} --device cuda:99", "cuda"),
    # data
    ("data --set recordings=abc --out {new}", "recordings"),
    ("data --set recordings=-3 --out {new}", "recordings"),
    ("data --set use_cache=maybe --out {new}", "use_cache"),
    ("data --set nosuch=1 --out {new}", "nosuch"),
    ("data --dataset nosuch --out {new}", "nosuch"),
    ("data --out {file}", "exists and is not a folder"),
    ("data --jobs 0 --out {new}", "--jobs"),
    ("data --set oops --out {new}", "KEY=VALUE"),
    # report
    ("report --results {missing}", "does not exist"),
    ("report --results {empty}", "{empty}"),
    ("report --results {badrecords}", "{badrecords}"),
    ("report --results {badrecords} --out {file}", "exists and is not a folder"),
    ("report --results {badrecords} --top 0", "--top"),
    # sweep
    (f"{SWEEP} --config {{nonutf}} --out {{new}}", "not UTF-8"),
    (f"{SWEEP} --config {{bomb}} --out {{new}}", "alias"),
    (f"{SWEEP} --config {{missing}} --out {{new}}", "not found"),
    (f"{SWEEP} --config {{threads0}} --out {{new}}", "evaluation.threads"),
    (f"{SWEEP} --config {{badmetric}} --out {{new}}", "evaluation.metrics"),
    (f"{SWEEP} --config {{buffer100}} --out {{new}}", "stream_buffers"),
    (f"{SWEEP} --config {{maxtrain}} --out {{new}}", "max_train"),
    (f"{SWEEP} --out {{file}}", "exists and is not a folder"),
    (f"{SWEEP} --trials 0 --out {{new}}", "trials"),
    (f"{SWEEP} --families nosuch --out {{new}}", "nosuch"),
    (f"{SWEEP} --storage nonsense --out {{new}}", "storage"),
    (f"{SWEEP} --storage journal://{{garbled}}/study.journal --out {{new}}", "line 2"),
    # worker
    ("worker --study nosuch --out {new}", "no study 'nosuch'"),
    ("worker --study nosuch --out {file}", "exists and is not a folder"),
    ("worker --study nosuch --out {new} --grace 0", "--grace"),
    # list, mss, fad
    ("list nosuch", "unknown registry"),
    ("mss {missing} {wav}", "not found"),
    ("mss {wav} {wav} --scales 3", "--scales"),
    ("mss {notaudio} {wav}", "notaudio.wav"),
    ("fad {missing} {missing}", "not found"),
    ("fad {empty} {empty}", "no audio files"),
    ("fad {badnpy} {badnpy}", "N x D"),
    ("fad {empty} {empty} --bootstrap -1", "--bootstrap"),
    ("fad {empty} {empty} --segment 0.01", "--segment"),
    (f"{SWEEP} --sizes hidden=-4 --out {{new}}", "hidden must be > 0"),
    # export
    ("export --model {zero} --format onnx --out {new}", "empty file"),
    ("export --model {ckpt} --format onnx --out {new} --buffer 100", "multiple of 64"),
    ("export --model {ckpt} --format torchscript --out {new} --clips 0", "--clips"),
    ("export --model {ckpt} --format engine --out {root}", "is a folder"),
    ("export --model {ckpt} --format engine --out {missing}/m.npz", "does not exist"),
    ("export --candidate t0000 --format engine --out {new}", "needs --results"),
    ("export --candidate t0000 --results {empty} --format engine --out {new}", "no records.jsonl"),
    # bench
    ("bench --results {empty} --out {new}", "no records.jsonl"),
    ("bench --results {badrecords} --out {file}", "exists and is not a folder"),
    ("bench --results {badrecords} --out {new} --buffers 100", "multiples of 64"),
    ("bench --results {badrecords} --out {new}", "no ok candidate"),
]
COMPRESS = "compress --method quantize --teacher {ckpt} --out {new}"
EVALUATE = "evaluate --model {ckpt} --data {data}"
SYNTH = "synth --model {ckpt} --data {data} --out {new}"
DATA = "data --out {new}"
REPORT = "report --results {badrecords}"
WORKER = "worker --study nosuch --out {new}"
FAD = "fad {empty} {empty}"
MSS = "mss {wav} {wav}"
# Hostile numbers and names (issue #24): non-finite, out of range, wrong kind, empty, files that are not what they
# claim, sizes beyond the machine, control characters. Every one stops before any work with one line.
BOUND_INPUTS: list[tuple[str, str]] = [
    # export and bench: their numbers declared with suite.bounds like every other command's
    ("export --model {ckpt} --format onnx --out {new} --buffer 0", "--buffer"),
    ("export --model {ckpt} --format onnx --out {new} --buffer inf", "--buffer"),
    ("export --model {ckpt} --format onnx --out {new} --frames 1e9", "--frames"),
    ("export --model {ckpt} --format onnx --out {new} --seed -1", "--seed"),
    ("export --model {ckpt} --format onnx --out {new} --clips nan", "--clips"),
    ("bench --results {badrecords} --out {new} --frames 0", "--frames"),
    ("bench --results {badrecords} --out {new} --threads -2", "--threads"),
    ("bench --results {badrecords} --out {new} --buffers 64,nan", "--buffers"),
    # train: every numeric flag, and constructor settings
    (f"{TRAIN} --lr inf --out {{new}}", "--lr: must be a finite number > 0"),
    (f"{TRAIN} --lr nan --out {{new}}", "--lr"),
    (f"{TRAIN} --lr -inf --out {{new}}", "--lr"),
    (f"{TRAIN} --lr 1e9 --out {{new}}", "--lr"),
    (f"{TRAIN} --lr 0 --out {{new}}", "--lr"),
    (f"{TRAIN} --seed -1 --out {{new}}", "--seed: must be an integer in [0, 4294967295]"),
    (f"{TRAIN} --seed 4294967296 --out {{new}}", "--seed"),
    (f"{TRAIN} --batch-size 100000 --out {{new}}", "--batch-size"),
    (f"{TRAIN} --frames 3 --out {{new}}", "--frames"),
    (f"{TRAIN} --frames 100000 --out {{new}}", "--frames"),
    (f"{TRAIN} --valid-every 0 --out {{new}}", "--valid-every"),
    (f"{TRAIN} --checkpoint-every -5 --out {{new}}", "--checkpoint-every"),
    (f"{TRAIN} --decay-every 1e3 --out {{new}}", "--decay-every"),
    (f"{TRAIN} --threads 100000 --out {{new}}", "--threads"),
    ("train --family hpn --size reduced --data {data} --steps 1000000000 --out {new}", "--steps"),
    ("train --family hpn --size reduced --data {data} --steps nan --out {new}", "--steps"),
    ("train --family hpn --set hidden=1000000000 --data {data} --steps 1 --out {new}", "hidden must be an integer"),
    ("train --family hpn --set hidden=65536 --data {data} --steps 1 --out {new}", "needs an estimated"),
    ("train --family hpn --set hidden=.nan --data {data} --steps 1 --out {new}", "hidden must be an integer"),
    ("train --family hpn --set n_harmonics=.inf --data {data} --steps 1 --out {new}", "n_harmonics"),
    ("train --family hpn --set hidden=1.5 --data {data} --steps 1 --out {new}", "hidden must be an integer"),
    ("train --family ddx7 --set n_blocks=true --data {data} --steps 1 --out {new}", "n_blocks"),
    ("train --family hpn --set hidden= --data {data} --steps 1 --out {new}", "no value"),
    # compress
    (f"{COMPRESS} --lr inf", "--lr"),
    (f"{COMPRESS} --lr nan", "--lr"),
    (f"{COMPRESS} --steps -1", "--steps"),
    (f"{COMPRESS} --batch-size 5000", "--batch-size"),
    (f"{COMPRESS} --frames 2", "--frames"),
    (f"{COMPRESS} --seed -3", "--seed"),
    ("compress --method prune --teacher {ckpt} --set ratio=5 --out {new}", "prune option ratio must be"),
    ("compress --method prune --teacher {ckpt} --set ratio=.nan --out {new}", "ratio"),
    ("compress --method kd_audio --teacher {ckpt} --set kd_weight=.inf --out {new}", "kd_weight"),
    ("compress --method prune+quantize --teacher {ckpt} --set prune.ratio=2 --out {new}", "ratio"),
    ("compress --method quantize --teacher {ckpt} --set method=nosuch --out {new}", "method must be one of"),
    ("compress --method kd_audio --teacher {ckpt} --set steps=-1 --out {new}", "steps"),
    ("compress --method kd_audio --teacher {ckpt} --set hidden=1.5 --out {new}", "hidden"),
    ("compress --method kd_audio --teacher {ckpt} --set channels=[] --out {new}", "channels"),
    # evaluate
    (f"{EVALUATE} --threads 1000", "--threads"),
    (f"{EVALUATE} --limit -1", "--limit"),
    (f"{EVALUATE} --n-audio -1", "--n-audio"),
    (f"{EVALUATE} --n-audio 1e9", "--n-audio"),
    (f"{EVALUATE} --frames 0", "--frames"),
    (f"{EVALUATE} --seed 1.5", "--seed"),
    (f"{EVALUATE} --buffers 64,nan", "--buffers"),
    (f"{EVALUATE} --buffers 640000", "--buffers"),
    (f"{EVALUATE} --buffers -64", "--buffers"),
    # synth
    (f"{SYNTH} --limit 0", "--limit"),
    (f"{SYNTH} --batch-size 1e9", "--batch-size"),
    (f"{SYNTH} --batch-size nan", "--batch-size"),
    (f"{SYNTH} --seed -1", "--seed"),
    # data: flags, then every kind of dataset option the declarations refuse
    (f"{DATA} --seed -1", "--seed: must be an integer in [0, 4294967295]"),
    (f"{DATA} --seed 4294967296", "--seed"),
    (f"{DATA} --jobs 1000", "--jobs"),
    (f"{DATA} --jobs -1", "--jobs"),
    (f"{DATA} --set recordings=1000000000", "option recordings must be an integer in [1, 100000]"),
    (f"{DATA} --set recordings=100000", "needs an estimated"),
    (f"{DATA} --set recordings=.inf", "recordings"),
    (f"{DATA} --set clips_per_recording=0", "clips_per_recording"),
    (f"{DATA} --set clips_per_recording=1.5", "clips_per_recording"),
    (f"{DATA} --set clips_per_recording=1000 --set recordings=100000", "needs an estimated"),
    (f"{DATA} --set timbres=", "no value"),
    (f"{DATA} --set timbres=[]", "option timbres must name at least one"),
    (f"{DATA} --set timbres=[1,2]", "timbres"),
    (f"{DATA} --set timbres=nosuch", "unknown 'nosuch'"),
    (f"{DATA} --set jobs=0", "option jobs"),
    (f"{DATA} --set use_cache=1", "use_cache"),
    (f"{DATA} --dataset soundfont --set soundfont={{file}}", "is not a SoundFont file"),
    (f"{DATA} --dataset soundfont --set soundfont=/etc/passwd", "/etc/passwd is not a SoundFont file"),
    (f"{DATA} --dataset soundfont --set soundfont={{missing}}", "soundfont not found"),
    (f"{DATA} --dataset soundfont --set soundfont={{wav}}", "is not a SoundFont file"),
    (f"{DATA} --dataset soundfont --set instruments=[]", "instruments"),
    (f"{DATA} --dataset soundfont --set recordings=-1", "recordings"),
    (f"{DATA} --dataset folder --path {{root}} --set min_confidence=1.5", "min_confidence"),
    (f"{DATA} --dataset folder --path {{root}} --set top_db=.nan", "top_db"),
    (f"{DATA} --dataset folder --path {{root}} --set f0_stride=0", "f0_stride"),
    (f"{DATA} --dataset folder --path {{root}} --set split=nosuch", "split must be one of recording, chunk"),
    (f"{DATA} --dataset folder --path {{root}} --set instruments=", "no value"),
    (f"{DATA} --set timbres=\x1b[31mred", "\\x1b[31mred"),
    # report
    (f"{REPORT} --max-rtf nan", "--max-rtf"),
    (f"{REPORT} --max-rtf -1", "--max-rtf"),
    (f"{REPORT} --max-params inf", "--max-params"),
    (f"{REPORT} --max-mb 0", "--max-mb"),
    (f"{REPORT} --clips -1", "--clips"),
    (f"{REPORT} --clips 1e9", "--clips"),
    (f"{REPORT} --top inf", "--top"),
    # sweep
    (f"{SWEEP} --trials 1e9 --out {{new}}", "--trials"),
    (f"{SWEEP} --trials 1000000 --out {{new}}", "--trials"),
    (f"{SWEEP} --seed -1 --out {{new}}", "--seed"),
    (f"{SWEEP} --repeats 0 --out {{new}}", "--repeats"),
    (f"{SWEEP} --repeats 1000 --out {{new}}", "--repeats"),
    (f"{SWEEP} --sizes hidden=1000000000 --out {{new}}", "hidden must be an integer"),
    # worker
    (f"{WORKER} --grace nan", "--grace"),
    (f"{WORKER} --grace -1", "--grace"),
    (f"{WORKER} --grace inf", "--grace"),
    (f"{WORKER} --trials 0", "--trials"),
    # mss, fad, list
    (f"{MSS} --scales nan", "--scales"),
    (f"{MSS} --scales 1000000", "--scales"),
    (f"{MSS} --scales -4", "--scales"),
    (f"{FAD} --segment nan", "--segment"),
    (f"{FAD} --segment inf", "--segment"),
    (f"{FAD} --bootstrap 1e9", "--bootstrap"),
    (f"{FAD} --seed -1", "--seed"),
    ("list sizes\x1b[2J\x1b[31mRED", "sizes\\x1b[2J"),
    ("list --pattern * sizes extra\x1b[2J", "extra\\x1b[2J"),
]
BAD_INPUTS += BOUND_INPUTS
if not CUDA:
    BAD_INPUTS += [(f"{TRAIN} --device cuda --out {{new}}", "CUDA is not available"),
                   (f"{SWEEP} --device cuda --out {{new}}", "CUDA is not available")]


def _argv(template: str, files: dict[str, str], tmp_path: Path) -> list[str]:
    return template.format(**files, new=str(tmp_path / "new-out")).split()


def _assert_one_error_line(err: str, match: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert "\x1b" not in err, err  # names echoed back have their control characters escaped
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), err
    assert match in errors[0], err


def test_the_table_is_large_and_covers_every_command():
    commands = {t.split()[0] for t, _ in BAD_INPUTS}
    from ddspbench.suite.cli import command_modules

    assert len(BAD_INPUTS) >= 40
    assert commands == set(command_modules())
    assert len(BOUND_INPUTS) >= 60
    assert {t.split()[0] for t, _ in BOUND_INPUTS} == set(command_modules())


@pytest.mark.parametrize(("template", "match"), BAD_INPUTS, ids=[t[:60] for t, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(template, match, files, tmp_path, capsys, monkeypatch):
    match = match.format(**files)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code = main(_argv(template, files, tmp_path))
    err = capsys.readouterr().err
    assert code == 2, err
    _assert_one_error_line(err, match)
    assert list(cwd.iterdir()) == [], "bad input wrote into the working directory"
    if (template, match) in BOUND_INPUTS:  # refused before any work: not even --out is made
        assert not (tmp_path / "new-out").exists(), "bad input created --out"


OUT_COMMANDS = [
    f"{TRAIN} --out {{out}}",
    "compress --method quantize --teacher {ckpt} --out {out}",
    "evaluate --model {ckpt} --data {data} --metrics size --out {out}",
    "synth --model {ckpt} --data {data} --out {out}",
    "data --set recordings=1 --out {out}",
    "report --results {badrecords} --out {out}",
    f"{SWEEP} --out {{out}}",
    "worker --study s --out {out}",
]


@pytest.mark.parametrize("template", OUT_COMMANDS, ids=[t.split()[0] for t in OUT_COMMANDS])
def test_read_only_out_is_refused_before_any_work(template, files, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    # root ignores permission bits, so the read-only folder is one os.access says is not writable
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == ro else real_access(p, mode, *a, **k))
    called: list[str] = []
    import ddspbench.suite.checkpoint

    monkeypatch.setattr(ddspbench.suite.checkpoint, "load_checkpoint", lambda *a, **k: called.append("work"))
    code = main(template.format(**files, out=str(ro / "sub")).split())
    err = capsys.readouterr().err
    assert code == 2 and not called, err
    _assert_one_error_line(err, "is not writable")
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["evaluate", "--model", "{zero}", "--data", "{data}"],
    ["sweep", "--setup-only", "--config", "{nonutf}", "--out", "{new}"],
    ["data", "--set", "recordings=abc", "--out", "{new}"],
])
def test_bad_input_in_a_real_process(argv, files, tmp_path):
    args = [a.format(**files, new=str(tmp_path / "o")) for a in argv]
    out = subprocess.run([sys.executable, "-m", "ddspbench", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    _assert_one_error_line(out.stderr, "")


def test_a_bug_is_one_line_naming_it_and_debug_shows_the_traceback(monkeypatch, capsys):
    import ddspbench.suite.commands.list as list_cmd

    def broken(args):
        raise KeyError("no_such_key")

    monkeypatch.setattr(list_cmd, "run", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KeyError" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(KeyError):
        main(["--debug", "list"])
    with pytest.raises(KeyError):
        main(["list", "--debug"])


def test_file_system_errors_are_user_errors(monkeypatch, capsys, tmp_path):
    import errno

    import ddspbench.suite.commands.list as list_cmd

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(list_cmd, "run", full)
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'x'}: No space left on device\n"


def test_report_goes_on_past_bad_record_lines_with_a_warning(tmp_path, capsys):
    from ddspbench.suite.records import ResultRecord, append_record

    for i, mss in enumerate([4.0, 5.0]):
        append_record(tmp_path / "records.jsonl", ResultRecord.with_units(
            candidate_id=f"c{i}", family="hpn", size="reduced", method="scratch", dataset="d", seed=0,
            metrics={"mss": mss, "rtf_stream_64": 0.1 + i, "params": 10.0}))
    with open(tmp_path / "records.jsonl", "ab") as fh:
        fh.write(b'{"schema": "ddspbench.result/1", "candidate_id": "x", "bogus": 1}\n\xff\n')
    assert main(["report", "--results", str(tmp_path), "--format", "csv", "--json"]) == 0
    cap = capsys.readouterr()
    warnings = [line for line in cap.err.splitlines() if line.startswith("warning: ")]
    assert any(":3: skipped" in w and "missing" in w for w in warnings)  # an unknown field is kept; missing ones are not and any(":4: skipped" in w for w in warnings)
    assert "Traceback" not in cap.err and '"rows": 2' in cap.out
