"""One typed recipe from sampler to record (issue 23): records carry ``recipe`` and ``steps``, old rows are upgraded
on load, old results folders report byte for byte as committed, and no code reads method or parameter names back
out of strings except the parsers of user input and the schema-1 upgrader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ddspbench.suite.recipe import (
    DISTILLATION,
    FROM_SCRATCH,
    PRUNING,
    QUANTIZATION,
    REFERENCE,
    Recipe,
    Step,
    StepReport,
)
from ddspbench.suite.records import SCHEMA, SCHEMA_1, ResultRecord, read_records
from ddspbench.suite.upgrade import upgrade_row

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "benchmarks" / "results_compare"


def _old_row(**over: object) -> dict:
    row = {"schema": SCHEMA_1, "candidate_id": "t0001", "family": "hpn", "size": "full:pruned", "method": "prune+quantize",
           "dataset": "synthetic", "seed": 0, "status": "ok", "error": None, "study": "s", "trial": 1, "instrument": None,
           "metrics": {"mss": 1.0}, "units": {"mss": "1"}, "per_clip": {}, "intervals": {}, "metric_defs": {},
           "artifacts": {}, "provenance": {}, "method_params": {
               "prune": {"ratio": 0.5}, "quantize": {"method": "int8"}, "preset": "smoke",
               "compressor": {"method": "prune+quantize", "params": {"prune.ratio": 0.5}, "chain": ["prune", "quantize"],
                              "steps": [{"method": "prune", "params": {"ratio": 0.5}, "finetune": {"steps": 3, "best_valid": 2.0},
                                         "before": {"params": 10}, "after": {"params": 5}, "seconds": 1.0},
                                        {"method": "quantize", "params": {"method": "int8"}, "before": {}, "after": {},
                                         "seconds": 0.1}]}}}
    row.update(over)
    return row


def test_a_schema_1_row_becomes_a_recipe_with_tagged_step_reports() -> None:
    rec = ResultRecord.from_dict(_old_row())
    assert rec.schema == SCHEMA and rec.recipe == Recipe("hpn", None, (Step("prune", {"ratio": 0.5}), Step("quantize", {"method": "int8"})))
    assert rec.method == "prune+quantize" and rec.tags == {PRUNING, QUANTIZATION}
    assert [s.method for s in rec.steps] == ["prune", "quantize"] and rec.steps[0].training == {"steps": 3, "best_valid": 2.0}
    assert rec.provenance["preset"] == "smoke" and rec.steps[-1].size_label == "full:pruned"
    # every shape of schema-1 parameters: dotted (compress), raw sampler names (a failed trial), nested (a sweep)
    dotted = ResultRecord.from_dict(_old_row(method_params={"prune.ratio": 0.3, "quantize.method": "bf16"}))
    assert dotted.recipe is not None and dotted.recipe.steps[0].params == {"ratio": 0.3}
    raw = ResultRecord.from_dict(_old_row(method="kd_audio", status="failed", error="x", metrics={}, method_params={
        "family": "hpn", "method.hpn": "kd_audio", "size.hpn": "reduced", "kd_audio.kd_weight.hpn": 0.5}))
    assert raw.recipe == Recipe("hpn", "reduced", (Step("kd_audio", {"kd_weight": 0.5}),))
    unknown = ResultRecord.from_dict(_old_row(method="?", status="failed", error="x", metrics={}, method_params={"family": "hpn"}))
    assert unknown.recipe is None and unknown.method == "?" and unknown.sampled == {"family": "hpn"}


def test_the_new_shape_round_trips_and_keeps_unknown_additive_fields() -> None:
    rec = ResultRecord.from_dict({**upgrade_row(_old_row()), "compute": {"own": {"steps": 3}}})
    d = json.loads(rec.to_json())
    assert d["schema"] == SCHEMA and d["compute"] == {"own": {"steps": 3}} and d["method"] == "prune+quantize"
    assert "method_params" not in d and d["steps"][0]["tags"] == [PRUNING]
    assert ResultRecord.from_dict(d) == rec
    report = StepReport(method="kd_audio", tags=(DISTILLATION,), compute={"steps": 10, "examples": 160, "flops": 1e9})
    assert StepReport.from_dict(report.to_dict()) == report


def test_old_compare_folder_rows_get_their_tags() -> None:
    recs = list(read_records([COMPARE]))
    by_method = {r.method: r.tags for r in recs if r.status == "ok"}
    assert by_method["teacher"] == {REFERENCE} and by_method["scratch"] == {FROM_SCRATCH}
    assert by_method["kd_audio"] == {DISTILLATION} and by_method["kd_control"] == {DISTILLATION}


def test_old_results_folder_reports_as_committed(tmp_path: Path) -> None:
    """The committed compare report, rendered again from its schema-1 records: the leaderboard files byte for byte,
    and every verdict table cell the committed report has (issue 21 added columns and sections: compute, arms, the
    secondary FAD verdict; the committed files predate them)."""
    from ddspbench.reports import build_report

    build_report([COMPARE], tmp_path / "rep", formats="md,csv,json")
    for name in ("leaderboard.csv", "leaderboard.units.json"):
        assert (tmp_path / "rep" / name).read_bytes() == (COMPARE / "report" / name).read_bytes(), name
    new = json.loads((tmp_path / "rep" / "report.json").read_text())
    old = json.loads((COMPARE / "report" / "report.json").read_text())
    for key in ("headline", "quality", "rows", "failed", "pareto_front", "hypervolume", "verdicts", "kd_vs_scratch",
                "kd_vs_others", "kd_summary"):
        if isinstance(old[key], list):
            assert len(new[key]) == len(old[key]), key
            for n, o in zip(new[key], old[key]):
                assert {k: n.get(k) for k in o} == o, (key, o.get("uid"))
        else:
            assert new[key] == old[key], key
    md_new = (tmp_path / "rep" / "report.md").read_text()
    md_old = (COMPARE / "report" / "report.md").read_text()
    board = "## Leaderboard"
    assert md_new[md_new.index(board):].split("\n## ")[0] == md_old[md_old.index(board):].split("\n## ")[0]


# Parsing a method or parameter name back out of a string: splitting at "+" or at a dot, a "kd" prefix, a name test
# for the baseline or the teacher, JSON text of parameters read back.
_PARSES = [
    re.compile(r"""\.(split|rsplit|partition|rpartition)\(\s*["']\+["']"""),
    re.compile(r"""\.(split|rsplit|partition|rpartition)\(\s*["']\.["']"""),
    re.compile(r"""startswith\(\s*\(?["']kd"""),
    re.compile(r"""==\s*["'](scratch|teacher)["']|["'](scratch|teacher)["']\s*=="""),
    re.compile(r"""json\.loads\([^)]*(method_params|params)"""),
]
_ALLOWED = {
    "suite/commands/_options.py",  # the command line's option parser (--set prune.ratio=0.5)
    "suite/candidate.py",  # split_method: the one parser of a user-given method name (sweep file, --method)
    "compressors/chain.py",  # split_params: routes the parsed --set <step>.<name> values of `compress` to steps
    "suite/upgrade.py",  # schema-1 rows: their method and parameters were strings
}


def test_no_code_parses_method_or_parameter_names_back_from_strings() -> None:
    hits = []
    for folder in ("suite", "reports", "compressors", "baselines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in _ALLOWED:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if any(p.search(line) for p in _PARSES) and "# not a method name" not in line:
                    hits.append(f"{rel}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("path", sorted(str(p) for p in (ROOT / "benchmarks").glob("results_compare*/**/records.jsonl")))
def test_every_committed_records_file_still_loads(path: str) -> None:
    skipped: list[object] = []
    recs = list(read_records([path], on_skip=skipped.append))
    assert recs and not skipped
