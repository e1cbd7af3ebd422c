from __future__ import annotations

import dataclasses
import io
import json

import pandas as pd
import pytest
from rich.console import Console

from ddspbench.reports import leaderboard, load_results, print_leaderboard
from ddspbench.reports.tables import (
    csv_units,
    failed_rows,
    filter_frame,
    markdown_table,
    to_csv,
    to_json_obj,
    to_markdown,
)
from ddspbench.suite.errors import UserError
from ddspbench.suite.records import append_record
from tests.unit.test_reports_data import HOSTILE, make_records, write_results_dir


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    root = write_results_dir(tmp_path_factory.mktemp("tab") / "r", audio=False, hostile=True)
    return load_results([root])


def test_leaderboard_ranks_ok_rows_by_the_metric(frame):
    board = leaderboard(frame, "mss")
    assert board["rank"].tolist() == list(range(1, len(board) + 1))
    assert board["mss"].is_monotonic_increasing
    assert len(board) == (frame["status"] == "ok").sum()
    assert {"mss_ci_low", "mss_ci_high", "rtf_stream_64", "param_bytes"} <= set(board.columns)
    by_rtf = leaderboard(frame, "rtf_stream_64")
    assert by_rtf["rtf_stream_64"].is_monotonic_increasing and by_rtf.columns[8] == "rtf_stream_64"
    with pytest.raises(UserError, match="metrics present"):
        leaderboard(frame, "kad")


def test_filters_by_family_instrument_and_budget(frame):
    hpn = filter_frame(frame, family="hpn")
    assert set(hpn["family"]) == {"hpn"} and hpn.attrs["units"] == frame.attrs["units"]
    fl = filter_frame(frame, instrument="flute,violin")
    assert set(fl["instrument"]) == {"flute", "violin"}
    fast = filter_frame(frame, max_rtf=0.1)
    ok = fast[(fast["status"] == "ok") & (fast["method"] != "teacher")]
    assert len(ok) and (ok["rtf_stream_64"] <= 0.1).all()
    assert (fast["method"] == "teacher").sum() == 4  # the reference row stays
    assert (fast["status"] == "failed").sum() == 4  # failed rows are listed, never ranked
    small = filter_frame(frame, max_params=30_000, max_mb=0.05)
    ok = small[(small["status"] == "ok") & (small["method"] != "teacher")]
    assert len(ok) and (ok["params"] <= 30_000).all() and (ok["param_bytes"] <= 50_000).all()
    off = filter_frame(frame, max_rtf=0.1, rtf_metric="rtf_offline")
    assert len(off[off["method"] != "teacher"]) > len(fast[fast["method"] != "teacher"])
    with pytest.raises(UserError, match="rtf_stream_4096"):
        filter_frame(frame, max_rtf=1.0, rtf_metric="rtf_stream_4096")


def test_markdown_csv_json_carry_units_intervals_and_failures(frame):
    board = leaderboard(frame, "mss")
    failed = failed_rows(frame)
    md = to_markdown(board, failed)
    assert "| mss [1] |" in md and "param_bytes [B]" in md and "Failed candidates (4)" in md
    assert "CandidateFailed: NaN in model output" in md
    first = board.iloc[0]
    assert f"[{first['mss_ci_low']:.4g}, {first['mss_ci_high']:.4g}]" in md
    csv = pd.read_csv(io.StringIO(to_csv(board)))
    assert {"mss", "mss_ci_low", "rtf_stream_64", "params", "hparams"} <= set(csv.columns)
    assert not [c for c in csv.columns if "[" in c]  # plain names: df["mss"] works
    assert csv["mss"].iloc[0] == pytest.approx(first["mss"])
    units = csv_units(board)
    assert units["mss"] == "1" and units["mss_ci_low"] == "1" and units["param_bytes"] == "B"
    assert set(units) <= set(csv.columns)
    obj = json.loads(json.dumps(to_json_obj(board, failed), allow_nan=False))
    assert obj["units"]["param_bytes"] == "B" and obj["rows"][0]["intervals"]["mss"][0] == pytest.approx(first["mss_ci_low"])
    assert len(obj["failed"]) == 4 and obj["failed"][0]["error"]


def test_markdown_cells_escape_pipes():
    md = markdown_table(["a|b"], [["x|y\nz<b>"]])
    assert md.splitlines()[2] == "| x\\|y z&lt;b&gt; |" and md.splitlines()[0] == "| a\\|b |"


