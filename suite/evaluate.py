"""Evaluate one model on a test split: every metric with its unit, per-clip values, intervals, definitions.

:func:`evaluate_model` renders the test clips (in batches, with seeded noise), scores them against
the targets (MSS per clip; FAD, FAD-infinity and KAD on embeddings), measures speed (offline and
streaming), memory and size, and returns an :class:`EvalResult` whose fields are exactly the
ResultRecord fields of the same names (docs/CONTRACTS.md "Evaluation API"). A model whose output
holds NaN or infinity raises :class:`CandidateFailed`; callers turn that into a failed record.

Metric names (``suite.records.STANDARD_METRICS``) can be given one by one or as groups:
``rtf`` -> ``rtf_offline``; ``stream`` -> ``rtf_stream_<b>``, ``p99_ms_stream_<b>``,
``miss_rate_stream_<b>`` for each buffer ``b``; ``memory`` -> ``param_bytes``, ``checkpoint_bytes``,
``peak_mem_bytes``, ``engine_bytes``, ``peak_rss_bytes`` (the last two: the native engine as deployed); ``size`` -> ``params``, ``params_trainable``, ``flops_per_s``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from suite.errors import UserError
from suite.records import STANDARD_METRICS, metric_unit

if TYPE_CHECKING:
    from suite.data.store import ClipSet

__all__ = ["EvalResult", "CandidateFailed", "METRIC_GROUPS", "expand_metrics", "render", "evaluate_model"]

METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "rtf": ("rtf_offline",),
    "stream": ("rtf_stream_{b}", "p99_ms_stream_{b}", "miss_rate_stream_{b}"),
    "memory": ("param_bytes", "checkpoint_bytes", "peak_mem_bytes", "engine_bytes", "peak_rss_bytes"),
    "size": ("params", "params_trainable", "flops_per_s"),
}
N_BOOT_FAD = 100
N_BOOT_MSS = 1000


class CandidateFailed(RuntimeError):
    """The candidate cannot be evaluated (e.g. NaN in its output); its record is a failed row."""


@dataclass
class EvalResult:
    """What :func:`evaluate_model` measured: the ResultRecord fields of the same names."""

    metrics: dict[str, float | None] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    per_clip: dict[str, list[float]] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    metric_defs: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)


def expand_metrics(names: str | Sequence[str], buffers: Sequence[int]) -> list[str]:
    """Metric names and groups -> standard metric names (order kept, duplicates dropped)."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
    out: list[str] = []
    for item in items:
        if not item:
            continue
        if item in METRIC_GROUPS:
            expanded = [e for t in METRIC_GROUPS[item] for e in ([t.format(b=int(b)) for b in buffers] if "{b}" in t else [t])]
        elif item in STANDARD_METRICS:
            expanded = [item]
        else:
            known = ", ".join([*METRIC_GROUPS, *[m for m in STANDARD_METRICS if "_stream_" not in m]])
            raise UserError(f"unknown metric {item!r}; known: {known} (and rtf_stream_<b>, p99_ms_stream_<b>, miss_rate_stream_<b>)")
        for e in expanded:
            if e not in STANDARD_METRICS:
                raise UserError(f"no standard metric {e!r} (streaming buffers: {', '.join(m[11:] for m in STANDARD_METRICS if m.startswith('rtf_stream_'))})")
            if e not in out:
                out.append(e)
    return out


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    from suite.metrics.speed import num_threads

    with num_threads(n):
        yield


def render(
    model: nn.Module, clips: ClipSet, *, device: str = "cpu", batch_size: int = 8, seed: int = 0
) -> np.ndarray:
    """The model's audio for every clip (N, S) as float32, in batches.

    Family models get one noise stream per clip (:func:`batch_seeds`), so a clip's audio does not
    depend on ``batch_size``; other models get a seed per batch.
    """
    model = model.to(device).eval()
    outs = []
    with torch.inference_mode():
        for i, batch in enumerate(clips.batches(batch_size)):
            f0 = torch.as_tensor(batch["f0_hz"], dtype=torch.float32, device=device)
            loud = torch.as_tensor(batch["loudness_db"], dtype=torch.float32, device=device)
            torch.manual_seed(seed + i)
            init = getattr(model, "init_state", None)
            state = init(f0.shape[0], seed=batch_seeds(model, seed, i, batch_size, f0.shape[0])) if callable(init) else None
            out = model(f0, loud, state) if state is not None else model(f0, loud)
            outs.append(out["audio"].detach().float().cpu().numpy())
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, clips.audio.shape[1]), np.float32)


