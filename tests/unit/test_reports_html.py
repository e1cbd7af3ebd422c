from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from ddspbench.reports import build_report, load_results
from ddspbench.reports.html import slug, write_html
from ddspbench.reports.tables import failed_rows, leaderboard
from tests.unit.test_reports_data import HOSTILE, write_results_dir

_SRC = re.compile(r'(?:src|href)="([^"]*)"')


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    return write_results_dir(tmp_path_factory.mktemp("html") / "r", families=("hpn",), instruments=("violin",),
                             hostile=True)


def _assert_clean(page: str, root: Path) -> None:
    assert HOSTILE not in page and "<script" not in page.lower()
    assert html.escape(HOSTILE) in page
    links = _SRC.findall(page)
    assert links
    for link in links:
        if link.startswith("#"):
            continue
        assert not re.match(r"^[a-z]+:", link) and not link.startswith("/") and ".." not in link
        assert (root / link).is_file(), link


def test_hostile_names_are_escaped_everywhere_in_the_page(hostile_dir, tmp_path):
    df = load_results([hostile_dir])
    df["pareto"] = False
    hostile = df[df["candidate_id"].str.contains("<script>", regex=False)]
    assert len(hostile) == 1 and HOSTILE in hostile["method_params"].iloc[0]
    out = tmp_path / "page"
    index = write_html(out, df=df, board=leaderboard(df), failed=failed_rows(df), plots={}, fronts=df.head(0),
                       kd_others=df.head(0), kd_scratch=df.head(0), listen=hostile, quality="mss", n_clips=2)
    page = index.read_text()
    _assert_clean(page, out)
    assert page.count("<audio") == 6  # 2 clips x (target, teacher, candidate)
    assert page.count(f"<h3>{html.escape(HOSTILE)}") == 0 and html.escape("t0001" + HOSTILE) in page
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", p.name) for p in out.rglob("*"))


def test_full_report_writes_every_format_and_stays_escaped(hostile_dir, tmp_path):
    out = tmp_path / "report"
    written = build_report([hostile_dir], out, n_clips=2, max_listen=2)
    assert {"md", "html", "csv", "json"} <= set(written) and all(p.is_file() for p in written.values())
    page = written["html"].read_text()
    _assert_clean(page, out)
    for section in ("Verdict per family", "Leaderboard", "Pareto plots", "KD vs others at matched budget", "Listening"):
        assert section in page
    assert page.index("Verdict per family") < page.index('id="leaderboard"')  # the answer comes first
    md = written["md"].read_text()
    for method in ("teacher", "scratch", "kd_audio", "kd_control", "prune", "quantize", "prune+kd_audio+quantize"):
        assert f"| {method} |" in md
    assert "## KD vs others at matched budget" in md and "## Verdict per family" in md
    # one record per configuration: nothing is known about run-to-run variance, and the page says so
    assert "Verdicts of KD on mss" in md and "1 run per arm" in md
    assert HOSTILE not in md and html.escape(HOSTILE, quote=False) in md


def test_slugs_are_safe_and_distinct():
    names = [HOSTILE, "../../etc/passwd", "a b", "a_b", ""]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in slugs)
