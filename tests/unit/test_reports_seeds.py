"""Seeds as an axis in the reports: records sharing a config_id become one configuration row, and a
normalised hypervolume checked against an independent computation."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ddspbench.reports import build_report, load_results
from ddspbench.reports.build import front_table
from ddspbench.reports.compare import kd_vs_scratch
from ddspbench.reports.pareto import HV_REF, hypervolume, normalise
from ddspbench.reports.seeds import configurations
from ddspbench.suite.records import Direction, ResultRecord, append_record

N_CLIPS = 10
# config -> (method, per-seed mean MSS offsets); clip difficulty is shared by every candidate
_CONFIGS = {
    "c-scratch": ("scratch", [2.0, 2.2, 1.9]),
    "c-kd": ("kd_audio", [1.0, 1.1, 0.8]),
    "c-prune": ("prune", [3.0]),
}


def _write(root):
    rng = np.random.default_rng(0)
    difficulty = rng.normal(5.0, 1.0, N_CLIPS)
    append_record(root / "records.jsonl", ResultRecord.with_units(
        candidate_id="teacher", family="hpn", size="full", method="teacher", dataset="synthetic", seed=0,
        metrics={"mss": float(difficulty.mean()), "rtf_stream_64": 0.5, "params": 4e6},
        per_clip={"mss": [float(v) for v in difficulty]}))
    n = 0
    for cid, (method, offsets) in _CONFIGS.items():
        for seed, off in enumerate(offsets):
            clips = difficulty + off + rng.normal(0, 0.05, N_CLIPS)
            append_record(root / "records.jsonl", ResultRecord.with_units(
                candidate_id=f"t{n:04d}", config_id=cid, family="hpn", size="reduced", method=method,
                dataset="synthetic", seed=seed, metrics={"mss": float(clips.mean()), "rtf_stream_64": 0.1 + 0.01 * n,
                                                         "params": 20_000.0 - 100 * n},
                per_clip={"mss": [float(v) for v in clips]}, intervals={"mss": [0.0, 99.0]}))
            n += 1
    append_record(root / "records.jsonl", ResultRecord.with_units(
        candidate_id="t0099", config_id="c-kd", family="hpn", size="reduced", method="kd_audio", dataset="synthetic",
        seed=3, status="failed", error="RuntimeError: boom"))
    return root


@pytest.fixture()
def frame(tmp_path):
    return load_results([_write(tmp_path / "r")])


def test_records_round_trip_their_config_id(frame):
    assert frame.loc[frame["candidate_id"] == "t0000", "config_id"].iloc[0] == "c-scratch"
    assert pd.isna(frame.loc[frame["candidate_id"] == "teacher", "config_id"].iloc[0])


def test_one_row_per_configuration_with_mean_and_t_interval_over_seeds(frame):
    cfg = configurations(frame, "mss")
    ok = cfg[cfg["status"] == "ok"].set_index("uid")
    # several seeds: the row is named by its configuration; one seed: it keeps its candidate's uid
    assert sorted(ok.index) == ["c-kd", "c-scratch", "t0006", "teacher"]
    assert ok.loc["c-scratch", "n_seeds"] == 3 and ok.loc["c-scratch", "seeds"] == "0,1,2"
    assert ok.loc["c-kd", "n_seeds"] == 3  # the failed fourth seed is not averaged in ...
    assert (cfg["status"] == "failed").sum() == 1  # ... and is still listed as failed
    seeds = frame[(frame["config_id"] == "c-scratch")]["mss"].to_numpy()
    half = stats.t.ppf(0.975, 2) * seeds.std(ddof=1) / np.sqrt(3)
    assert ok.loc["c-scratch", "mss"] == pytest.approx(seeds.mean())
    assert ok.loc["c-scratch", "mss_ci_low"] == pytest.approx(seeds.mean() - half)
    assert ok.loc["c-scratch", "mss_ci_high"] == pytest.approx(seeds.mean() + half)
    assert ok.loc["c-scratch", "seed_sd"] == pytest.approx(seeds.std(ddof=1))
    # single-seed configurations keep their record's own interval, and no seed spread
    assert ok.loc["t0006", "n_seeds"] == 1 and ok.loc["t0006", "mss_ci_high"] == 99.0
    assert np.isnan(ok.loc["t0006", "seed_sd"])
    # per-clip values are clip-wise means over seeds
    per_seed = np.array([r["mss"] for r in frame[frame["config_id"] == "c-kd"]["per_clip"] if r])
    assert ok.loc["c-kd", "per_clip"]["mss"] == pytest.approx(per_seed.mean(axis=0).tolist())


def test_comparisons_test_over_runs_and_say_so(frame):
    table = kd_vs_scratch(configurations(frame, "mss"))
    row = table.iloc[0]
    assert row["uid"] == "c-kd" and row["scratch_uid"] == "c-scratch"
    assert (row["n_kd"], row["n_other"], row["n_recordings"]) == (3, 3, N_CLIPS)
    # independently: each arm's run means (these older-style records carry no clip ids: each clip its own
    # recording), run variance / runs + variance over clips of the difference of the arms' clip means / clips
    kd = np.array([r["mss"] for r in frame[frame["config_id"] == "c-kd"]["per_clip"] if r])
    sc = np.array([r["mss"] for r in frame[frame["config_id"] == "c-scratch"]["per_clip"] if r])
    se = np.sqrt(kd.mean(1).var(ddof=1) / 3 + sc.mean(1).var(ddof=1) / 3
                 + (kd.mean(0) - sc.mean(0)).var(ddof=1) / N_CLIPS)
    assert row["diff"] == pytest.approx(kd.mean() - sc.mean()) and row["se"] == pytest.approx(se)
    assert row["diff"] == pytest.approx(-1.07, abs=0.1) and row["verdict"] == "KD better"
    assert row["threshold"] == pytest.approx(0.05 * sc.mean())
    assert "clips paired by position" in row["note"]


def test_report_shows_configurations_seeds_and_the_conventions(frame, tmp_path):
    written = build_report([frame.attrs["results_dirs"][0]], tmp_path / "rep", formats="md,json")
    md = written["md"].read_text()
    assert "n_seeds" in md and "| c-kd |" in md and "t-intervals over seeds" in md
    assert "diff = KD - other method" in md and "Holm" in md and "The training run is the unit" in md
    data = json.loads(written["json"].read_text())
    rows = {r["uid"]: r for r in data["rows"]}
    assert rows["c-scratch"]["n_seeds"] == 3 and data["sign_convention"].startswith("diff = KD - other method")
    assert all(r["verdict"] in ("KD better", "KD worse", "equivalent within +-T", "inconclusive")
               for r in data["kd_vs_scratch"])


def _brute_force_hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Inclusion-exclusion over subsets: the union of boxes [p, ref] (independent of reports.pareto)."""
    total = 0.0
    n = len(points)
    for k in range(1, n + 1):
        for subset in itertools.combinations(range(n), k):
            corner = points[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.clip(ref - corner, 0.0, None)))
    return total


