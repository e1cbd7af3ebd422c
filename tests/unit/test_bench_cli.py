"""`ddspbench bench` re-times a results directory's ok candidates on this machine, with a system description."""

from __future__ import annotations

import json

import pytest

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.data.store import save_dataset
from ddspbench.suite.records import read_records
from tests.unit.test_train import make_clips

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_retimes_ok_candidates_and_describes_the_system(tmp_path, capsys):
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import SIZES

    load_catalog()
    data = tmp_path / "d"
    save_dataset(data, {"train": make_clips(2), "valid": make_clips(2, seed=1), "test": make_clips(2, frames=40)},
                 {"name": "t"})
    results = tmp_path / "res"
    ckpt = str(save_checkpoint(SIZES.get("ddx7/reduced")(), tmp_path / "m.pt", {"candidate_id": "m"}))
    assert main(["evaluate", "--model", ckpt, "--data", str(data), "--metrics", "mss,stream", "--buffers", "64,512",
                 "--speed-backend", "eager", "--out", str(results), "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "here"
    assert main(["bench", "--results", str(results), "--out", str(out), "--data", str(data), "--buffers", "64,256",
                 "--speed-backend", "torchscript", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["system"]) >= {"cpu_model", "board", "cores", "governor", "arch", "runtimes"}
    assert printed["system"]["runtimes"]["torch"]
    (src,) = read_records([results / "records.jsonl"])
    (rec,) = read_records([out / "records.jsonl"])
    assert rec.candidate_id == src.candidate_id and rec.metrics["mss"] == src.metrics["mss"]  # quality kept
    assert "rtf_stream_512" not in rec.metrics  # the old machine's figures are gone, not mixed in
    assert rec.metric_defs["rtf_stream_256"].endswith("backend=torchscript") and rec.metrics["rtf_stream_64"] > 0
    assert rec.provenance["speed_backend"] == "torchscript" and rec.provenance["system"] == printed["system"]
    assert rec.provenance["retimed_from"] == str(results.resolve())
    from ddspbench import load_results

    df = load_results(out)  # a results directory of its own: reports read it
    assert list(df["candidate_id"]) == ["m"] and df["checkpoint"].iloc[0] == str((tmp_path / "m.pt").resolve())
    assert main(["bench", "--results", str(results), "--out", str(results)]) == 2
    assert "--out must differ" in capsys.readouterr().err