def batch_seeds(model: nn.Module, seed: int, index: int, batch_size: int, count: int) -> Any:
    """The ``seed=`` for ``init_state`` of batch ``index``: per-clip stream seeds where the model takes them
    (``per_item_seeds``, the baseline families), else ``seed + index`` (one seed per batch)."""
    if getattr(model, "per_item_seeds", False):
        from baselines._base import stream_seeds

        return stream_seeds(seed, index * batch_size, count)
    return seed + index


def _check_finite(audio: np.ndarray, who: str) -> None:
    bad = ~np.all(np.isfinite(audio), axis=1)
    if bad.any():
        raise CandidateFailed(f"NaN in model output ({who}: {int(bad.sum())} of {bad.size} clips non-finite)")


def evaluate_model(
    model: nn.Module,
    test_set: ClipSet,
    *,
    metrics: str | Sequence[str],
    teacher: nn.Module | None = None,
    embedding: str = "logmel",
    stream_buffers: Sequence[int] = (64, 256, 512),
    device: str = "cpu",
    threads: int | None = 1,
    checkpoint_path: str | os.PathLike[str] | None = None,
    audio_out: str | os.PathLike[str] | None = None,
    n_audio_examples: int = 4,
    seed: int = 0,
    ckpt_dir: str | os.PathLike[str] | None = None,
    speed_backend: str = "eager",
) -> EvalResult:
    """Measure ``metrics`` for ``model`` on ``test_set`` (see module docstring for names and groups).

    ``speed_backend`` is the inference path the speed metrics time: ``eager`` (this function's default:
    the model's forward, any model), ``native`` (the compiled engine of :mod:`baselines.native`: float32
    and int8/bf16-stored family models on CPU; the default of ``ddspbench evaluate`` and of every CPU
    preset) or ``torchscript`` (float models, CPU). Its name ends every speed metric's definition.

    Raises:
        CandidateFailed: the model's output holds NaN or infinity.
        UserError: an unknown metric, ``mss_teacher`` without a teacher, a missing embedding back-end.
    """
    names = expand_metrics(metrics, stream_buffers)
    if "mss_teacher" in names and teacher is None:
        raise UserError("metric mss_teacher needs a teacher model (evaluate --teacher CKPT)")
    res = EvalResult()
    with _threads(threads):
        audio_names = {"mss", "mss_teacher", "fad", "fad_inf", "kad"} & set(names)
        if audio_names or audio_out is not None:
            pred = render(model, test_set, device=device, seed=seed)
            _check_finite(pred, "candidate")
            _audio_metrics(res, names, pred, test_set, teacher, embedding, ckpt_dir, device, seed)
            if audio_out is not None and n_audio_examples > 0:
                from suite.audio_io import write_wav

                out_dir = Path(audio_out)
                for k in range(min(n_audio_examples, len(test_set))):
                    write_wav(out_dir / f"{test_set.clip_ids[k]}.wav", pred[k])
                res.artifacts["audio"] = str(out_dir)
        _cost_metrics(res, names, model, test_set, stream_buffers, device, threads, checkpoint_path, seed,
                      speed_backend)
    if checkpoint_path is not None:
        res.artifacts.setdefault("checkpoint", str(checkpoint_path))
    res.metrics = {n: res.metrics.get(n) for n in names}
    res.units = {n: metric_unit(n) for n in names}
    return res


