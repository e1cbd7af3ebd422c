"""``ddspbench data`` end to end: the synthetic default, the summary, cache reuse, exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from ddspbench.suite.cli import main
from ddspbench.suite.data import load_split


def test_data_synthetic_cli_prints_summary_and_reuses_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["data", "--dataset", "synthetic", "--cache", str(tmp_path / "c"), "--set", "recordings=1",
            "--set", "clips_per_recording=2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "clips: 6" in out and "24.0 s" in out
    assert "cache: 0 hits, 3 misses" in out
    assert "flute-like 2" in out
    assert main([*args, "--out", str(tmp_path / "b"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cache"]["hits"] == 3 and summary["clips"] == 6
    assert sum(summary["splits"].values()) == 6
    a, b = load_split(tmp_path / "a", "train"), load_split(tmp_path / "b", "train")
    assert np.array_equal(a.audio, b.audio)


@pytest.mark.slow
def test_default_synthetic_dataset_is_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    assert main(["data", "--dataset", "synthetic", "--out", str(tmp_path / "d"), "--no-cache", "--json"]) == 0
    wall = time.perf_counter() - t0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] >= 60 and summary["seconds"] >= 240.0  # a few minutes of audio
    assert all(n > 0 for n in summary["splits"].values())
    # "well under a minute on 2 cores": generous bound, timing is noisy on a shared machine
    assert wall < 60.0


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "--dataset", "synthetic", "--set", "bogus=1"],
        ["data", "--dataset", "synthetic", "--set", "novalue"],
        ["data", "--dataset", "synthetic", "--f0", "pyin"],
        ["data", "--dataset", "nope"],
        ["data", "--dataset", "synthetic", "--path", "/nonexistent"],
    ],
)
def test_bad_cli_input_exits_2_with_one_line(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_help_names_real_options() -> None:
    import argparse
    import re

    from ddspbench.suite.commands import data as data_cmd
    from ddspbench.suite.data import dataset_options

    p = argparse.ArgumentParser()
    data_cmd.add_arguments(p)
    epilog = p.epilog or ""
    checked = []
    for part in epilog.split("dataset options (--set): ")[1].split(". "):
        name, _, opts = part.partition(": ")
        for opt in re.findall(r"(?:^|, )([a-z0-9_]+) \(", opts):
            assert opt in dataset_options(name), (name, opt)
            checked.append(opt)
    assert len(checked) >= 10