def test_rich_leaderboard_prints_names_literally(frame):
    console = Console(record=True, width=200, file=io.StringIO())
    board = print_leaderboard(frame, console=console, top=60)
    text = console.export_text()
    assert HOSTILE in text  # shown as text, not interpreted
    assert "Failed candidates (4)" in text and "rtf64 [s/s]" in text
    assert len(board) == (frame["status"] == "ok").sum()
    weird = frame.copy()
    weird.loc[weird.index[0], "uid"] = "[bold red]x[/bold red]"
    weird.attrs = frame.attrs
    console = Console(record=True, width=200, file=io.StringIO())
    print_leaderboard(weird, console=console, top=60)
    assert "[bold red]x[/bold red]" in console.export_text()


def test_hyperparameters_are_named_in_every_output(tmp_path):
    from ddspbench.reports.load import hparams_text, hyperparameters
    from ddspbench.suite.recipe import Recipe, Step

    chain = Recipe("hpn", "reduced", (Step("prune", {"ratio": 0.6075, "finetune_steps": 0}), Step("quantize", {"method": "bf16"})))
    hp = hyperparameters(chain)
    assert hp == {"prune.finetune_steps": 0, "prune.ratio": 0.6075, "quantize.method": "bf16"}
    assert hparams_text(chain) == "prune.finetune_steps=0 prune.ratio=0.608 quantize.method=bf16"
    assert hparams_text(Recipe("hpn", None, (Step("quantize", {"method": "int8"}),))) == "method=int8"
    # None is the compressor's own default (prune fine-tunes the family's student budget), not "no fine-tuning"
    assert hparams_text(Recipe("hpn", None, (Step("prune", {"finetune_steps": None, "ratio": 0.675}),))) == \
        "finetune_steps=auto ratio=0.675"
    recs = make_records(tmp_path, families=("hpn",), instruments=("violin",))
    recs[1] = dataclasses.replace(recs[1], recipe=Recipe("hpn", None, (Step("quantize", {"method": "int8"}),)))
    recs[2] = dataclasses.replace(recs[2], recipe=Recipe("hpn", None, (Step("quantize", {"method": "bf16"}),)))
    for r in recs:
        append_record(tmp_path / "records.jsonl", r)
    frame = load_results(tmp_path)
    board = leaderboard(frame, "mss")
    row1 = board[board["uid"] == recs[1].candidate_id].iloc[0]
    assert row1["hparams"] == "quantize.method=int8" or row1["hparams"] == "method=int8"
    csv = pd.read_csv(io.StringIO(to_csv(board)))
    assert set(csv.loc[csv["uid"].isin([recs[1].candidate_id, recs[2].candidate_id]), "quantize.method"]) == {"int8", "bf16"}
    obj = to_json_obj(board)
    by_id = {r["uid"]: r for r in obj["rows"]}
    assert by_id[recs[2].candidate_id]["hyperparameters"] == {"quantize.method": "bf16"}
    assert "int8" in to_markdown(board) and "bf16" in to_markdown(board)
    console = Console(record=True, width=80, file=io.StringIO())
    print_leaderboard(frame, console=console, top=60)
    text = console.export_text()
    assert "int8" in text and max(len(line) for line in text.splitlines()) <= 80


def test_narrow_terminal_leaderboard_never_wraps_rows(frame):
    for width in (80, 100, 160):
        console = Console(record=True, width=width, file=io.StringIO())
        board = print_leaderboard(frame, console=console, top=60)
        lines = console.export_text().splitlines()
        end = next(i for i, ln in enumerate(lines) if ln.startswith("└"))
        body = [ln for ln in lines[:end] if ln.startswith("│")]
        top = min(60, len(board))
        assert len([ln for ln in body if ln.split("│")[1].strip()]) == top  # one line per row: no fragments
        assert len(body) == top
        header = next(ln for ln in lines if ln.startswith("┃"))
        assert "candidate" in header and "method" in header and "mss" in header
        assert "family" in header  # issue 21: a DDX7 row must not read as if it ranked among HpN rows
        assert not [ln for ln in body if "…" in ln.split("│")[-2]]  # the ranked metric is never cut
        assert max(len(ln) for ln in lines) <= width


def test_terminal_leaderboard_says_when_rows_are_smoke_numbers(frame):
    smoke = frame.copy()
    smoke["preset"] = "smoke"
    smoke.attrs = frame.attrs
    for df, expected in ((frame, False), (smoke, True)):
        console = Console(record=True, width=100, file=io.StringIO())
        print_leaderboard(df, console=console, top=5)
        assert ("smoke preset" in console.export_text()) is expected


def test_a_seed_mean_is_named_by_its_seeds_not_as_one_trial(tmp_path):
    from ddspbench.reports import load_results
    from tests.unit.test_reports_seeds import _write

    df = load_results([_write(tmp_path / "r")])
    console = Console(record=True, width=80, file=io.StringIO())
    print_leaderboard(df, console=console, top=10)
    text = console.export_text()
    assert "c-kd (3 seeds)" in text and "c-scratch (3 seeds)" in text and "t0006 (" not in text
