"""Evaluate one model on a test split: every metric with its unit, per-clip values, intervals, definitions.

:func:`evaluate_model` renders the test clips (in batches, with seeded noise), scores them against
the targets (MSS per clip; FAD, FAD-infinity and KAD on embeddings), measures speed (offline and
streaming), memory and size, and returns an :class:`EvalResult` whose fields are exactly the
ResultRecord fields of the same names (docs/CONTRACTS.md "Evaluation API"). Each metric is a
registered :class:`Metric` (its declaration in ``suite.records.STANDARD_METRICS`` plus how to compute
it from one :class:`EvalContext`), so the evaluation is a loop over the asked names. A model whose output
holds NaN or infinity raises :class:`CandidateFailed`; callers turn that into a failed record.

Metric names (``suite.records.STANDARD_METRICS``) can be given one by one or as groups:
``rtf`` -> ``rtf_offline``; ``stream`` -> ``rtf_stream_<b>``, ``p99_ms_stream_<b>``,
``miss_rate_stream_<b>`` for each buffer ``b``; ``memory`` -> ``param_bytes``, ``checkpoint_bytes``,
``peak_mem_bytes``, ``engine_bytes``, ``peak_rss_bytes`` (the last two: the native engine as deployed); ``size`` -> ``params``, ``params_trainable``, ``flops_per_s``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from ddspbench.suite.audio_io import write_wav
from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics import memory
from ddspbench.suite.metrics.compare import MIN_CLIPS, compare_sets
from ddspbench.suite.metrics.embeddings import embed_clips, get_embedding
from ddspbench.suite.metrics.fad import bootstrap_mean_interval
from ddspbench.suite.metrics.mss import DEFAULT_SCALES, mss_per_clip
from ddspbench.suite.metrics.size import count_params, decoder_flops
from ddspbench.suite.metrics.speed import exact_float32, measure_speed, num_threads
from ddspbench.suite.names import safe_name
from ddspbench.suite.records import (
    STANDARD_METRICS,
    STREAM_BUFFERS,
    Direction,
    Measurements,
    MetricSpec,
    metric_unit,
)
from ddspbench.suite.registry import Registry
from ddspbench.suite.seeds import stream_seeds

if TYPE_CHECKING:
    from ddspbench.suite.data.store import ClipSet

__all__ = ["EvalResult", "EvalContext", "Measured", "Metric", "METRIC_IMPLS", "CandidateFailed", "METRIC_GROUPS",
           "expand_metrics", "render", "evaluate_model"]

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


EvalResult = Measurements
"""What :func:`evaluate_model` measured: the result fields of a record (:class:`suite.records.Measurements`)."""


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
        return stream_seeds(seed, index * batch_size, count)
    return seed + index


def _check_finite(audio: np.ndarray, who: str) -> None:
    bad = ~np.all(np.isfinite(audio), axis=1)
    if bad.any():
        raise CandidateFailed(f"NaN in model output ({who}: {int(bad.sum())} of {bad.size} clips non-finite)")


@dataclass
class EvalContext:
    """One evaluation: the model, the test clips and the settings every metric computes from.

    Work several metrics share is done once and kept: the rendered audio, the teacher's audio, the
    embedding comparison (FAD, FAD-infinity, KAD), one speed measurement for every timed buffer, and
    a checkpoint file (``checkpoint_path`` or one written to a temporary directory).
    """

    model: nn.Module
    test_set: ClipSet
    names: list[str]
    teacher: nn.Module | None = None
    embedding: str = "logmel"
    buffers: Sequence[int] = ()
    device: str = "cpu"
    threads: int | None = 1
    seed: int = 0
    ckpt_dir: str | os.PathLike[str] | None = None
    checkpoint_path: str | os.PathLike[str] | None = None
    speed_backend: str = "eager"
    _memo: dict[str, Any] = field(default_factory=dict)
    _tmp: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for, the kept value after."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def pred(self) -> np.ndarray:
        """The model's audio for every test clip (checked finite)."""
        return cast(np.ndarray, self.once("pred", lambda: _rendered(self.model, self, "candidate")))

    def target(self) -> np.ndarray:
        return np.asarray(self.test_set.audio, dtype=np.float32)

    def teacher_audio(self) -> np.ndarray:
        if self.teacher is None:
            raise UserError("metric mss_teacher needs a teacher model (evaluate --teacher CKPT)")
        teacher = self.teacher
        return cast(np.ndarray, self.once("teacher", lambda: _rendered(teacher, self, "teacher")))

    def timed_buffers(self) -> list[int]:
        return [b for b in self.buffers if any(f"{k}_stream_{b}" in self.names for k in ("rtf", "p99_ms", "miss_rate"))]

    def speed(self) -> dict[str, Any]:
        """One :func:`suite.metrics.speed.measure_speed` over every requested buffer (and offline when asked)."""
        def make() -> dict[str, Any]:
            f0 = torch.as_tensor(self.test_set.f0_hz[:1], dtype=torch.float32)
            loud = torch.as_tensor(self.test_set.loudness_db[:1], dtype=torch.float32)
            model, device = self.model, self.timing_device()
            if device != self.device:  # an exported path deploys on the CPU: time a CPU copy, keep the model where it is
                model = copy.deepcopy(self.model).to(device)
            return measure_speed(model, buffers=self.timed_buffers(), offline="rtf_offline" in self.names,
                                 inputs=(f0, loud), device=device, threads=None, seed=self.seed,
                                 backend=self.speed_backend)
        return cast(dict[str, Any], self.once("speed", make))

    def timing_device(self) -> str:
        """Where speed is measured: the evaluation's device for eager, the CPU for an exported path (the
        native engine and TorchScript export are CPU deployments, also for a model trained on CUDA)."""
        return self.device if self.speed_backend == "eager" else "cpu"

    def speed_suffix(self) -> str:
        return f"threads={torch.get_num_threads()}, {self.timing_device()}, backend={self.speed_backend}"

    def compared(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The embedding comparison of target and model clips (None under MIN_CLIPS clips) and its definitions."""
        def make() -> tuple[dict[str, Any] | None, dict[str, str]]:
            emb = get_embedding(self.embedding, ckpt_dir=self.ckpt_dir, device=self.device)
            defs = {
                "fad": emb.definition,
                "fad_inf": f"{emb.definition} fad-inf(linear fit over 1/N)",
                "kad": f"{emb.definition} kad(rbf, bandwidth = median pairwise distance of the evaluated set as kadtk 1.1, unbiased MMD^2 x100)",
            }
            if len(self.test_set) < MIN_CLIPS:
                return None, {n: f"{d} (not measured: FAD needs at least {MIN_CLIPS} clips)" for n, d in defs.items()}
            clips_t = embed_clips(emb, list(self.target()))
            clips_p = embed_clips(emb, list(self.pred()), use_cache=False)  # candidates' audio is seldom seen twice
            out = compare_sets(clips_t, clips_p, bootstrap=N_BOOT_FAD, with_inf="fad_inf" in self.names, seed=self.seed)
            return out, defs
        return cast(tuple[dict[str, Any] | None, dict[str, str]], self.once("compared", make))

    def checkpoint(self) -> Path:
        """The model's checkpoint file (the given one, or one saved to a temporary directory)."""
        if self.checkpoint_path is not None:
            return Path(self.checkpoint_path)

        def make() -> Path:
            tmp = self._tmp.enter_context(tempfile.TemporaryDirectory(prefix="ddspbench-eval-"))
            return save_checkpoint(self.model, Path(tmp) / "model.pt")
        return cast(Path, self.once("checkpoint", make))

    def close(self) -> None:
        self._tmp.close()


def _rendered(model: nn.Module, ctx: EvalContext, who: str) -> np.ndarray:
    audio = render(model, ctx.test_set, device=ctx.device, seed=ctx.seed)
    _check_finite(audio, who)
    return audio


@dataclass(frozen=True)
class Measured:
    """One metric's outcome: its value (None: not measured), definition, and per-clip values / interval."""

    value: float | None
    definition: str
    per_clip: list[float] | None = None
    interval: list[float] | None = None


@dataclass(frozen=True)
class Metric:
    """A registered metric: its declaration (name, unit, direction, description; ``suite.records``) and
    how to compute it from one :class:`EvalContext`."""

    spec: MetricSpec
    compute: Callable[[EvalContext], Measured]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def unit(self) -> str:
        return self.spec.unit

    @property
    def direction(self) -> Direction:
        return self.spec.direction

    @property
    def definition(self) -> str:
        return self.spec.description


METRIC_IMPLS: Registry[Metric] = Registry("metric implementation")
"""Standard metric name -> :class:`Metric` (how :func:`evaluate_model` computes it)."""


def _metric(*names: str) -> Callable[[Callable[..., Measured]], Callable[..., Measured]]:
    """Register ``fn(ctx, name)`` as the computation of each of ``names`` (declared in STANDARD_METRICS)."""
    def deco(fn: Callable[..., Measured]) -> Callable[..., Measured]:
        for name in names:
            METRIC_IMPLS.register(name, obj=Metric(STANDARD_METRICS[name], functools.partial(fn, name=name)))
        return fn
    return deco


def clip_identity(clips: ClipSet) -> dict[str, list[str]]:
    """The test clips' identity a record keeps beside its per-clip values (docs/CONTRACTS.md): ``ids`` (the clip
    id and its crop, ``<clip_id>[0:<frames>]``) and ``recordings`` (each clip's source recording)."""
    frames = int(clips.f0_hz.shape[-1])
    return {"ids": [f"{c}[0:{frames}]" for c in clips.clip_ids.tolist()],
            "recordings": [str(r) for r in clips.recording_ids.tolist()]}


def require_mss_length(n: int, scales: Sequence[int] = DEFAULT_SCALES) -> None:
    """A one-line :class:`UserError` when ``n`` samples are too few for the largest MSS window (its
    reflect padding needs more than half a window), instead of torch's padding error."""
    if n <= max(scales) // 2:
        raise UserError(f"audio too short for MSS scale {max(scales)}: {n} samples at 16 kHz (needs > {max(scales) // 2})")


@_metric("mss", "mss_teacher")
def _mss(ctx: EvalContext, name: str) -> Measured:
    ref = ctx.target() if name == "mss" else ctx.teacher_audio()
    pred = ctx.pred()
    require_mss_length(min(ref.shape[-1], pred.shape[-1]))
    vals: list[float] = []
    for i in range(0, pred.shape[0], 16):
        vals += [float(v) for v in mss_per_clip(torch.from_numpy(ref[i : i + 16]), torch.from_numpy(pred[i : i + 16])).tolist()]
    return Measured(float(np.mean(vals)), f"mss/1 scales={','.join(map(str, DEFAULT_SCALES))}", vals,
                    list(bootstrap_mean_interval(vals, n_boot=N_BOOT_MSS, seed=ctx.seed)))


@_metric("fad", "fad_inf", "kad")
def _embedding_distance(ctx: EvalContext, name: str) -> Measured:
    out, defs = ctx.compared()
    if out is None:
        return Measured(None, defs[name])
    interval = out.get("intervals", {}).get(name)
    return Measured(out.get(name), defs[name], interval=list(interval) if interval is not None else None)


@_metric("rtf_offline")
def _rtf_offline(ctx: EvalContext, name: str) -> Measured:
    off = ctx.speed()["offline"]
    secs = ctx.test_set.f0_hz.shape[-1] / 250.0
    return Measured(off["rtf"], f"whole {secs:g} s clip, median of {off['repeats']}, {ctx.speed_suffix()}")


@_metric(*[f"{k}_stream_{b}" for b in STREAM_BUFFERS for k in ("rtf", "p99_ms", "miss_rate")])
def _stream(ctx: EvalContext, name: str) -> Measured:
    kind, _, b = name.rpartition("_stream_")
    s = ctx.speed()["stream"][int(b)]
    return Measured(s[kind], f"{b}-sample buffers, state carried, {s['buffers']} buffers, {ctx.speed_suffix()}")


@_metric("params", "params_trainable")
def _params(ctx: EvalContext, name: str) -> Measured:
    return Measured(float(ctx.once("params", lambda: count_params(ctx.model))[name]),
                    "parameters incl. int8-packed weights (float-equivalent count)")


@_metric("flops_per_s")
def _flops(ctx: EvalContext, name: str) -> Measured:
    fl = decoder_flops(ctx.model)
    return Measured(fl["flops_per_s"], f"{fl['scope']} FLOPs/s (FlopCounterMode + formula); not counted: {fl['not_counted']}")


@_metric("param_bytes")
def _param_bytes(ctx: EvalContext, name: str) -> Measured:
    return Measured(float(memory.param_bytes(ctx.model)), "parameters + buffers + packed int8 weights, bytes in memory")


@_metric("checkpoint_bytes")
def _checkpoint_bytes(ctx: EvalContext, name: str) -> Measured:
    return Measured(float(memory.checkpoint_bytes(ctx.checkpoint())), "size of the ddspbench checkpoint file")


def _in_child(ctx: EvalContext, measure: Callable[..., dict[str, Any]]) -> dict[str, Any] | str:
    """``measure(checkpoint, threads=, plugins=)`` in a fresh process (the memory metrics); its result, or
    why it failed (the child failed or timed out: the row says so and keeps its other metrics)."""
    module = type(ctx.model).__module__
    try:
        return measure(ctx.checkpoint(), threads=ctx.threads or 1, plugins=[module] if module != "__main__" else [])
    except RuntimeError as exc:
        return f"not measured: {str(exc)[:200]}"


@_metric("peak_mem_bytes")
def _peak_mem(ctx: EvalContext, name: str) -> Measured:
    pm = _in_child(ctx, memory.peak_inference_memory)
    if isinstance(pm, str):
        return Measured(None, pm)
    return Measured(float(pm["peak_mem_bytes"]), f"4 s clip on CPU, {pm['method']}, threads={pm['threads']}")


@_metric("engine_bytes")
def _engine_bytes(ctx: EvalContext, name: str) -> Measured:
    try:
        eb = memory.engine_bytes(ctx.model, 64)
    except UserError as exc:  # a model the engine cannot run: say why in the row, keep the rest
        return Measured(None, f"not measured: {exc}")
    # the definition is the same for every candidate (records are compared by it); the parts are in the total
    return Measured(float(eb["total"]), "native engine, one stream, 64-sample buffers: weights as stored + constants "
                                        "+ streaming state + scratch, bytes")


@_metric("peak_rss_bytes")
def _peak_rss(ctx: EvalContext, name: str) -> Measured:
    pr = _in_child(ctx, memory.peak_engine_rss)
    if isinstance(pr, str):
        return Measured(None, pr)
    return Measured(float(pr["peak_rss_bytes"]), f"4 s clip streamed at {pr['buffer']}-sample buffers, "
                                                 f"{pr['method']}, threads={pr['threads']}")


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

    Each metric is computed by its registered :class:`Metric` from one :class:`EvalContext`.
    ``speed_backend`` is the inference path the speed metrics time: ``eager`` (this function's default:
    the model's forward, any model), ``native`` (the compiled engine of :mod:`baselines.native`: float32
    and int8/bf16-stored family models on CPU; the default of ``ddspbench evaluate`` and of every CPU
    preset), ``torchscript`` or ``onnxruntime`` (the deployable artifacts ``ddspbench export`` writes,
    timed in that runtime with the same streaming protocol; float32 and int8/bf16 models, CPU). Its name
    ends every speed metric's definition.

    Raises:
        CandidateFailed: the model's output holds NaN or infinity.
        UserError: an unknown metric, ``mss_teacher`` without a teacher, a missing embedding back-end.
    """
    names = expand_metrics(metrics, stream_buffers)
    if "mss_teacher" in names and teacher is None:
        raise UserError("metric mss_teacher needs a teacher model (evaluate --teacher CKPT)")
    ctx = EvalContext(model=model, test_set=test_set, names=names, teacher=teacher, embedding=embedding,
                      buffers=tuple(stream_buffers), device=device, threads=threads, seed=seed, ckpt_dir=ckpt_dir,
                      checkpoint_path=checkpoint_path, speed_backend=speed_backend)
    values: dict[str, float | None] = {}
    defs: dict[str, str] = {}
    per_clip: dict[str, list[float]] = {}
    intervals: dict[str, list[float]] = {}
    artifacts: dict[str, str] = {}
    model.to(device).eval()
    try:
        with num_threads(threads), exact_float32(device):  # CUDA renders score what the CPU's do
            if audio_out is not None:
                ctx.pred()  # rendered (and checked finite) first: the examples are written even without audio metrics
            for name in names:
                if name not in METRIC_IMPLS:
                    continue  # train_seconds: set by whoever trained the candidate
                m = METRIC_IMPLS.get(name).compute(ctx)
                values[name], defs[name] = m.value, m.definition
                if m.per_clip is not None:
                    per_clip[name] = m.per_clip
                if m.interval is not None:
                    intervals[name] = m.interval
            if audio_out is not None and n_audio_examples > 0:
                out_dir = Path(audio_out)
                for k in range(min(n_audio_examples, len(test_set))):
                    write_wav(out_dir / f"{safe_name(test_set.clip_ids[k])}.wav", ctx.pred()[k])
                artifacts["audio"] = str(out_dir)
    finally:
        ctx.close()
    if checkpoint_path is not None:
        artifacts.setdefault("checkpoint", str(checkpoint_path))
    return EvalResult(metrics={n: values.get(n) for n in names}, units={n: metric_unit(n) for n in names},
                      per_clip=per_clip, intervals=intervals, metric_defs=defs, artifacts=artifacts,
                      clips=clip_identity(test_set) if per_clip else {})