def test_normalised_hypervolume_equals_an_independent_computation():
    rng = np.random.default_rng(11)
    raw = np.column_stack([rng.uniform(3, 9, 9), rng.uniform(0.01, 0.5, 9), rng.uniform(1e4, 4e6, 9)])
    norm, lo, hi = normalise(raw)
    assert norm.min(axis=0) == pytest.approx([0, 0, 0]) and norm.max(axis=0) == pytest.approx([1, 1, 1])
    assert lo == pytest.approx(raw.min(axis=0)) and hi == pytest.approx(raw.max(axis=0))
    ref = np.full(3, HV_REF)
    assert hypervolume(norm, ref) == pytest.approx(_brute_force_hv(norm, ref), rel=1e-12)
    assert 0 < hypervolume(norm, ref) <= HV_REF**3


def test_report_hypervolume_is_normalised_with_its_reference_point(frame):
    cfg = configurations(frame, "mss")
    cfg["pareto"] = False
    objs = [("mss", Direction.MINIMIZE), ("rtf_stream_64", Direction.MINIMIZE)]
    _, hv = front_table(cfg, objs)
    ok = cfg[cfg["status"] == "ok"]
    norm, _, _ = normalise(ok[["mss", "rtf_stream_64"]].to_numpy(dtype=float))
    everything = hv[hv["method"] == "(all)"].iloc[0]
    assert everything["hypervolume"] == pytest.approx(_brute_force_hv(norm, np.full(2, HV_REF)))
    assert everything["hv_share"] == pytest.approx(everything["hypervolume"] / HV_REF**2)
    assert everything["reference_point"] == "1.1 x 2" and "mss:" in everything["normalised_over"]


