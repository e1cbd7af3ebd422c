"""An exported inference path: the model's own forward traced for one buffer size, state as tensors.

Streaming a family model eagerly costs a hundred-odd small tensor ops per buffer, each paying
Python and dispatcher overhead (several microseconds) that dwarfs the arithmetic at 64-sample
buffers. :func:`export_streaming` traces the model's ``forward`` (the same code, no second
streaming implementation) for a fixed batch and buffer length, with the streaming state flattened
into a list of tensors (the block counter ``frame`` becomes a 0-d int64 tensor, so the graph is valid
for every buffer of the stream, the first included). The returned :class:`StreamingRunner` carries
the state between calls.

Backends:

* ``"torchscript"``: ``torch.jit.trace`` + ``torch.jit.freeze`` (weights, cached reverb spectra and
  noise-filter basis folded in as constants); ``optimize=True`` adds ``torch.jit.optimize_for_inference``.
* ``"onnxruntime"``: not the eager forward (its int64 noise hash, FFTs and complex reverb delay line do
  not export) but :class:`baselines.portable.PortableStep`, the same function in ONNX-friendly ops,
  exported by :mod:`baselines.deploy` (opset 18) and run by an ``InferenceSession`` with one intra-op
  thread and all graph optimisations; float32 and int8/bf16-stored models.

:func:`exported_model` (the speed metric's ``backend=``) times the deployable artifacts: for
``torchscript`` the portable step's state-keeping host module that ``ddspbench export`` writes (not
the traced eager forward of :func:`export_streaming`), for ``onnxruntime`` the ONNX step, for
``native`` the engine.

Measured speed (eager vs exported, wall and CPU time): ``benchmarks/bench_export.py`` ->
``benchmarks/results_export.md``.

* ``"native"``: not a trace but :class:`baselines.native.NativeEngine`, the model's weights in numba-compiled
  kernels (decoder, synth and reverb in one native call per buffer); same audio to float rounding.

What is frozen at export: the weights, the batch size, the buffer length and the eval-mode
inference path. Export again after changing the model. One offline render is a runner whose buffer
is the whole clip (:func:`export_offline`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ddspbench.baselines.deploy import artifact_runner
from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import EXPORTERS

__all__ = ["BACKENDS", "ExportedModel", "StreamingRunner", "export_offline", "export_streaming", "exported_model",
           "onnxruntime_available"]

BACKENDS: tuple[str, ...] = ("torchscript", "onnxruntime", "native")

# A flattened state: nested dicts/lists of tensors and ints -> leaves + a spec to rebuild them.
_Spec = Any


def _flatten(obj: Any, leaves: list[Tensor]) -> _Spec:
    if isinstance(obj, dict):
        return ("dict", [(k, _flatten(v, leaves)) for k, v in obj.items()])
    if isinstance(obj, (list, tuple)):
        return ("list", [_flatten(v, leaves) for v in obj])
    if isinstance(obj, bool) or not isinstance(obj, (int, Tensor)):
        raise UserError(f"export: cannot flatten a streaming state entry of type {type(obj).__name__}")
    leaves.append(obj if isinstance(obj, Tensor) else torch.tensor(int(obj), dtype=torch.int64))
    return ("leaf", None)


def _unflatten(spec: _Spec, leaves: list[Tensor]) -> Any:
    it = iter(leaves)

    def build(s: _Spec) -> Any:
        kind, body = s
        if kind == "dict":
            return {k: build(v) for k, v in body}
        if kind == "list":
            return [build(v) for v in body]
        return next(it)

    return build(spec)


class _Step(nn.Module):
    """``(f0, loudness, *state leaves) -> (audio, *new state leaves)``: the model's forward on flat tensors."""

    def __init__(self, model: nn.Module, spec: _Spec) -> None:
        super().__init__()
        self.model = model
        self.spec = spec

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, *leaves: Tensor) -> tuple[Tensor, ...]:
        out = self.model(f0_hz, loudness_db, _unflatten(self.spec, list(leaves)))
        new_leaves: list[Tensor] = []
        _flatten(out["state"], new_leaves)
        return (out["audio"], *new_leaves)