def _audio_metrics(
    res: EvalResult, names: list[str], pred: np.ndarray, test_set: ClipSet, teacher: nn.Module | None,
    embedding: str, ckpt_dir: Any, device: str, seed: int,
) -> None:
    from suite.metrics.fad import bootstrap_mean_interval
    from suite.metrics.mss import DEFAULT_SCALES, mss_per_clip

    mss_def = f"mss/1 scales={','.join(map(str, DEFAULT_SCALES))}"
    target = np.asarray(test_set.audio, dtype=np.float32)

    def per_clip(a: np.ndarray, b: np.ndarray) -> list[float]:
        vals: list[float] = []
        for i in range(0, a.shape[0], 16):
            vals += mss_per_clip(torch.from_numpy(a[i : i + 16]), torch.from_numpy(b[i : i + 16])).tolist()
        return [float(v) for v in vals]

    for name, ref in (("mss", target), ("mss_teacher", None)):
        if name not in names:
            continue
        if ref is None:
            assert teacher is not None
            ref = render(teacher, test_set, device=device, seed=seed)
            _check_finite(ref, "teacher")
        vals = per_clip(ref, pred)
        res.per_clip[name] = vals
        res.metrics[name] = float(np.mean(vals))
        res.intervals[name] = list(bootstrap_mean_interval(vals, n_boot=N_BOOT_MSS, seed=seed))
        res.metric_defs[name] = mss_def
    wanted = [n for n in ("fad", "fad_inf", "kad") if n in names]
    if not wanted:
        return
    from suite.metrics.compare import MIN_CLIPS, compare_sets
    from suite.metrics.embeddings import embed_clips, get_embedding

    emb = get_embedding(embedding, ckpt_dir=ckpt_dir, device=device)
    defs = {
        "fad": emb.definition,
        "fad_inf": f"{emb.definition} fad-inf(linear fit over 1/N)",
        "kad": f"{emb.definition} kad(rbf median-bandwidth, unbiased, x100)",
    }
    if len(test_set) < MIN_CLIPS:
        for n in wanted:
            res.metrics[n] = None
            res.metric_defs[n] = f"{defs[n]} (not measured: FAD needs at least {MIN_CLIPS} clips)"
        return
    clips_t = embed_clips(emb, list(target))
    clips_p = embed_clips(emb, list(pred), use_cache=False)  # candidates' audio is seldom seen twice
    out = compare_sets(clips_t, clips_p, bootstrap=N_BOOT_FAD, with_inf="fad_inf" in names, seed=seed)
    for n in wanted:
        res.metrics[n] = out.get(n)
        res.metric_defs[n] = defs[n]
        if n in out.get("intervals", {}):
            res.intervals[n] = list(out["intervals"][n])