def test_intervals_over_seeds_stop_at_zero_for_metrics_that_cannot_be_negative():
    import numpy as np
    import pandas as pd

    from ddspbench.reports.seeds import _merge

    grp = pd.DataFrame({"seed": [0, 1], "config_id": ["t0001", "t0001"], "uid": ["t0001", "t0001-s1"],
                        "rtf_stream_64": [0.1, 1.9], "kad": [-0.5, 1.5], "per_clip": [{}, {}]})
    row = _merge(grp, ["rtf_stream_64", "kad"], None)
    assert row["rtf_stream_64_ci_low"] == 0.0 and row["rtf_stream_64_ci_high"] > 1.9  # t = 12.7 with 2 seeds
    assert row["kad_ci_low"] < 0 and np.isfinite(row["kad_ci_low"])  # an unbiased estimator may go below 0


def _verdict_records(root, n_clips: int, seeds: int = 3) -> None:
    """A compare-preset-like grid on two families: scratch, kd_audio (one seed not converged), prune, quantize,
    3 seeds each; KD is 1.0 better than scratch on every clip, quantize equal to KD plus noise."""
    rng = np.random.default_rng(1)
    difficulty = rng.normal(5.0, 1.0, n_clips)
    offsets = {"scratch": 2.0, "kd_audio": 1.0, "prune": 2.5, "quantize": 1.0}
    params = {"scratch": 20_000.0, "kd_audio": 20_000.0, "prune": 22_000.0, "quantize": 90_000.0}
    n = 0
    for family in ("hpn", "ddx7"):
        for method, off in offsets.items():
            for seed in range(seeds):
                flag = None if method == "quantize" else not (method == "kd_audio" and seed == 1)
                curve = ([[25, 3.0], [50, 2.0], [75, 1.95], [100, 1.9]] if flag else
                         [[25, 3.0], [50, 2.6], [75, 2.2], [100, 1.9]])  # improved 2.5 % / 15 % over the last doubling
                train = {"steps": 100, "curve": curve,
                         "convergence": {"converged": flag, "improvement": 0.01 if flag else 0.2}}
                mp = {"compressor": {"method": method} if flag is None else {"method": method, "train": train}}
                clips = difficulty + off + rng.normal(0, 0.05, n_clips)
                append_record(root / "records.jsonl", ResultRecord.with_units(
                    candidate_id=f"t{n:04d}", config_id=f"{family}-{method}", family=family, size="reduced",
                    method=method, dataset="soundfont", seed=seed, method_params=mp,
                    metrics={"mss": float(clips.mean()), "rtf_stream_64": 0.1, "params": params[method],
                             "param_bytes": 4 * params[method]},
                    per_clip={"mss": [float(v) for v in clips]}))
                n += 1


def test_method_verdicts_table_on_constructed_records(tmp_path):
    from ddspbench.reports.compare import method_verdicts
    from ddspbench.reports.convergence import converged_flags

    _verdict_records(tmp_path / "r", n_clips=10)
    frame = load_results([tmp_path / "r"])
    frame["converged"] = converged_flags(frame)
    table = method_verdicts(configurations(frame, "mss"), quality="mss")
    assert len(table) == 8 and set(table["family"]) == {"hpn", "ddx7"}
    row = table.set_index(["family", "method"])
    for family in ("hpn", "ddx7"):
        seeds = frame[frame["config_id"] == f"{family}-scratch"]["mss"].to_numpy()
        half = stats.t.ppf(0.975, 2) * seeds.std(ddof=1) / np.sqrt(3)
        s = row.loc[(family, "scratch")]
        assert s["n_seeds"] == 3 and s["mss"] == pytest.approx(seeds.mean())
        assert (s["mss_ci_low"], s["mss_ci_high"]) == (pytest.approx(seeds.mean() - half), pytest.approx(seeds.mean() + half))
        assert s["params"] == 20_000 and s["param_bytes"] == 80_000
        # one of KD's three seeds was still improving: the configuration is flagged, not the others
        assert row.loc[(family, "kd_audio"), "converged"] is False and s["converged"] is True
        assert row.loc[(family, "quantize"), "converged"] is None
        assert bool(row.loc[(family, "kd_audio"), "kd_arm"]) and pd.isna(row.loc[(family, "kd_audio"), "p_claim"])
        # KD's arm against each other method: diff = KD - method, Holm over the report's family
        assert s["diff"] == pytest.approx(-1.0, abs=0.1) and s["verdict"] == "KD better"
        assert row.loc[(family, "prune"), "verdict"] == "KD better"
        # quantize = KD's level plus clip noise: the same quality, within 5 %
        assert row.loc[(family, "quantize"), "verdict"] == "equivalent within +-T"
        assert s["p_holm"] >= s["p_claim"]