def onnxruntime_available() -> bool:
    """Whether onnx and onnxruntime can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class StreamingRunner:
    """Runs an exported step buffer by buffer, carrying the state.

    Call it with ``f0_hz, loudness_db`` of shape ``(batch, buffer_frames)``; it returns the audio
    ``(batch, 64 * buffer_frames)`` and keeps the new state for the next call. :meth:`reset` starts
    a fresh signal (a new runner starts fresh too).
    """

    def __init__(self, step: Callable[..., tuple[Any, ...]], init_state: Callable[[int, int | None], Any],
                 spec: _Spec, batch: int, buffer_frames: int, backend: str, seed: int | None) -> None:
        self._step = step
        self._init_state = init_state
        self._spec = spec
        self.batch = batch
        self.buffer_frames = buffer_frames
        self.backend = backend
        self.seed = seed
        self._leaves: list[Any] = []
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """A fresh stream; ``seed`` fixes the noise (default: the seed given at export)."""
        leaves: list[Tensor] = []
        spec = _flatten(self._init_state(self.batch, self.seed if seed is None else seed), leaves)
        if spec != self._spec:
            raise UserError("export: the model's state layout changed since it was exported; export it again")
        self._leaves = leaves

    def state(self) -> Any:
        """The current state as the eager model would hold it (tensors; ``frame`` a 0-d tensor)."""
        return _unflatten(self._spec, [torch.as_tensor(x) for x in self._leaves])

    def __call__(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        want = (self.batch, self.buffer_frames)
        if tuple(f0_hz.shape) != want or tuple(loudness_db.shape) != want:
            raise UserError(f"exported runner takes (batch, frames) = {want}, got {tuple(f0_hz.shape)} "
                            f"and {tuple(loudness_db.shape)}")
        with torch.inference_mode():
            outs = self._step(f0_hz, loudness_db, *self._leaves)
        self._leaves = list(outs[1:])
        return outs[0]


def _check_exportable(model: nn.Module, backend: str) -> None:
    if not callable(getattr(model, "init_state", None)):
        raise UserError(f"export: {type(model).__name__} has no init_state (not a streaming family model)")
    for name, mod in model.named_modules():
        if "quantized" in type(mod).__module__ or type(mod).__name__ == "OrtDecoder":
            raise UserError(f"export: {name} is a {type(mod).__module__}.{type(mod).__name__} layer, "
                            f"which the {backend} path does not support; export the float model")
    for p in model.parameters():
        if p.dtype not in (torch.float32, torch.float64):
            raise UserError(f"export: parameters of dtype {p.dtype} are not supported by the {backend} path "
                            "(float models only; int8/bf16-quantized models run on the native backend)")


def export_streaming(model: nn.Module, buffer_frames: int, backend: str = "torchscript", *, batch: int = 1,
                     seed: int | None = 0, optimize: bool = False) -> StreamingRunner:
    """Trace ``model``'s forward for buffers of ``buffer_frames`` frames (64 samples each).

    Args:
        model: a float family model (``forward(f0_hz, loudness_db, state)`` and ``init_state``); put in eval mode.
        buffer_frames: frames per call (1 = a 64-sample buffer).
        backend: ``"torchscript"``, ``"onnxruntime"`` or ``"native"``.
        batch: batch size of every call.
        seed: noise seed of the runner's fresh states (``None``: drawn from torch's RNG at each reset).
        optimize: TorchScript only: also run ``torch.jit.optimize_for_inference``.

    Raises:
        UserError: unknown backend, a model with quantized/ONNX layers or non-float weights, a missing
            onnxruntime, or a graph that does not export.
    """
    if backend not in BACKENDS:
        raise UserError(f"export: unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if int(buffer_frames) < 1 or int(batch) < 1:
        raise UserError(f"export: buffer_frames and batch must be >= 1, got {buffer_frames} and {batch}")
    buffer_frames, batch = int(buffer_frames), int(batch)
    model = model.eval()
    if backend == "onnxruntime":  # the portable step (the export command's ONNX artifact); int8/bf16 weights too
        if not onnxruntime_available():
            raise UserError("export: backend 'onnxruntime' needs onnx and onnxruntime (pip install 'ddspbench[onnx]')")
        return artifact_runner(model, "onnx", buffer_frames, batch=batch, seed=seed)  # type: ignore[no-any-return]
    if backend != "native":  # the native engine checks the model itself (it runs int8/bf16-stored weights too)
        _check_exportable(model, backend)
    if backend == "native":
        # Lazy: the native engine compiles numba kernels at import; only this backend needs it.
        from ddspbench.baselines.native import NativeRunner, native_available

        if not native_available():
            raise UserError("export: backend 'native' needs numba (pip install numba)")
        return NativeRunner(model, buffer_frames, batch=batch, seed=seed)  # type: ignore[return-value]
    leaves: list[Tensor] = []
    spec = _flatten(model.init_state(batch, seed=0), leaves)  # type: ignore[operator]
    step = _Step(model, spec).eval()
    t = torch.arange(buffer_frames, dtype=torch.float32)
    f0 = (220.0 + 10.0 * torch.sin(t)).expand(batch, -1).contiguous()
    loud = (-30.0 + 5.0 * torch.cos(t)).expand(batch, -1).contiguous()
    args = (f0, loud, *leaves)
    with torch.no_grad():
        probe = step(*args)
        if not _same_layout(model, probe, batch):
            raise UserError("export: the model's state changes layout between calls; it cannot be exported")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(step, args, check_trace=False)
            fn = torch.jit.freeze(traced.eval())
            if optimize:
                fn = torch.jit.optimize_for_inference(fn)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"export: TorchScript tracing failed ({first[:200]})") from exc
    return StreamingRunner(fn, model.init_state, spec, batch, buffer_frames, backend, seed)  # type: ignore[arg-type]


def _same_layout(model: nn.Module, outs: tuple[Tensor, ...], batch: int) -> bool:
    """Whether the step's outputs have one state leaf per input leaf, each of the input's shape and dtype."""
    ref: list[Tensor] = []
    _flatten(model.init_state(batch, seed=0), ref)  # type: ignore[operator]
    new = list(outs[1:])
    return len(new) == len(ref) and all(a.shape == b.shape and a.dtype == b.dtype for a, b in zip(new, ref))


def export_offline(model: nn.Module, frames: int, backend: str = "torchscript", **kwargs: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """A whole-clip renderer for inputs of ``frames`` frames: a fresh runner state at every call."""
    runner = export_streaming(model, frames, backend, **kwargs)

    def render(f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        runner.reset()
        return runner(f0_hz, loudness_db)

    return render


class ExportedModel:
    """A family model's call interface (``init_state`` / ``__call__(f0, loud, state)``) over an exported runner.

    Lets timing code written for eager models (:mod:`suite.metrics.speed`) run the exported path
    unchanged. ``offline=True``: every call renders from a fresh state (one whole clip per call);
    otherwise ``init_state`` restarts the stream and each call continues it (the ``state`` passed
    around is only a token; the runner holds the real one).
    """

    def __init__(self, runner: StreamingRunner, offline: bool = False) -> None:
        self.runner = runner
        self.offline = offline

    def init_state(self, batch_size: int, seed: int | None = None) -> dict[str, Any]:
        if batch_size != self.runner.batch:
            raise UserError(f"exported model takes batch {self.runner.batch}, got {batch_size}")
        self.runner.reset(seed)
        return {"exported": True}

    def __call__(self, f0_hz: Tensor, loudness_db: Tensor, state: Any = None) -> dict[str, Any]:
        if self.offline:
            self.runner.reset()
        return {"audio": self.runner(f0_hz, loudness_db), "state": {"exported": True}}


def exported_model(model: nn.Module, frames: int, backend: str = "torchscript", *, offline: bool = False,
                   batch: int = 1, seed: int | None = 0) -> ExportedModel:
    """The deployable artifact's runner wrapped as an :class:`ExportedModel` (the speed metric's view of a model).

    ``torchscript`` and ``onnxruntime`` time what ``ddspbench export --format torchscript|onnx`` writes (the
    portable step of :mod:`baselines.deploy`, float32 and int8/bf16 models), ``native`` the engine.
    """
    if backend == "torchscript":
        runner: Any = artifact_runner(model.eval(), "torchscript", frames, batch=batch, seed=seed)
    else:
        runner = export_streaming(model, frames, backend, batch=batch, seed=seed)
    return ExportedModel(runner, offline=offline)


for _backend in BACKENDS:
    EXPORTERS.register(_backend, obj=functools.partial(exported_model, backend=_backend),
                       description=f"{_backend} export of the model (offline or streaming)")
