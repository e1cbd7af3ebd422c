"""What a reader sees: the page explains itself, key columns come first, plots agree with the leaderboard."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ddspbench.reports import build_report, load_results
from ddspbench.reports.plots import (
    _fit_titles,
    _format_axis,
    _pyplot,
    default_plots,
    hypervolume_history_plot,
)
from ddspbench.reports.tables import human_bytes
from tests.unit.test_reports_data import write_results_dir


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_results_dir(tmp_path_factory.mktemp("view") / "r", families=("hpn", "ddx7"), instruments=("violin",))


def test_page_explains_itself_and_names_the_embedding_used(results, tmp_path):
    written = build_report([results], tmp_path / "rep", formats=("html", "json"), objectives="mss,rtf_stream_64,param_bytes")
    page = written["html"].read_text()
    howto = page[page.index('id="howto"'):page.index('id="plots"')]
    for term in ("MSS", "FAD", "RTF &lt; 1 means faster than real time", "bootstrap over the test clips", "t-interval over seeds", "Budget bands",
                 "full:hidden=64", ":pruned", "Pareto"):
        assert term in howto, term
    assert "<code>logmel/1</code>" in howto  # the embedding the records used, not the CLI default
    assert "<code>param_bytes</code>" in howto  # the objectives and budget metric are named
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", page[page.index('<table class="board">'):])[:7]
    assert heads[:5] == ["#", "★", "candidate", "family", "method"] and heads[5] == "mss [1]"
    assert page.count("★</td>") == sum(r["pareto"] for r in json.loads(written["json"].read_text())["rows"])
    assert re.search(r'<td class="num">\d+(\.\d+)? (kB|MB)', page)  # bytes read in kB/MB
    assert "hypervolume_history" in page


def test_plots_ring_the_studys_front_and_read_bytes_in_kb(results, tmp_path):
    df = load_results(results)
    df["pareto"] = False
    df.loc[df.index[:3], "pareto"] = True
    made = default_plots(df, tmp_path, objectives=["mss", "rtf_stream_64", "param_bytes"])
    assert "hypervolume_history" in made and all(p.stat().st_size > 10_000 for p in made.values())
    assert hypervolume_history_plot(df, ["mss", "rtf_stream_4096"], tmp_path / "x.png") is None
    plt = _pyplot()
    fig, ax = plt.subplots()
    ax.plot([1e5, 1.6e6], [0, 1])
    _format_axis(ax, "x", "B", log=False)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert labels and all(re.fullmatch(r"-?[\d.]+ (B|kB|MB)", t) for t in labels), labels
    assert not ax.xaxis.get_offset_text().get_text()  # no 1e6 offset
    assert human_bytes(159_436) == "159 kB" and human_bytes(1_678_559) == "1.68 MB" and human_bytes(512) == "512 B"
    assert human_bytes(np.nan) == ""


def test_a_title_wider_than_the_figure_is_wrapped_not_cut_off():
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=100)
    try:
        long = "validation MSS vs cumulative compute: soundfont/flute/ddx7; no training, not shown: quantize, " * 2
        ax.set_title(long, fontsize=10)
        short = fig.add_subplot(2, 2, 4)
        short.set_title("fits")
        fig.tight_layout()
        assert _fit_titles(fig)
        renderer = fig.canvas.get_renderer()
        box = ax.title.get_window_extent(renderer)
        assert "\n" in ax.title.get_text() and ax.title.get_text().replace("\n", " ") == long.strip()
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width
        assert short.title.get_text() == "fits"
    finally:
        plt.close(fig)


def test_audio_above_full_scale_is_attenuated_for_playback_and_labelled(tmp_path):
    import numpy as np
    import soundfile as sf

    from ddspbench.reports.html import PLAYBACK_PEAK, _Assets, _group, _player

    loud, quiet = tmp_path / "loud.wav", tmp_path / "quiet.wav"
    t = np.arange(16000) / 16000
    sf.write(str(loud), (4.0 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="FLOAT")
    sf.write(str(quiet), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="FLOAT")
    root = tmp_path / "rep"
    (root / "audio" / "stale-cand").mkdir(parents=True)
    assets = _Assets(root)
    assert not (root / "audio" / "stale-cand").exists()  # a rebuilt page keeps no players of an earlier front
    p_loud = _player(assets, loud, "cand-t0001", "candidate")
    p_quiet = _player(assets, quiet, _group("target", "/abs/path/to/results/targets"), "target")
    played, _ = sf.read(str(root / p_loud["wav"]))
    assert np.max(np.abs(played)) == pytest.approx(PLAYBACK_PEAK, rel=1e-4)
    assert "+12.0 dBFS" in p_loud["level"] and "13.0 dB quieter" in p_loud["level"]
    kept, _ = sf.read(str(root / p_quiet["wav"]))
    assert np.max(np.abs(kept)) == pytest.approx(0.5, rel=1e-4) and p_quiet["level"] == ""
    assert "abs" not in p_quiet["wav"] and p_quiet["wav"].startswith("audio/target-")  # no results path in names
