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
from ddspbench.suite.metrics.compare import MIN_CLIPS, compare_sets
from ddspbench.suite.metrics.declare import DECLARED, Measured, group_members
from ddspbench.suite.metrics.embeddings import embed_clips, get_embedding
from ddspbench.suite.metrics.speed import exact_float32, measure_speed, num_threads
from ddspbench.suite.names import safe_name
from ddspbench.suite.records import Measurements, metric_unit
from ddspbench.suite.seeds import stream_seeds
from ddspbench.suite.traits import engine_support

if TYPE_CHECKING:
    from ddspbench.suite.data.store import ClipSet

__all__ = ["EvalResult", "EvalContext", "Measured", "CandidateFailed", "metric_groups", "expand_metrics", "render",
           "evaluate_model", "clip_identity"]

N_BOOT_FAD = 100


class CandidateFailed(RuntimeError):
    """The candidate cannot be evaluated (e.g. NaN in its output); its record is a failed row."""


EvalResult = Measurements
"""What :func:`evaluate_model` measured: the result fields of a record (:class:`suite.records.Measurements`)."""


def metric_groups() -> list[str]:
    """The group names the declarations use (``rtf``, ``size``, ``memory``, ``stream``), in declaration order."""
    return list(dict.fromkeys(d.group for d in DECLARED.values() if d.group))


def expand_metrics(names: str | Sequence[str], buffers: Sequence[int]) -> list[str]:
    """Metric names and groups -> declared metric names (order kept, duplicates dropped).

    A group stands for its declared members; per-buffer members only at the asked ``buffers``.
    """
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
    declared_buffers = sorted({d.buffer for d in DECLARED.values() if d.buffer is not None})
    bad = [b for b in buffers if int(b) not in declared_buffers]
    groups = metric_groups()
    out: list[str] = []
    for item in items:
        if not item:
            continue
        if item in groups:
            members = list(group_members(item))
            if bad and any(d.buffer is not None for d in members):
                raise UserError(f"no standard metric {members[0].name.rsplit('_', 1)[0] + '_' + str(bad[0])!r} "
                                f"(streaming buffers: {', '.join(map(str, declared_buffers))})")
            expanded = [d.name for d in members if d.buffer is None or d.buffer in buffers]
        elif item in DECLARED:
            expanded = [item]
        else:
            known = ", ".join([*groups, *[m for m, d in DECLARED.items() if d.buffer is None]])
            raise UserError(f"unknown metric {item!r}; known: {known} (and rtf_stream_<b>, p99_ms_stream_<b>, miss_rate_stream_<b>)")
        for e in expanded:
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
                                 backend=self.timing_backend())
        return cast(dict[str, Any], self.once("speed", make))

    def timing_backend(self) -> str:
        """The backend speed is timed on: the asked one, except ``native`` for a family that declares no engine
        support (:func:`suite.traits.engine_support`), which is timed eager (:meth:`speed_suffix` says so)."""
        family_model = getattr(self.model, "family", None) is not None  # anything else is refused by the engine
        if self.speed_backend == "native" and family_model and engine_support(self.model) is not None:
            return "eager"
        return self.speed_backend

    def timing_device(self) -> str:
        """Where speed is measured: the evaluation's device for eager, the CPU for an exported path (the
        native engine and TorchScript export are CPU deployments, also for a model trained on CUDA)."""
        return self.device if self.timing_backend() == "eager" else "cpu"

    def speed_suffix(self) -> str:
        backend = self.timing_backend()
        why = f" (native asked: {engine_support(self.model)})" if backend != self.speed_backend else ""
        return f"threads={torch.get_num_threads()}, {self.timing_device()}, backend={backend}{why}"

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

    def in_child(self, measure: Callable[..., dict[str, Any]]) -> dict[str, Any] | str:
        """``measure(checkpoint, threads=, plugins=)`` in a fresh process (the memory metrics); its result, or
        why it failed (the child failed or timed out: the row says so and keeps its other metrics)."""
        module = type(self.model).__module__
        try:
            return measure(self.checkpoint(), threads=self.threads or 1, plugins=[module] if module != "__main__" else [])
        except RuntimeError as exc:
            return f"not measured: {str(exc)[:200]}"

    def close(self) -> None:
        self._tmp.close()


def _rendered(model: nn.Module, ctx: EvalContext, who: str) -> np.ndarray:
    audio = render(model, ctx.test_set, device=ctx.device, seed=ctx.seed)
    _check_finite(audio, who)
    return audio


def clip_identity(clips: ClipSet) -> dict[str, list[str]]:
    """The test clips' identity a record keeps beside its per-clip values (docs/CONTRACTS.md): ``ids`` (the clip
    id and its crop, ``<clip_id>[0:<frames>]``) and ``recordings`` (each clip's source recording)."""
    frames = int(clips.f0_hz.shape[-1])
    return {"ids": [f"{c}[0:{frames}]" for c in clips.clip_ids.tolist()],
            "recordings": [str(r) for r in clips.recording_ids.tolist()]}


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
                compute = DECLARED[name].compute
                if compute is None:
                    continue  # train_seconds: set by whoever trained the candidate
                m = compute(ctx)
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
