"""Deployable artifacts of a family model and their runners: ONNX, TorchScript and the native engine file.

* ``onnx``: :class:`baselines.portable.PortableStep` exported by ``torch.onnx.export`` (the TorchScript-based
  exporter, opset 18) for a fixed batch and buffer: inputs ``f0_hz``, ``loudness_db`` ``(batch, frames)`` and
  the state tensors, outputs ``audio`` ``(batch, 64 frames)`` and ``<name>_out`` for every state tensor. A
  sidecar ``<file>.json`` lists inputs, outputs, shapes, dtypes and the fresh state's values (zeros, the
  block counter 0 and the noise key of the export seed). int8/bf16 decoder weights stay int8/bf16
  initializers, widened in the graph (``Cast`` + ``Mul``); ONNX Runtime may fold them to float32 in memory
  when it loads the session (its constant folding), the file keeps them as stored.
* ``torchscript``: the same step traced, inside a scripted host module that keeps the state
  (``forward(f0_hz, loudness_db) -> audio`` per buffer, ``reset()``), the way nn~ / Neutone-style hosts
  load a model (``torch.jit.load``; no ddspbench, no torchaudio). Weights stay as stored (int8 buffers
  widened per call).
* ``engine``: :meth:`baselines.native.NativeEngine.save` (arrays in ``.npz`` + JSON metadata), loaded by
  :meth:`NativeEngine.load` without the model code.

:func:`open_artifact` opens any of them as a runner (``runner(f0, loud) -> audio``, ``runner.reset()``),
which the parity check (:func:`check_parity`, measures in :mod:`suite.metrics.parity`) and the speed metric use.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ddspbench.baselines.native import NativeEngine
from ddspbench.baselines.portable import PortableStep
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics.parity import parity_stats

__all__ = ["FORMATS", "OPSET", "export_artifact", "export_onnx", "export_torchscript", "open_artifact",
           "onnx_bytes", "torchscript_module", "artifact_runner", "OnnxRunner", "TorchScriptRunner",
           "render_blocks", "eager_render", "check_parity"]

FORMATS = ("onnx", "torchscript", "engine")
OPSET = 18


def _probe(step: PortableStep, frames: int, batch: int, seed: Any) -> tuple[Tensor, Tensor, list[Tensor]]:
    t = torch.arange(frames, dtype=torch.float32)
    f0 = (220.0 + 10.0 * torch.sin(t)).expand(batch, -1).contiguous()
    loud = (-30.0 + 5.0 * torch.cos(t)).expand(batch, -1).contiguous()
    return f0, loud, step.init_state(batch, seed)


def _xor_symbolic(g: Any, a: Any, b: Any) -> Any:
    return g.op("BitwiseXor", a, b)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).split(" [Caused by")[0][:200]


def onnx_bytes(model: nn.Module, frames: int, *, batch: int = 1, seed: Any = 0) -> tuple[bytes, dict[str, Any]]:
    """The ONNX model of one ``frames``-frame buffer and its interface description (see the module docstring)."""
    try:
        import onnx  # noqa: F401  (optional: the [onnx] extra)
    except ImportError:
        raise UserError("export: format onnx needs onnx and onnxruntime (pip install 'ddspbench[onnx]')") from None
    from torch.onnx import register_custom_op_symbolic

    # The legacy exporter has no int64 XOR; ONNX has BitwiseXor since opset 18 (the noise hash needs it).
    register_custom_op_symbolic("aten::__xor_", _xor_symbolic, OPSET)
    step = PortableStep(model).eval()
    f0, loud, state = _probe(step, frames, batch, seed)
    names = step.state_names
    in_names = ["f0_hz", "loudness_db", *names]
    out_names = ["audio", *[n + "_out" for n in names]]
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(step, (f0, loud, state), buf, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]
                              input_names=in_names, output_names=out_names, do_constant_folding=False)
    except Exception as exc:  # the exporter raises many kinds; the first line names the op
        raise UserError(f"export: the model does not export to ONNX ({_first_line(exc)})") from exc
    return buf.getvalue(), _interface(step, frames, batch, seed, state)


def _interface(step: PortableStep, frames: int, batch: int, seed: Any, state: list[Tensor]) -> dict[str, Any]:
    def desc(name: str, t: Tensor) -> dict[str, Any]:
        d: dict[str, Any] = {"name": name, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}
        d["init"] = "zeros" if not bool(t.ne(0).any()) else t.reshape(-1).tolist()
        return d

    return {
        "format": "ddspbench streaming step", "family": step.family, "block": step.block,
        "sample_rate": step.sample_rate, "buffer_frames": int(frames), "buffer_samples": int(frames) * step.block,
        "batch": int(batch), "seed": seed,
        "inputs": [{"name": "f0_hz", "shape": [batch, frames], "dtype": "float32"},
                   {"name": "loudness_db", "shape": [batch, frames], "dtype": "float32"},
                   *[desc(n, t) for n, t in zip(step.state_names, state)]],
        "outputs": ["audio", *[n + "_out" for n in step.state_names]],
        "state_names": list(step.state_names),
    }


def export_onnx(model: nn.Module, frames: int, path: str | Path, *, batch: int = 1, seed: Any = 0) -> dict[str, Any]:
    """Write ``path`` (the ONNX step) and ``path.json`` (its interface); returns the interface."""
    data, info = onnx_bytes(model, frames, batch=batch, seed=seed)
    path = Path(path)
    path.write_bytes(data)
    Path(str(path) + ".json").write_text(json.dumps(info, indent=1) + "\n")
    return info


class _Host(nn.Module):
    """The state kept inside the module: one ``forward`` per buffer, ``reset`` for a fresh stream."""

    def __init__(self, step: Any, initial: list[Tensor], buffer_frames: int, batch: int, family: str) -> None:
        super().__init__()
        self.step = step
        self.initial = [t.clone() for t in initial]
        self.state = [t.clone() for t in initial]
        self.buffer_frames = buffer_frames
        self.batch = batch
        self.sample_rate = 16000
        self.family = family

    def forward(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        audio, new = self.step(f0_hz, loudness_db, self.state)
        self.state = new
        return audio

    @torch.jit.export
    def reset(self) -> None:
        self.state = [t.clone() for t in self.initial]


def torchscript_module(model: nn.Module, frames: int, *, batch: int = 1, seed: Any = 0) -> torch.jit.ScriptModule:
    """The scripted host module (state inside) around the traced portable step."""
    step = PortableStep(model).eval()
    f0, loud, state = _probe(step, frames, batch, seed)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(step, (f0, loud, state), check_trace=False)
            host = torch.jit.script(_Host(traced, state, int(frames), int(batch), step.family))
    except Exception as exc:
        raise UserError(f"export: TorchScript export failed ({_first_line(exc)})") from exc
    return host


def export_torchscript(model: nn.Module, frames: int, path: str | Path, *, batch: int = 1, seed: Any = 0) -> dict[str, Any]:
    """Write the scripted host module to ``path`` (``torch.jit.save``); returns a short description."""
    host = torchscript_module(model, frames, batch=batch, seed=seed)
    torch.jit.save(host, str(path))
    return {"format": "torchscript", "buffer_frames": int(frames), "batch": int(batch), "seed": seed}


def export_artifact(model: nn.Module, fmt: str, frames: int, path: str | Path, *, seed: Any = 0) -> dict[str, Any]:
    """Write ``model`` as ``fmt`` (one of :data:`FORMATS`) to ``path`` (batch 1); returns a description."""
    if fmt == "onnx":
        return export_onnx(model, frames, path, seed=seed)
    if fmt == "torchscript":
        return export_torchscript(model, frames, path, seed=seed)
    if fmt == "engine":
        NativeEngine(model, batch=1, seed=seed).save(path)
        return {"format": "engine", "seed": seed}
    raise UserError(f"export: unknown format {fmt!r}; known: {', '.join(FORMATS)}")


class OnnxRunner:
    """Runs an ONNX step (file or bytes) in ONNX Runtime (one thread), carrying the state between calls."""

    backend = "onnxruntime"

    def __init__(self, model: bytes | str | Path, info: dict[str, Any] | None = None) -> None:
        import onnxruntime as ort  # optional back-end (the [onnx] extra): imported where used

        if info is None:
            info = json.loads(Path(str(model) + ".json").read_text())
            model = str(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise UserError(f"export: ONNX Runtime cannot load the model ({_first_line(exc)})") from exc
        self.info = info
        self.batch = int(info["batch"])
        self.buffer_frames = int(info["buffer_frames"])
        self._graph_inputs = {i.name for i in self.session.get_inputs()}  # the exporter drops unused inputs
        self._initial = [_initial_array(d) for d in info["inputs"][2:]]
        self.reset()

    def reset(self, seed: Any = None) -> None:
        if seed is not None and seed != self.info.get("seed"):
            raise UserError("export: an ONNX artifact restarts with the noise seed it was exported with")
        self._state = [a.copy() for a in self._initial]

    def __call__(self, f0_hz: Any, loudness_db: Any) -> Tensor:
        names = self.info["state_names"]
        feed = {"f0_hz": _np32(f0_hz), "loudness_db": _np32(loudness_db)}
        feed.update(zip(names, self._state))
        outs = self.session.run(None, {k: v for k, v in feed.items() if k in self._graph_inputs})
        self._state = list(outs[1:])
        return torch.from_numpy(outs[0])


def _initial_array(d: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    if d["init"] == "zeros":
        return np.zeros(d["shape"], dtype=dtype)
    return np.asarray(d["init"], dtype=dtype).reshape(d["shape"])


def _np32(x: Any) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    return np.ascontiguousarray(a, dtype=np.float32)


class TorchScriptRunner:
    """Runs a saved (or in-memory) TorchScript host module; the state stays inside it."""

    backend = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule | str | Path, seed: Any = None) -> None:
        self.module = torch.jit.load(str(module)) if isinstance(module, (str, Path)) else module
        self.buffer_frames = int(self.module.buffer_frames)
        self.batch = int(self.module.batch)
        self.seed = seed

    def reset(self, seed: Any = None) -> None:
        if seed is not None and self.seed is not None and seed != self.seed:
            raise UserError("export: a TorchScript artifact restarts with the noise seed it was exported with")
        self.module.reset()

    def __call__(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.module(f0_hz, loudness_db)


class _EngineRunner:
    backend = "native"

    def __init__(self, engine: Any, buffer_frames: int) -> None:
        self.engine = engine
        self.buffer_frames = int(buffer_frames)
        self.batch = int(engine.batch)

    def reset(self, seed: Any = None) -> None:
        self.engine.reset(seed)

    def __call__(self, f0_hz: Any, loudness_db: Any) -> Tensor:
        return torch.from_numpy(self.engine(f0_hz, loudness_db))


def artifact_runner(model: nn.Module, fmt: str, frames: int, *, batch: int = 1, seed: Any = 0) -> Any:
    """The runner of what :func:`export_artifact` would write, built in memory (the speed metric's view)."""
    if fmt == "onnx":
        return OnnxRunner(*onnx_bytes(model, frames, batch=batch, seed=seed))
    if fmt == "torchscript":
        return TorchScriptRunner(torchscript_module(model, frames, batch=batch, seed=seed), seed=seed)
    raise UserError(f"export: no in-memory runner for format {fmt!r}")


def open_artifact(path: str | Path, fmt: str, buffer_frames: int = 1) -> Any:
    """A runner over the artifact file ``path`` of format ``fmt`` (``buffer_frames``: the engine's buffer, which
    the file does not fix; ONNX and TorchScript artifacts carry their own)."""
    if fmt == "onnx":
        return OnnxRunner(path)
    if fmt == "torchscript":
        return TorchScriptRunner(path)
    if fmt == "engine":
        return _EngineRunner(NativeEngine.load(path), buffer_frames)
    raise UserError(f"export: unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def render_blocks(runner: Any, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
    """Clips ``(N, T)`` through ``runner`` one at a time (batch 1), each from a fresh state, buffer by buffer.

    Only whole buffers are rendered: ``T`` is cut to a multiple of ``runner.buffer_frames``.
    """
    fb = int(runner.buffer_frames)
    t = f0_hz.shape[-1] // fb * fb
    clips = []
    for i in range(f0_hz.shape[0]):
        runner.reset()
        clips.append(torch.cat([runner(f0_hz[i: i + 1, j: j + fb].contiguous(), loudness_db[i: i + 1, j: j + fb].contiguous())
                                for j in range(0, t, fb)], dim=-1))
    return torch.cat(clips, dim=0)


def eager_render(model: nn.Module, f0_hz: Tensor, loudness_db: Tensor, seed: Any = 0) -> Tensor:
    """The reference: the eager model, one offline call per clip from ``init_state(1, seed)``."""
    with torch.no_grad():
        return torch.cat([model(f0_hz[i: i + 1], loudness_db[i: i + 1], model.init_state(1, seed=seed))["audio"]
                          for i in range(f0_hz.shape[0])], dim=0)


def check_parity(model: nn.Module, runner: Any, f0_hz: Tensor, loudness_db: Tensor, seed: Any = 0) -> dict[str, float]:
    """:func:`suite.metrics.parity.parity_stats` of ``runner`` (buffer by buffer) against the eager model."""
    fb = int(runner.buffer_frames)
    t = f0_hz.shape[-1] // fb * fb
    if t < 1:
        raise UserError(f"parity: clips of {f0_hz.shape[-1]} frames are shorter than one {fb}-frame buffer")
    f0_hz, loudness_db = f0_hz[:, :t].contiguous(), loudness_db[:, :t].contiguous()
    out = render_blocks(runner, f0_hz, loudness_db)
    ref = eager_render(model.eval(), f0_hz, loudness_db, seed)
    return parity_stats(out.numpy(), ref.numpy(), fb * int(getattr(model, "block_size", 64)))