def _cost_metrics(
    res: EvalResult, names: list[str], model: nn.Module, test_set: ClipSet, buffers: Sequence[int],
    device: str, threads: int | None, checkpoint_path: Any, seed: int, backend: str = "eager",
) -> None:
    stream = [b for b in buffers if f"rtf_stream_{b}" in names or f"p99_ms_stream_{b}" in names or f"miss_rate_stream_{b}" in names]
    thr = torch.get_num_threads()
    if "rtf_offline" in names or stream:
        from suite.metrics.speed import measure_speed

        f0 = torch.as_tensor(test_set.f0_hz[:1], dtype=torch.float32)
        loud = torch.as_tensor(test_set.loudness_db[:1], dtype=torch.float32)
        sp = measure_speed(model, buffers=stream, offline="rtf_offline" in names, inputs=(f0, loud), device=device,
                           threads=None, seed=seed, backend=backend)
        secs = f0.shape[-1] / 250.0
        via = f", backend={backend}"
        if "offline" in sp:
            res.metrics["rtf_offline"] = sp["offline"]["rtf"]
            res.metric_defs["rtf_offline"] = (f"whole {secs:g} s clip, median of {sp['offline']['repeats']}, "
                                              f"threads={thr}, {device}{via}")
        for b in stream:
            s = sp["stream"][b]
            for key, val in ((f"rtf_stream_{b}", s["rtf"]), (f"p99_ms_stream_{b}", s["p99_ms"]), (f"miss_rate_stream_{b}", s["miss_rate"])):
                if key in names:
                    res.metrics[key] = val
                    res.metric_defs[key] = (f"{b}-sample buffers, state carried, {s['buffers']} buffers, "
                                            f"threads={thr}, {device}{via}")
    if {"params", "params_trainable"} & set(names):
        from suite.metrics.size import count_params

        cp = count_params(model)
        for k in ("params", "params_trainable"):
            if k in names:
                res.metrics[k] = float(cp[k])
                res.metric_defs[k] = "parameters incl. int8-packed weights (float-equivalent count)"
    if "flops_per_s" in names:
        from suite.metrics.size import decoder_flops

        fl = decoder_flops(model)
        res.metrics["flops_per_s"] = fl["flops_per_s"]
        res.metric_defs["flops_per_s"] = f"{fl['scope']} FLOPs/s (FlopCounterMode + formula); not counted: {fl['not_counted']}"
    if "param_bytes" in names:
        from suite.metrics.memory import param_bytes

        res.metrics["param_bytes"] = float(param_bytes(model))
        res.metric_defs["param_bytes"] = "parameters + buffers + packed int8 weights, bytes in memory"
    if "engine_bytes" in names:
        from suite.metrics.memory import engine_bytes

        try:
            eb = engine_bytes(model, 64)
        except UserError as exc:  # a model the engine cannot run: say why in the row, keep the rest
            res.metrics["engine_bytes"] = None
            res.metric_defs["engine_bytes"] = f"not measured: {exc}"
        else:
            res.metrics["engine_bytes"] = float(eb["total"])
            res.metric_defs["engine_bytes"] = (f"native engine, one stream, 64-sample buffers: weights as stored "
                                               f"{eb['weights']} + constants {eb['constants']} + state {eb['state']} "
                                               f"+ scratch {eb['scratch']} B")
    if {"checkpoint_bytes", "peak_mem_bytes", "peak_rss_bytes"} & set(names):
        _checkpoint_metrics(res, names, model, checkpoint_path, threads)


def _checkpoint_metrics(res: EvalResult, names: list[str], model: nn.Module, checkpoint_path: Any, threads: int | None) -> None:
    from suite.checkpoint import save_checkpoint
    from suite.metrics.memory import checkpoint_bytes, peak_engine_rss, peak_inference_memory

    with tempfile.TemporaryDirectory(prefix="ddspbench-eval-") as tmp:
        path = Path(checkpoint_path) if checkpoint_path is not None else save_checkpoint(model, Path(tmp) / "model.pt")
        if "checkpoint_bytes" in names:
            res.metrics["checkpoint_bytes"] = float(checkpoint_bytes(path))
            res.metric_defs["checkpoint_bytes"] = "size of the ddspbench checkpoint file"
        plugins = [type(model).__module__] if type(model).__module__ != "__main__" else []
        if "peak_rss_bytes" in names:
            try:
                pr = peak_engine_rss(path, threads=threads or 1, plugins=plugins)
            except RuntimeError as exc:
                res.metrics["peak_rss_bytes"] = None
                res.metric_defs["peak_rss_bytes"] = f"not measured: {str(exc)[:200]}"
            else:
                res.metrics["peak_rss_bytes"] = float(pr["peak_rss_bytes"])
                res.metric_defs["peak_rss_bytes"] = (f"4 s clip streamed at {pr['buffer']}-sample buffers, {pr['method']}, "
                                                     f"threads={pr['threads']}")
        if "peak_mem_bytes" in names:
            try:
                pm = peak_inference_memory(path, threads=threads or 1, plugins=plugins)
            except RuntimeError as exc:  # the child failed or timed out: say so in the row, keep the rest
                res.metrics["peak_mem_bytes"] = None
                res.metric_defs["peak_mem_bytes"] = f"not measured: {str(exc)[:200]}"
                return
            res.metrics["peak_mem_bytes"] = float(pm["peak_mem_bytes"])
            res.metric_defs["peak_mem_bytes"] = f"4 s clip on CPU, {pm['method']}, threads={pm['threads']}"
