"""Seeds as an axis in the sweep (issue 16 item 2): ``--repeats N`` / ``repeats: N``.

- a real (tiny) sweep with ``--repeats 2`` writes one record per seed (distinct seeds, one ``config_id``),
  Optuna gets the mean over the seeds, a seed-independent candidate (quantize) runs once, and the
  report shows one row per configuration with ``n_seeds`` 2 and a t-interval over the seeds;
- a trial interrupted between seeds is resumed by a new trial that runs only the missing seeds;
- a failed seed is a failed record, and the trial fails only when every seed failed;
- ``repeats`` is validated, and enters the config hash only when it is not 1.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from scipy import stats

from ddspbench.compressors.chain import steps_use_seed
from ddspbench.suite.cli import main
from ddspbench.suite.errors import UserError
from ddspbench.suite.pipeline import Workspace
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.records import ResultRecord, append_record, read_records
from ddspbench.suite.sweep.config import config_from_dict, config_hash
from ddspbench.suite.sweep.runner import load_study_config, open_study, recover_stale, run_trials
from ddspbench.suite.sweep.storage import default_storage_url
from tests.unit.test_compressor_description import _tiny_tree

optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJECTIVES = ["mss", "rtf_stream_64", "param_bytes"]


def _study(out: Path, name: str) -> optuna.Study:
    from ddspbench.suite.sweep.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(default_storage_url(out)))


def test_a_real_sweep_with_two_repeats_writes_every_seed_and_reports_configurations(tmp_path, capsys):
    tree = _tiny_tree(tmp_path, families=["hpn"], methods=["scratch", "quantize"], sizes=["reduced", "hidden=16"], params={"quantize": {"method": {"choices": ["bf16"]}}})
    tree.update(study="rep", trials=3, sampler="random", seed=5)
    cfg_path = tmp_path / "rep.yaml"
    cfg_path.write_text(yaml.safe_dump(tree))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(cfg_path), "--out", str(out), "--repeats", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "2 seeds per configuration (5..6)" in printed and "(mean of 2 of 2 seeds)" in printed

    cands = [r for r in read_records([out / "records.jsonl"]) if r.method != "teacher"]
    assert all(r.status == "ok" for r in cands), [r.error for r in cands]
    by_config: dict[str, list[ResultRecord]] = {}
    for r in cands:
        by_config.setdefault(str(r.config_id), []).append(r)
    assert len(by_config) == 3
    teacher = next(r for r in read_records([out / "records.jsonl"]) if r.method == "teacher")
    assert teacher.seed == 5  # the teacher (and the data) keep the configured seed
    study = _study(out, "rep")
    trials = {t.user_attrs["candidate_id"]: t for t in study.get_trials(deepcopy=False)}
    assert set(trials) == set(by_config)
    trained = {cid: recs for cid, recs in by_config.items() if recs[0].method == "scratch"}
    assert trained, "covering puts scratch among the trials"
    for cid, recs in by_config.items():
        t = trials[cid]
        recs = sorted(recs, key=lambda r: r.seed)
        if recs[0].method == "quantize":  # no training, no random draws: measured once, and says so
            assert [(r.candidate_id, r.seed) for r in recs] == [(cid, 5)]
            assert t.user_attrs["seeds"] == [5] and t.user_attrs["n_seeds"] == 1
            continue
        assert [(r.candidate_id, r.seed) for r in recs] == [(cid, 5), (f"{cid}-s1", 6)]
        assert {r.trial for r in recs} == {t.number}
        same = [{k: v for k, v in r.method_params.items() if k != "compressor"} for r in recs]  # not its timings
        assert same[0] == same[1] and recs[0].config_id == cid
        assert recs[0].metrics["mss"] != recs[1].metrics["mss"]  # two trainings, really seeded differently
        assert len(recs[0].per_clip["mss"]) == len(recs[1].per_clip["mss"]) == 1
        assert t.state == optuna.trial.TrialState.COMPLETE
        means = [float(np.mean([r.metrics[o] for r in recs])) for o in OBJECTIVES]
        assert t.values == pytest.approx(means)  # Optuna is told the mean over the seeds
        assert t.user_attrs["metric.mss"] == pytest.approx(means[0]) and t.user_attrs["n_seeds"] == 2

    board = pd.read_csv(out / "report" / "leaderboard.csv", comment="#")
    board = board[board["method"] != "teacher"]
    assert sorted(board["uid"]) == sorted(by_config)  # one row per configuration, none per seed
    for cid, recs in trained.items():
        row = board[board["uid"] == cid].iloc[0]
        vals = np.array([r.metrics["mss"] for r in recs])
        half = stats.t.ppf(0.975, 1) * vals.std(ddof=1) / math.sqrt(2)
        assert row["n_seeds"] == 2
        assert row["mss"] == pytest.approx(vals.mean())
        assert (row["mss_ci_low"], row["mss_ci_high"]) == pytest.approx((vals.mean() - half, vals.mean() + half))
    quant = board[board["method"] == "quantize"]
    assert (quant["n_seeds"] == 1).all()
    assert "n_seeds" in (out / "report" / "report.md").read_text()


def _stub(monkeypatch: pytest.MonkeyPatch, fail: set[tuple[int, int]] = frozenset(), stop: tuple[int, int] | None = None) -> list[tuple[str, int]]:
    """Candidates that finish at once; mss = 1 + trial + seed/2. ``fail``: (trial, seed) pairs that fail;
    ``stop``: the (trial, seed) at which a SIGINT arrives. Returns the (candidate id, seed) of every run."""
    import ddspbench.suite.sweep.runner as runner

    ran: list[tuple[str, int]] = []

    def quick(spec: Any, ws: Workspace, *, candidate_id: str, trial: int | None = None, seed: int = 0,
              config_id: str | None = None) -> ResultRecord:
        assert trial is not None
        if stop == (trial, seed):
            raise KeyboardInterrupt
        ran.append((candidate_id, seed))
        common = dict(candidate_id=candidate_id, config_id=config_id, family=spec.family, size="reduced",
                      method=spec.method, dataset="synthetic", seed=seed, trial=trial, study=ws.cfg.study)
        if (trial, seed) in fail:
            return ResultRecord.with_units(**common, status="failed", error=f"RuntimeError: seed {seed} diverged")
        return ResultRecord.with_units(**common, metrics={"mss": 1.0 + trial + seed / 2, "rtf_stream_64": 0.1,
                                                         "param_bytes": 100.0})

    monkeypatch.setattr(runner, "run_candidate", quick)
    return ran


def _cfg(**tree: Any) -> Any:
    base = preset_tree("smoke")
    base["space"] = {**base["space"], "families": ["hpn"], "methods": ["scratch"]}
    return config_from_dict({**base, "covering": False, **tree})


def test_a_failed_seed_is_a_failed_record_and_only_an_all_failed_trial_fails(tmp_path, monkeypatch):
    ran = _stub(monkeypatch, fail={(0, 1), (1, 0), (1, 1), (1, 2)})
    cfg = _cfg(trials=2, repeats=3)
    study, storage = open_study(cfg, default_storage_url(tmp_path))
    summary = run_trials(study, storage, default_storage_url(tmp_path), cfg, Workspace(cfg, tmp_path))
    assert (summary.ok, summary.failed, len(summary.records)) == (1, 1, 6)
    assert len(ran) == 6
    t0, t1 = study.get_trials(deepcopy=False)
    assert t0.state == optuna.trial.TrialState.COMPLETE
    assert t0.values[0] == pytest.approx((1.0 + 2.0) / 2)  # seeds 0 and 2; seed 1 failed
    assert t0.user_attrs["n_seeds"] == 2 and t0.user_attrs["failed_seeds"] == ["t0000-s1: RuntimeError: seed 1 diverged"]
    assert t1.state == optuna.trial.TrialState.FAIL and "diverged" in t1.user_attrs["error"]
    recs = {r.candidate_id: r for r in read_records([tmp_path / "records.jsonl"])}
    assert recs["t0000-s1"].status == "failed" and recs["t0000-s1"].config_id == "t0000"


def test_an_interrupted_trial_resumes_only_the_seeds_that_did_not_land(tmp_path, monkeypatch):
    url = default_storage_url(tmp_path)
    cfg = _cfg(trials=1, repeats=3)
    study, storage = open_study(cfg, url)
    ws = Workspace(cfg, tmp_path)
    _stub(monkeypatch, stop=(0, 1))  # SIGINT while seed 1 of trial 0 trains
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, storage, url, cfg, ws)
    first = study.get_trials(deepcopy=False)[0]
    assert first.state == optuna.trial.TrialState.FAIL and first.user_attrs["interrupted"] is True
    recs = list(read_records([ws.records_path]))
    assert [(r.candidate_id, r.status) for r in recs] == [("t0000", "ok"), ("t0000-s1", "failed")]
    assert recs[1].error.startswith("interrupted") and recs[1].seed == 1 and recs[1].config_id == "t0000"
    # the trial kept its recipe (user attr): the interrupted record says what it was, no parameter name parsed back
    assert recs[1].recipe is not None and recs[1].recipe.to_dict() == first.user_attrs["recipe"]
    assert recs[1].method == recs[0].method

    ran = _stub(monkeypatch)
    summary = run_trials(study, storage, url, cfg, ws)
    assert ran == [("t0000-s1", 1), ("t0000-s2", 2)]  # seed 0 landed before: not trained again
    (done,) = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    assert done.number == 1 and done.params == first.params and done.user_attrs["candidate_id"] == "t0000"
    # seed 0 was trained in trial 0 (mss 1.0), seeds 1 and 2 in trial 1 (mss 2.5, 3.0)
    assert done.values[0] == pytest.approx((1.0 + 2.5 + 3.0) / 3)
    assert summary.finished_total == 1 and len(summary.records) == 3
    last = {r.candidate_id: r for r in read_records([ws.records_path])}
    assert {k: (v.status, v.config_id, v.seed) for k, v in last.items()} == {
        "t0000": ("ok", "t0000", 0), "t0000-s1": ("ok", "t0000", 1), "t0000-s2": ("ok", "t0000", 2)}


def _dead_trial(tmp_path: Path, **attrs: Any) -> tuple[Any, Workspace, Any]:
    """A 1-trial, 2-seed study whose running trial belongs to a worker elsewhere that stopped beating long ago."""
    cfg = _cfg(trials=1, repeats=2)
    study, _ = open_study(cfg, default_storage_url(tmp_path))
    ws = Workspace(cfg, tmp_path)
    t = study.ask()
    for k, v in {"worker_host": "elsewhere", "heartbeat": time.time() - 1000, "seeds": [0, 1], **attrs}.items():
        t.set_user_attr(k, v)
    return study, ws, t


def _seed_record(ws: Workspace, seed: int, mss: float) -> None:
    append_record(ws.records_path, ResultRecord.with_units(
        candidate_id="t0000" if seed == 0 else f"t0000-s{seed}", config_id="t0000", family="hpn", size="reduced",
        method="scratch", dataset="synthetic", seed=seed, trial=0,
        metrics={"mss": mss, "rtf_stream_64": 0.1, "param_bytes": 100.0}))


def test_a_dead_worker_between_seeds_is_recovered_from_its_records(tmp_path):
    study, ws, t = _dead_trial(tmp_path, candidate_id="t0000")
    t.suggest_categorical("family", ["hpn"])
    _seed_record(ws, 0, 4.0)
    assert recover_stale(study, ws, grace_s=60) == 1
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs["candidate_id"] == "t0000"  # resumes the configuration
    failed = [r for r in read_records([ws.records_path]) if r.status == "failed"]
    assert [(r.candidate_id, r.seed) for r in failed] == [("t0000-s1", 1)]


def test_a_dead_worker_after_its_last_seed_is_told_the_mean(tmp_path):
    study, ws, _ = _dead_trial(tmp_path)
    for k, mss in ((0, 4.0), (1, 6.0)):
        _seed_record(ws, k, mss)
    assert recover_stale(study, ws, grace_s=60) == 1
    (done,) = study.get_trials(deepcopy=False)
    assert done.state == optuna.trial.TrialState.COMPLETE and done.values == pytest.approx([5.0, 0.1, 100.0])


def test_repeats_is_validated_and_hashed_only_when_it_is_not_one(tmp_path, capsys):
    tree = preset_tree("smoke")
    with pytest.raises(UserError, match=r"repeats must be an integer in \[1, 100\], got 0"):
        config_from_dict({**tree, "repeats": 0})
    with pytest.raises(UserError, match="repeats: expected an integer"):
        config_from_dict({**tree, "repeats": 1.5})
    one, two = config_from_dict(tree), config_from_dict({**tree, "repeats": 2})
    assert one.repeats == 1 and config_hash(one) == config_hash(config_from_dict({**tree, "repeats": 1}))
    assert config_hash(two) != config_hash(one)  # a mean over 2 seeds is not the single-seed objective
    old = {k: v for k, v in one.to_dict().items() if k != "repeats"}  # a study made before repeats existed
    assert config_hash(config_from_dict(old)) == config_hash(one)
    url = default_storage_url(tmp_path / "w")
    open_study(config_from_dict({**tree, "repeats": 3}), url)
    assert load_study_config(url, "smoke").repeats == 3  # what a worker runs
    assert main(["sweep", "--repeats", "0", "--out", str(tmp_path / "x")]) == 2
    assert "argument --repeats: must be an integer in [1, 100]" in capsys.readouterr().err


def test_only_candidates_that_use_the_seed_are_repeated():
    assert not steps_use_seed([("quantize", {"method": "int8"})], 40)
    assert not steps_use_seed([("prune", {"finetune_steps": 0}), ("quantize", {})], 40)
    assert steps_use_seed([("prune", {"finetune_steps": None})], 40)  # fine-tunes for the recipe's steps
    assert not steps_use_seed([("prune", {"finetune_steps": None})], 0)
    assert steps_use_seed([("prune", {"finetune_steps": 0, "importance": "random"})], 40)
    assert steps_use_seed([("prune", {"finetune_steps": 0}), ("kd_audio", {})], 40)
    assert steps_use_seed([("scratch", {})], 0)  # a fresh student's initialisation is seeded
