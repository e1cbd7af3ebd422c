from __future__ import annotations

import json

from ddspbench.suite.cli import main
from tests.unit.test_reports_data import write_results_dir


def test_report_command_writes_requested_formats(tmp_path, capsys):
    root = write_results_dir(tmp_path / "r", families=("hpn",), instruments=("violin", "flute"), audio=False)
    out = tmp_path / "rep"
    rc = main(["report", "--results", str(root), "--out", str(out), "--format", "csv,json",
               "--objectives", "mss,param_bytes", "--max-mb", "1", "--top", "3"])
    assert rc == 0
    assert (out / "leaderboard.csv").is_file() and not (out / "index.html").exists()
    data = json.loads((out / "report.json").read_text())
    assert data["objectives"] == ["mss", "param_bytes"] and data["kd_vs_others"] and data["pareto_front"]
    students = [r for r in data["rows"] if r["method"] != "teacher"]
    assert students and all(r["metrics"]["param_bytes"] <= 1e6 for r in students)
    out_text = capsys.readouterr().out
    assert "Leaderboard by mss (top 3" in out_text
    # the verdicts are printed too, after the leaderboard: the headline and the table, in the four words
    assert out_text.index("Verdict per family") > out_text.index("Leaderboard by mss")
    assert "Verdicts of KD on mss" in out_text and "inconclusive" in out_text


def test_report_command_user_errors_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for args in (["--results", str(tmp_path / "empty")], ["--results", str(tmp_path / "missing")]):
        assert main(["report", *args, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
    a = write_results_dir(tmp_path / "a", families=("hpn",), instruments=("violin",), audio=False)
    b = write_results_dir(tmp_path / "b", families=("hpn",), instruments=("flute",), audio=False, machine="other")
    assert main(["report", "--results", str(a), str(b), "--out", str(tmp_path / "o"), "--format", "json"]) == 2
    assert "machine differs" in capsys.readouterr().err
    assert main(["report", "--results", str(a), str(b), "--out", str(tmp_path / "o"), "--format", "json",
                 "--allow-mixed-hardware"]) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["mixed"]
    assert main(["report", "--results", str(a), "--out", str(tmp_path / "o"), "--format", "pdf"]) == 2
    assert main(["report", "--results", str(a), "--out", str(tmp_path / "o"), "--objectives", "mss"]) == 2
    assert main(["report", "--results", str(a), "--out", str(tmp_path / "o"), "--budget-metric", "flops_per_s"]) == 2
    assert "budget metric 'flops_per_s'" in capsys.readouterr().err


def test_report_without_objectives_uses_the_sweeps_objectives(tmp_path):
    # a plain `ddspbench report` on a sweep's results must draw the sweep's own Pareto front, not METRIC,RTF
    root = write_results_dir(tmp_path / "r", families=("hpn",), instruments=("violin",), audio=False)
    (root / "config.s.yaml").write_text("study: s\nobjectives: [rtf_stream_64, mss, param_bytes]\n", encoding="utf-8")
    assert main(["report", "--results", str(root), "--out", str(tmp_path / "o"), "--format", "json"]) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["objectives"] == ["mss", "rtf_stream_64", "param_bytes"]
    # --objectives still wins; directories that disagree fall back to METRIC,RTF-METRIC
    assert main(["report", "--results", str(root), "--out", str(tmp_path / "o"), "--format", "json",
                 "--objectives", "mss,param_bytes"]) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["objectives"] == ["mss", "param_bytes"]
    other = write_results_dir(tmp_path / "b", families=("hpn",), instruments=("flute",), audio=False)
    (other / "config.t.yaml").write_text("objectives: [mss, params]\n", encoding="utf-8")
    assert main(["report", "--results", str(root), str(other), "--out", str(tmp_path / "o"), "--format", "json"]) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["objectives"] == ["mss", "rtf_stream_64"]
