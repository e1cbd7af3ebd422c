"""evaluate_model (suite.evaluate): names, per-clip values, intervals, definitions, failures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ddspbench.suite.data.store import ClipSet
from ddspbench.suite.errors import UserError
from ddspbench.suite.evaluate import CandidateFailed, EvalResult, evaluate_model, expand_metrics
from ddspbench.suite.records import ResultRecord
from tests.unit.test_metrics_toys import ToyLinear, ToyNaN


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDSPBENCH_CACHE", str(tmp_path / "cache"))  # never the user's cache


def _clips(n: int = 4, frames: int = 100, seed: int = 0) -> ClipSet:
    rng = np.random.default_rng(seed)
    t = np.arange(frames * 64) / 16000
    f0 = rng.uniform(200, 500, size=(n, 1)).repeat(frames, 1).astype(np.float32)
    audio = (0.3 * np.sin(2 * np.pi * f0[:, :1] * t[None, :]) + 0.01 * rng.standard_normal((n, frames * 64))).astype(np.float32)
    return ClipSet(
        audio=audio, f0_hz=f0, loudness_db=np.full((n, frames), -20.0, np.float32),
        clip_ids=np.array([f"clip{i}" for i in range(n)]), recording_ids=np.array([f"rec{i}" for i in range(n)]),
        instruments=np.array(["tone"] * n),
    )


def test_expand_metrics_groups_and_errors() -> None:
    names = expand_metrics("mss,rtf,stream,size", (64, 512))
    assert names == ["mss", "rtf_offline", "rtf_stream_64", "rtf_stream_512", "p99_ms_stream_64", "p99_ms_stream_512",
                     "miss_rate_stream_64", "miss_rate_stream_512", "params", "params_trainable", "flops_per_s"]
    assert expand_metrics(["memory", "param_bytes"], ()) == ["param_bytes", "checkpoint_bytes", "peak_mem_bytes",
                                                             "engine_bytes", "peak_rss_bytes"]
    with pytest.raises(UserError, match="unknown metric 'bogus'"):
        expand_metrics("mss,bogus", (64,))
    with pytest.raises(UserError, match="no standard metric 'rtf_stream_100'"):
        expand_metrics("stream", (100,))


def test_evaluate_model_fills_record_fields(tmp_path: Path) -> None:
    clips = _clips()
    res = evaluate_model(
        ToyLinear(width=8), clips, metrics="mss,fad,kad,fad_inf,rtf,size,param_bytes",
        stream_buffers=(), audio_out=tmp_path / "audio", n_audio_examples=2,
    )
    assert isinstance(res, EvalResult)
    assert list(res.metrics) == ["mss", "fad", "kad", "fad_inf", "rtf_offline", "params", "params_trainable",
                                 "flops_per_s", "param_bytes"]
    assert all(res.units[k] for k in res.metrics)
    assert len(res.per_clip["mss"]) == 4 and res.metrics["mss"] == pytest.approx(np.mean(res.per_clip["mss"]))
    for k in ("mss", "fad", "kad"):
        lo, hi = res.intervals[k]
        assert lo <= res.metrics[k] <= hi, k  # type: ignore[operator]
    assert res.metric_defs["fad"] == "logmel/1" and res.metric_defs["mss"].startswith("mss/1 scales=2048")
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == ["clip0.wav", "clip1.wav"]
    assert res.metrics["params"] == float(sum(p.numel() for p in ToyLinear(width=8).parameters()))
    record = ResultRecord.with_units(candidate_id="c", family="_toy_linear", size="custom", method="evaluate",
                                     dataset="d", seed=0, **dataclasses.asdict(res))
    assert record.to_dict()["metrics"]["mss"] == pytest.approx(res.metrics["mss"])


def test_rendering_is_seeded_and_a_teacher_equal_to_the_model_scores_zero() -> None:
    clips = _clips()
    model = ToyLinear(width=8)
    a = evaluate_model(model, clips, metrics="mss", seed=3)
    b = evaluate_model(model, clips, metrics="mss", seed=3)
    assert a.per_clip["mss"] == b.per_clip["mss"]
    # mss_teacher compares with the teacher's own rendering (same seeds): the model against itself is 0
    res = evaluate_model(model, clips, metrics="mss_teacher", teacher=model)
    assert res.metrics["mss_teacher"] == pytest.approx(0.0, abs=1e-6)


def test_nan_output_raises_candidate_failed() -> None:
    with pytest.raises(CandidateFailed, match="NaN in model output"):
        evaluate_model(ToyNaN(width=4), _clips(2), metrics="mss")


def test_too_few_clips_for_fad_is_reported_not_crashed() -> None:
    res = evaluate_model(ToyLinear(width=4), _clips(1), metrics="mss,fad")
    assert res.metrics["fad"] is None and "at least 2 clips" in res.metric_defs["fad"]
    with pytest.raises(UserError, match="needs a teacher"):
        evaluate_model(ToyLinear(width=4), _clips(1), metrics="mss_teacher")


def test_a_failed_memory_child_leaves_the_metric_empty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ddspbench.suite.metrics.memory as memory

    def boom(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("memory measurement failed (exit 1): boom")

    monkeypatch.setattr(memory, "peak_inference_memory", boom)
    from ddspbench.suite.checkpoint import save_checkpoint

    ckpt = save_checkpoint(ToyLinear(width=4), tmp_path / "m.pt")
    res = evaluate_model(ToyLinear(width=4), _clips(2), metrics="memory", checkpoint_path=ckpt)
    assert res.metrics["peak_mem_bytes"] is None and "boom" in res.metric_defs["peak_mem_bytes"]
    assert res.metrics["checkpoint_bytes"] == float(ckpt.stat().st_size) and res.metrics["param_bytes"]


def test_speed_metrics_through_the_native_backend() -> None:
    import torch

    from ddspbench import baselines  # noqa: F401  (registers the families)
    from ddspbench.suite.registry import SIZES

    torch.manual_seed(0)
    model = SIZES.get("hpn/reduced")().eval()
    res = evaluate_model(model, _clips(n=1, frames=40), metrics="rtf_offline,rtf_stream_64", stream_buffers=(64,),
                         speed_backend="native")
    assert 0 < res.metrics["rtf_offline"] < 10 and 0 < res.metrics["rtf_stream_64"] < 10  # type: ignore[operator]
    assert res.metric_defs["rtf_offline"].endswith("backend=native")
    assert res.metric_defs["rtf_stream_64"].endswith("backend=native")
    # a family that declares no engine support (suite.traits) is timed eager, and its definitions say why
    toy = evaluate_model(ToyLinear(width=8), _clips(n=1), metrics="rtf_offline", stream_buffers=(), speed_backend="native")
    assert toy.metric_defs["rtf_offline"].endswith(
        "backend=eager (native asked: family _toy_linear declares no native engine support)")


def test_render_of_a_family_model_does_not_depend_on_the_batch_size() -> None:
    import torch

    from ddspbench import baselines  # noqa: F401  (registers the families)
    from ddspbench.suite.evaluate import render
    from ddspbench.suite.registry import SIZES

    torch.manual_seed(0)
    model = SIZES.get("hpn/reduced")()
    clips = _clips(n=5, frames=30)
    one = render(model, clips, batch_size=1, seed=3)
    np.testing.assert_allclose(render(model, clips, batch_size=2, seed=3), one, atol=1e-5)  # batched matmul rounding only
    np.testing.assert_allclose(render(model, clips, batch_size=5, seed=3), one, atol=1e-5)
    assert not np.allclose(render(model, clips, batch_size=5, seed=4), one)  # the seed still matters


def test_every_metric_is_declared_once_with_its_role_and_computation() -> None:
    from pathlib import Path

    from ddspbench.suite.metrics.declare import DECLARED, Role
    from ddspbench.suite.records import STANDARD_METRICS
    from ddspbench.suite.registry import METRICS

    assert STANDARD_METRICS is DECLARED
    no_compute = {n for n, d in DECLARED.items() if d.compute is None}
    assert no_compute == {"train_seconds"}  # set by whoever trained the candidate
    for name, d in DECLARED.items():
        assert d.name == name and isinstance(d.role, Role) and d.description and METRICS.get(name) is d
    assert {n for n, d in DECLARED.items() if d.role is Role.QUALITY} == {"mss", "mss_teacher", "fad", "fad_inf", "kad"}
    assert {n for n, d in DECLARED.items() if d.paired} == {"mss", "mss_teacher"}
    # one file per metric (the per-buffer streaming metrics: one file per kind)
    files = {p.stem for p in (Path(__file__).parents[2] / "suite" / "metrics" / "standard").glob("*.py")} - {"__init__"}
    assert {n.split("_stream_")[0] + "_stream" if d.buffer else n for n, d in DECLARED.items()} == files


def test_shared_work_is_done_once_per_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddspbench.suite.evaluate as ev

    calls = {"render": 0, "speed": 0}
    real_render, real_speed = ev.render, ev.measure_speed

    def render(*a: object, **k: object) -> np.ndarray:
        calls["render"] += 1
        return real_render(*a, **k)  # type: ignore[arg-type]

    def speed(*a: object, **k: object) -> dict:
        calls["speed"] += 1
        return real_speed(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(ev, "render", render)
    monkeypatch.setattr(ev, "measure_speed", speed)
    res = evaluate_model(ToyLinear(width=4), _clips(2), metrics="mss,rtf,stream", stream_buffers=(64, 256))
    assert calls == {"render": 1, "speed": 1}  # one rendering for the audio metrics, one timing run for seven
    assert all(res.metrics[f"{k}_stream_{b}"] is not None for k in ("rtf", "p99_ms", "miss_rate") for b in (64, 256))
def test_engine_bytes_in_a_record_with_unit_and_definition() -> None:
    """A family model gets the engine's bytes; a model the engine cannot run gets None and the reason, not a crash."""
    import torch

    from ddspbench import baselines  # noqa: F401  (registers the families)
    from ddspbench.suite.metrics.memory import engine_bytes
    from ddspbench.suite.registry import SIZES

    torch.manual_seed(0)
    model = SIZES.get("ddx7/reduced")().eval()
    res = evaluate_model(model, _clips(1), metrics="engine_bytes")
    assert res.metrics["engine_bytes"] == engine_bytes(model)["total"] and res.units["engine_bytes"] == "B"
    assert res.metric_defs["engine_bytes"].startswith("native engine, one stream, 64-sample buffers")
    toy = evaluate_model(ToyLinear(width=4), _clips(1), metrics="engine_bytes")
    assert toy.metrics["engine_bytes"] is None and "declares no native engine support" in toy.metric_defs["engine_bytes"]


