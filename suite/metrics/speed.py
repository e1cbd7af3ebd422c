"""Inference speed: offline and streaming real-time factor, per-buffer latency, deadline misses.

One timing core, :func:`time_calls`, serves both modes through a ``run_fn(i)`` hook (STYLE §7):

- **offline**: ``run_fn`` renders the whole clip (4 s by default) in one call, no state carried;
- **streaming**: ``run_fn(i)`` renders buffer ``i`` of ``b`` samples (``b / 64`` frames) passing the
  model's state on from the previous buffer, the way an audio callback would. Every pass over the
  clip starts from a fresh :meth:`init_state`.

Each mode is warmed up first, then timed call by call: ``time.perf_counter`` on CPU, CUDA events
with ``torch.cuda.synchronize`` on GPU, everything under ``torch.inference_mode()``, with
``torch.set_num_threads(threads)`` (1 by default; restored afterwards). Reported per buffer size:
the median and 99th-percentile time of one buffer, the real-time factor (median buffer time / buffer
duration; < 1 is faster than real time) and the **deadline-miss rate**, the share of buffers that
took longer than the audio they produce. Offline RTF is the median over repeats of clip time / clip
duration. Every result carries the threads, torch version and CPU model it was measured with.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ddspbench.suite.errors import UserError
from ddspbench.suite.features import BLOCK_SIZE, CLIP_FRAMES, SAMPLE_RATE
from ddspbench.suite.provenance import provenance
from ddspbench.suite.registry import EXPORTERS

__all__ = [
    "exact_float32",
    "DEFAULT_BUFFERS",
    "num_threads",
    "time_calls",
    "example_inputs",
    "measure_offline",
    "measure_stream",
    "measure_speed",
]

DEFAULT_BUFFERS: tuple[int, ...] = (64, 256, 512)


@contextlib.contextmanager
def exact_float32(device: str | torch.device) -> Iterator[None]:
    """Run the block with CUDA's TF32 off (cuDNN convolutions and RNNs, and matmuls); no-op off CUDA.

    cuDNN uses TF32 for float32 convolutions and RNNs by default, rounding their inputs to 10-bit
    mantissas (DDX7's TCN is convolutions, HpN's and Wavetable's decoders are GRUs). Measurements run
    with it off, so a model rendered on CUDA scores what it scores on the CPU, to float32 rounding. On an
    H200 (torch 2.11) it made no measurable difference to the reduced models (``tests/gpu`` prints both);
    it guards the wider ones and other cards. The old settings are restored.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    old = _set_tf32(False, False)
    try:
        yield
    finally:
        _set_tf32(*old)


def _set_tf32(cudnn: bool, matmul: bool) -> tuple[bool, bool]:
    """Set cuDNN's and matmul's TF32 flags; returns the previous ``(cudnn, matmul)``."""
    import warnings

    with warnings.catch_warnings():  # torch >= 2.9 prefers fp32_precision; these flags still work
        warnings.simplefilter("ignore")
        old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul
    return old


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: unchanged); the old value is restored.

    The BLAS libraries loaded in the process (the OpenBLAS that numpy and the native engine's numba
    kernels call) are limited to ``n`` threads too, through threadpoolctl when it is installed.
    """
    old = torch.get_num_threads()
    limiter: Any = None
    if n is not None:
        try:
            # threadpoolctl limits only the libraries loaded when the limit is set: load scipy's BLAS
            # (the one numba-compiled kernels call, e.g. the native engine's) first.
            import scipy.linalg.cython_blas  # noqa: F401
        except ImportError:
            pass
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:  # before torch's own setting: restoring a BLAS that shares torch's OpenMP pool resets it too
            limiter = threadpool_limits(limits=int(n), user_api="blas")
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        torch.set_num_threads(old)


def time_calls(
    run_fn: Callable[[int], Any],
    n_calls: int,
    *,
    warmup: int = 0,
    device: str = "cpu",
    budget_s: float | None = None,
    min_calls: int = 1,
) -> np.ndarray:
    """Seconds taken by each of ``n_calls`` calls ``run_fn(0..n_calls-1)`` after ``warmup`` untimed calls.

    Args:
        run_fn: the work of call ``i``.
        n_calls: timed calls wanted.
        warmup: untimed calls first (``run_fn(0..warmup-1)``; their index restarts at 0 afterwards).
        device: ``"cpu"`` or a CUDA device (CUDA events, synchronized).
        budget_s: stop early once this much wall time was spent timing (at least ``min_calls``).
        min_calls: calls always timed, whatever the budget.
    """
    cuda = device.startswith("cuda")
    with torch.inference_mode():
        for i in range(warmup):
            run_fn(i)
        if cuda:
            torch.cuda.synchronize(device)
        times: list[float] = []
        start_all = time.perf_counter()
        for i in range(n_calls):
            if cuda:
                t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                stream = torch.cuda.current_stream(device)  # the events must be on the timed device's stream
                t0.record(stream)
                run_fn(i)
                t1.record(stream)
                torch.cuda.synchronize(device)
                times.append(t0.elapsed_time(t1) / 1000.0)
            else:
                t = time.perf_counter()
                run_fn(i)
                times.append(time.perf_counter() - t)
            if budget_s is not None and i + 1 >= min_calls and time.perf_counter() - start_all > budget_s:
                break
    return np.asarray(times, dtype=np.float64)


def example_inputs(frames: int = CLIP_FRAMES, batch: int = 1, device: str = "cpu", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A plausible control signal: a slow vibrato around 220-440 Hz and a loudness envelope in [-60, -10] dB."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32) / (SAMPLE_RATE / BLOCK_SIZE)
    base = 220.0 + 220.0 * torch.rand(batch, 1, generator=g)
    f0 = base * (1.0 + 0.01 * torch.sin(2 * torch.pi * 5.0 * t))[None, :]
    loud = -35.0 + 25.0 * torch.sin(2 * torch.pi * 0.5 * t + torch.rand(batch, 1, generator=g))
    return f0.to(device), loud.to(device)


def _init_state(model: nn.Module, batch: int, seed: int) -> Any:
    init = getattr(model, "init_state", None)
    return init(batch, seed=seed) if callable(init) else None


def measure_offline(
    model: nn.Module,
    f0_hz: torch.Tensor,
    loudness_db: torch.Tensor,
    *,
    repeats: int = 10,
    warmup: int = 2,
    device: str = "cpu",
    budget_s: float | None = 30.0,
) -> dict[str, float]:
    """Whole-clip inference time: ``{"rtf", "median_s", "p99_s", "audio_s", "repeats"}``."""
    audio_s = f0_hz.shape[-1] * BLOCK_SIZE / SAMPLE_RATE
    times = time_calls(lambda i: model(f0_hz, loudness_db), repeats, warmup=warmup, device=device, budget_s=budget_s, min_calls=3)
    med = float(np.median(times))
    return {"rtf": med / audio_s, "median_s": med, "p99_s": float(np.quantile(times, 0.99)), "audio_s": audio_s, "repeats": int(times.size)}


def measure_stream(
    model: nn.Module,
    f0_hz: torch.Tensor,
    loudness_db: torch.Tensor,
    buffer: int,
    *,
    min_buffers: int = 200,
    warmup: int = 10,
    device: str = "cpu",
    budget_s: float | None = 30.0,
    seed: int = 0,
) -> dict[str, float]:
    """Buffer-by-buffer inference with state carried.

    Returns:
        ``{"rtf", "median_ms", "p99_ms", "miss_rate", "buffers", "buffer_ms"}`` for buffers of
        ``buffer`` samples (a multiple of 64).
    """
    if buffer % BLOCK_SIZE or buffer <= 0:
        raise ValueError(f"buffer must be a positive multiple of {BLOCK_SIZE} samples, got {buffer}")
    fb = buffer // BLOCK_SIZE
    per_pass = f0_hz.shape[-1] // fb
    if per_pass < 1:
        raise ValueError(f"a {buffer}-sample buffer is longer than the {f0_hz.shape[-1] * BLOCK_SIZE}-sample input")
    holder: dict[str, Any] = {"state": None}

    def run(i: int) -> None:
        j = i % per_pass
        if j == 0:
            holder["state"] = _init_state(model, f0_hz.shape[0], seed)
        out = model(f0_hz[:, j * fb : (j + 1) * fb], loudness_db[:, j * fb : (j + 1) * fb], holder["state"])
        holder["state"] = out.get("state") if isinstance(out, dict) else None

    n = max(min_buffers, per_pass)
    n = int(np.ceil(n / per_pass) * per_pass)  # whole passes
    times = time_calls(run, n, warmup=min(warmup, per_pass), device=device, budget_s=budget_s, min_calls=min(n, 20))
    duration = buffer / SAMPLE_RATE
    med = float(np.median(times))
    return {
        "rtf": med / duration,
        "median_ms": med * 1000.0,
        "p99_ms": float(np.quantile(times, 0.99)) * 1000.0,
        "miss_rate": float(np.mean(times > duration)),
        "buffers": int(times.size),
        "buffer_ms": duration * 1000.0,
    }


def measure_speed(
    model: nn.Module,
    *,
    buffers: Sequence[int] = DEFAULT_BUFFERS,
    offline: bool = True,
    frames: int = CLIP_FRAMES,
    inputs: tuple[torch.Tensor, torch.Tensor] | None = None,
    device: str = "cpu",
    threads: int | None = 1,
    repeats: int = 10,
    min_buffers: int = 200,
    budget_s: float | None = 30.0,
    seed: int = 0,
    backend: str = "eager",
) -> dict[str, Any]:
    """Offline RTF and streaming figures keyed by buffer size, with the provenance of the figures.

    Args:
        model: a family model (``forward(f0_hz, loudness_db, state=None) -> {"audio", "state", ...}``).
        buffers: streaming buffer sizes in samples (multiples of 64); empty for none.
        offline: also time whole-clip inference.
        frames: clip length in frames when ``inputs`` is not given (1000 = 4 s).
        inputs: ``(f0_hz, loudness_db)`` of shape (1, T); default :func:`example_inputs`.
        device: where to run.
        threads: torch intra-op threads while measuring (None: leave as is).
        repeats: offline repetitions (median reported).
        min_buffers: streaming buffers timed per size (whole passes over the clip).
        budget_s: wall-time cap per measurement (results say how many calls were timed).
        seed: seed of the streaming state's noise.
        backend: ``"eager"`` (the model's forward), or ``"torchscript"`` / ``"onnxruntime"`` /
            ``"native"``: the exported path of :mod:`baselines.export`, built once per buffer size (and
            once for the whole clip offline) before timing; CPU only.
    """
    model = model.to(device).eval()
    f0, loud = inputs if inputs is not None else example_inputs(frames, device=device, seed=seed)
    f0, loud = f0.to(device), loud.to(device)

    def target(n_frames: int, whole_clip: bool) -> Any:
        if backend == "eager":
            return model
        if backend not in EXPORTERS:
            raise UserError(f"speed: unknown backend {backend!r}; known: eager, {', '.join(EXPORTERS.list())}")
        if device != "cpu":
            raise UserError(f"speed: backend {backend!r} is measured on CPU only, got device {device!r}")
        try:
            return EXPORTERS.get(backend)(model, n_frames, offline=whole_clip, batch=f0.shape[0], seed=seed)
        except UserError as exc:  # one line naming the layer, and the way out
            raise UserError(f"speed backend {backend!r}: {exc} (the eager backend times any model)") from None

    out: dict[str, Any] = {}
    with num_threads(threads):
        if offline:
            out["offline"] = measure_offline(target(f0.shape[-1], True), f0, loud, repeats=repeats, device=device,
                                             budget_s=budget_s)
        out["stream"] = {
            int(b): measure_stream(target(int(b) // BLOCK_SIZE, False), f0, loud, int(b), min_buffers=min_buffers,
                                   device=device, budget_s=budget_s, seed=seed)
            for b in buffers
        }
        prov = provenance(device=device, threads=torch.get_num_threads())
    out["provenance"] = {k: prov[k] for k in ("threads", "torch_version", "cpu_model", "device", "machine", "time_utc")}
    out["provenance"]["backend"] = backend
    return out
