"""Names read from files (candidate ids in checkpoints, clip ids in datasets) never become paths outside --out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.commands.synth import safe_name
from ddspbench.suite.data.store import save_dataset
from tests.unit.test_train import make_clips

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("name", "expected"), [
    ("../../../escape", "escape"), ("/etc/passwd", "etc_passwd"), ("..", "clip"), ("a/../b", "a_.._b"),
    ("t0001", "t0001"), ("x" * 500, "x" * 120), ("\x00evil", "evil"),
])
def test_safe_name_is_one_harmless_path_component(name, expected):
    got = safe_name(name)
    assert got == expected and "/" not in got and got not in (".", "..")


def test_a_hostile_candidate_id_stays_inside_out(tmp_path, capsys):
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES

    load_catalog()
    work = tmp_path / "a" / "b" / "c"
    data = work / "data"
    save_dataset(data, {"train": make_clips(2), "valid": make_clips(2, seed=1, prefix="v"),
                        "test": make_clips(2, seed=2, prefix="../../../clip")}, {"name": "tones"})
    ckpt = save_checkpoint(SIZES.get("hpn/reduced")(), work / "m.pt", {"candidate_id": "../../../escape"})
    out = work / "out"
    before = {p for p in tmp_path.rglob("*")}
    assert main(["evaluate", "--model", str(ckpt), "--data", str(data), "--metrics", "mss", "--n-audio", "2",
                 "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["candidate_id"] == "escape"
    new = {p for p in tmp_path.rglob("*")} - before
    assert new and all(p == out or out in p.parents for p in new), sorted(map(str, new))
    assert len(list((out / "candidates" / "escape" / "audio").glob("*.wav"))) == 2
    assert len(list((out / "targets").glob("*.wav"))) == 2
    assert not any(Path(p).name == "escape" for p in new if out not in Path(p).parents)