def test_engine_bytes_definition_is_the_same_for_every_model() -> None:
    """Reports flag records whose metric definitions differ as not comparable: a definition must describe the
    measurement, never carry one model's numbers."""
    import torch

    from ddspbench.suite.registry import SIZES

    torch.manual_seed(0)
    defs = {evaluate_model(SIZES.get(name)().eval(), _clips(1), metrics="engine_bytes").metric_defs["engine_bytes"]
            for name in ("ddx7/reduced", "hpn/reduced")}
    assert len(defs) == 1


def test_per_clip_values_keep_the_clips_identity_and_order() -> None:
    # the verdicts pair clips by id (reports.stats): each per-clip value must be that clip's own, in id order
    import torch

    from ddspbench.suite.evaluate import render
    from ddspbench.suite.metrics.mss import mss_per_clip

    clips = _clips(n=5, seed=3)
    clips.audio[2] *= 0.05  # one clip far from what the toy renders: the values differ clip by clip
    model = ToyLinear(width=8)
    res = evaluate_model(model, clips, metrics="mss", stream_buffers=())
    assert res.clips == {"ids": [f"clip{i}[0:100]" for i in range(5)], "recordings": [f"rec{i}" for i in range(5)]}
    pred = render(model, clips, seed=0)
    for k in range(5):
        own = float(mss_per_clip(torch.from_numpy(clips.audio[k:k + 1]), torch.from_numpy(pred[k:k + 1]))[0])
        assert res.per_clip["mss"][k] == pytest.approx(own, rel=1e-5)
    assert res.per_clip["mss"] != sorted(res.per_clip["mss"])
    # a record keeps them, and reads them back
    rec = ResultRecord.with_units(candidate_id="x", family="toy", size="s", method="m", dataset="d", seed=0,
                                  metrics=res.metrics, per_clip=res.per_clip, clips=res.clips)
    assert ResultRecord.from_dict(rec.to_dict()).clips == res.clips