def test_method_verdicts_say_when_the_data_cannot_tell(tmp_path):
    from ddspbench.reports.compare import method_verdicts

    _verdict_records(tmp_path / "r", n_clips=10, seeds=1)  # one run per arm: run-to-run variance unknown
    table = method_verdicts(configurations(load_results([tmp_path / "r"]), "mss"), quality="mss")
    tested = table[table["vs_kd"].notna()]
    assert len(tested) == 6 and set(tested["verdict"]) == {"inconclusive"}
    assert tested["note"].str.contains("one run per arm").all()


def test_report_shows_the_verdict_table(tmp_path):
    _verdict_records(tmp_path / "r", n_clips=10)
    written = build_report([tmp_path / "r"], tmp_path / "out", formats=["md", "json"])
    md = written["md"].read_text()
    # the answer first: the compact verdict table comes before the leaderboard, ten columns at most
    assert md.index("## Verdict per family") < md.index("## Leaderboard")
    section = md.split("## Verdict per family")[1]
    header = next(line for line in section.splitlines() if line.startswith("| family"))
    assert header.count("|") - 1 <= 10
    for col in ("arm", "params", "runs", "mss (95 % CI)", "KD - arm (95 % CI), T", "verdict (of KD)",
                "converged"):
        assert f" {col} " in header
    full = md.split("## Verdict table, every column")[1]
    header = next(line for line in full.splitlines() if line.startswith("| dataset"))
    for col in ("method", "n_seeds", "mss", "mss_ci_low", "mss_ci_high", "params", "param_bytes", "converged",
                "verdict", "p_holm", "ci_low", "ci_high", "n_recordings"):
        assert f" {col} " in header
    rows = json.loads(written["json"].read_text())["verdicts"]
    assert {(r["family"], r["method"]): r["converged"] for r in rows}[("hpn", "kd_audio")] is False


def test_two_results_directories_with_the_same_config_ids_keep_their_own_verdicts(tmp_path):
    # two studies both number their configurations c-kd, c-scratch...: each pair is still tested on its own runs
    a = _write(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    lines = []
    for line in (a / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("config_id") == "c-kd" and rec.get("status") == "ok":  # in b, KD is 1.0 worse, not better
            rec["per_clip"]["mss"] = [v + 2.0 for v in rec["per_clip"]["mss"]]
            rec["metrics"]["mss"] += 2.0
        rec["dataset"] = "synthetic-b"  # another data set: its arms are compared among themselves
        lines.append(json.dumps(rec))
    (b / "records.jsonl").write_text("\n".join(lines) + "\n")
    cfg = configurations(load_results([a, b]), "mss")
    ok = cfg[cfg["status"] == "ok"]
    assert not ok["uid"].duplicated().any()
    table = kd_vs_scratch(cfg)
    by_dir = {r.dataset[-1]: r for r in table.itertuples()}
    assert {r.uid for r in table.itertuples()} == {"a/c-kd", "b/c-kd"}
    by_dir["a"] = by_dir.pop("c")  # dataset "synthetic"
    assert by_dir["a"].diff == pytest.approx(-1.07, abs=0.1) and by_dir["a"].verdict == "KD better"
    assert by_dir["b"].diff == pytest.approx(0.93, abs=0.1) and by_dir["b"].verdict == "KD worse"
