"""Memory: bytes of parameters, bytes of the checkpoint file, and peak inference memory.

- :func:`param_bytes`: parameters and buffers as stored in memory (element size x count; the int8
  weights packed inside dynamically quantized modules at their int8 size).
- :func:`checkpoint_bytes`: the size of the serialized checkpoint file.
- :func:`peak_inference_memory`: peak RSS minus baseline RSS around one inference of a 4 s clip,
  in a **fresh subprocess** (``python -m ddspbench.suite.metrics.memory CKPT``) so nothing else the caller
  allocated counts. The child loads the checkpoint, runs one warm-up inference, frees it, takes
  the baseline RSS, then runs the measured inference while ``memory_profiler.memory_usage``
  samples RSS every millisecond; on Linux it also resets the kernel's high-water mark
  (``/proc/self/clear_refs``) before the run and reads ``VmHWM`` after it, which catches peaks
  shorter than a sampling interval. The peak is the larger of the two. glibc is told to return
  large blocks to the system at once (``MALLOC_MMAP_THRESHOLD_``), so memory freed after the
  warm-up is not silently reused by the measured run and hidden from RSS.

Memory as deployed on the native engine (:mod:`baselines.native`):

- :func:`engine_bytes`: the exact bytes the engine holds for one stream at a buffer size, from its
  arrays: weights as stored (int8/bf16/float32 matrices, float32 biases, norms and scales, the layer
  table), constants (reverb spectra and impulse, noise-filter matrix, wavetables, FM patch), the
  streaming state, and one call's scratch (input/output and the kernels' temporaries, summed).
- :func:`peak_engine_rss`: peak RSS of a **fresh process** that loads the checkpoint, builds the
  engine and streams a 4 s clip through it buffer by buffer (memory_profiler at 1 ms and VmHWM,
  the larger), everything included (interpreter, torch, numba, weights): no baseline subtracted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import ENGINES

__all__ = ["param_bytes", "checkpoint_bytes", "peak_inference_memory", "engine_bytes", "peak_engine_rss", "main"]


def param_bytes(model: nn.Module) -> int:
    """Bytes of parameters, buffers and quantized packed weights (shared storages counted once)."""
    from ddspbench.suite.metrics.size import quantized_tensors

    seen: set[tuple[int, int]] = set()
    total = 0
    tensors = [t for _, t in model.named_parameters()] + [t for _, t in model.named_buffers()]
    tensors += [t for _, t in quantized_tensors(model)]
    for t in tensors:
        try:
            key = (t.untyped_storage().data_ptr(), int(t.storage_offset())) if not t.is_quantized else (id(t), 0)
        except (RuntimeError, NotImplementedError):
            key = (id(t), 0)
        if key in seen:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return int(total)


def checkpoint_bytes(path: str | os.PathLike[str]) -> int:
    """Size of a checkpoint file in bytes."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"checkpoint not found: {p}")
    return p.stat().st_size


def engine_bytes(model: nn.Module, buffer: int = 64) -> dict[str, int]:
    """Bytes the native engine holds for one stream of ``model`` at ``buffer``-sample buffers.

    Returns ``{"weights", "constants", "state", "scratch", "total"}`` (:meth:`NativeEngine.footprint`).
    Raises :class:`UserError` for a model the engine cannot run.
    """
    if buffer % 64 or buffer <= 0:
        raise UserError(f"engine_bytes: buffer must be a positive multiple of 64 samples, got {buffer}")
    return dict(ENGINES.get("native")(model, batch=1, seed=0).footprint(buffer // 64))


def _child(args: list[str], plugins: Sequence[str], threads: int, timeout_s: float) -> dict[str, Any]:
    """Run ``python -m ddspbench.suite.metrics.memory ARGS`` in a fresh process; its last JSON line."""
    cmd = [sys.executable, "-m", "ddspbench.suite.metrics.memory", *args, "--threads", str(threads)]
    for p in plugins:
        cmd += ["--plugin", p]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="131072", OMP_NUM_THREADS=str(threads))
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"memory measurement timed out after {timeout_s:.0f} s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory measurement failed (exit {proc.returncode}): {tail[:300]}")
    return dict(json.loads(lines[-1]))


def peak_engine_rss(
    checkpoint: str | os.PathLike[str],
    *,
    frames: int = 1000,
    buffer: int = 64,
    threads: int = 1,
    plugins: Sequence[str] = (),
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Peak RSS of a fresh process streaming ``frames`` frames of the checkpoint's model through the native engine.

    Returns ``{"peak_rss_bytes", "peak_source", "frames", "buffer", "threads", "method"}``; nothing is
    subtracted (the interpreter, torch, numba's compiled kernels and the weights all count).
    """
    return _child([str(checkpoint), "--engine", "--frames", str(frames), "--buffer", str(buffer)], plugins, threads,
                  timeout_s)


def peak_inference_memory(
    checkpoint: str | os.PathLike[str],
    *,
    frames: int = 1000,
    threads: int = 1,
    plugins: Sequence[str] = (),
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Peak inference memory of a checkpoint's model, measured in a fresh Python process.

    Args:
        checkpoint: a ddspbench checkpoint.
        frames: input length (1000 frames = 4 s).
        threads: torch threads in the child.
        plugins: modules the child imports first (to register families outside the catalogue).
        timeout_s: give up after this long.

    Returns:
        ``{"peak_mem_bytes", "baseline_bytes", "peak_bytes", "method"}``.
    """
    return _child([str(checkpoint), "--frames", str(frames)], plugins, threads, timeout_s)


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _load_plugins(plugins: Sequence[str]) -> None:
    import importlib

    from ddspbench.suite.registry import FAMILIES

    for spec in plugins:
        mod = importlib.import_module(spec)
        for obj in vars(mod).values():  # register families the catalogue does not know (e.g. test models)
            fam = getattr(obj, "family", None)
            if isinstance(obj, type) and issubclass(obj, nn.Module) and isinstance(fam, str) and fam not in FAMILIES:
                FAMILIES.register(fam, obj)


def _measure_engine(checkpoint: str, frames: int, buffer: int, threads: int, plugins: Sequence[str]) -> dict[str, Any]:
    """Child side of :func:`peak_engine_rss`: everything from interpreter start counts (VmHWM is not reset)."""
    from memory_profiler import memory_usage

    from ddspbench.suite.checkpoint import load_checkpoint
    from ddspbench.suite.metrics.speed import example_inputs, num_threads

    _load_plugins(plugins)
    if buffer % 64 or buffer <= 0:
        raise UserError(f"buffer must be a positive multiple of 64 samples, got {buffer}")
    fb = buffer // 64
    with num_threads(threads):
        model, _ = load_checkpoint(checkpoint)
        f0, loud = example_inputs(frames)
        f0_np, loud_np = f0.numpy(), loud.numpy()

        def stream() -> None:
            engine = ENGINES.get("native")(model, batch=1, seed=0)
            for i in range(0, frames - fb + 1, fb):
                engine(f0_np[:, i: i + fb], loud_np[:, i: i + fb])

        sampled = memory_usage((stream, (), {}), interval=0.001, max_usage=True, include_children=False)
    peak = int(float(sampled if not isinstance(sampled, list) else max(sampled)) * 1024 * 1024)
    source = "memory_profiler"
    hwm = _hwm()
    if hwm is not None and hwm > peak:
        peak, source = hwm, "VmHWM"
    return {
        "peak_rss_bytes": peak,
        "peak_source": source,
        "method": "peak RSS of a fresh process streaming through the native engine (max of VmHWM and "
                  "memory_profiler at 1 ms), no baseline subtracted",
        "frames": frames,
        "buffer": buffer,
        "threads": threads,
    }


def _measure(checkpoint: str, frames: int, threads: int, plugins: Sequence[str]) -> dict[str, Any]:
    from memory_profiler import memory_usage

    from ddspbench.suite.checkpoint import load_checkpoint
    from ddspbench.suite.metrics.speed import example_inputs

    torch.set_num_threads(threads)
    _load_plugins(plugins)
    model, _ = load_checkpoint(checkpoint)
    f0, loud = example_inputs(frames)

    def infer() -> None:
        with torch.inference_mode():
            out = model(f0, loud)
            del out

    infer()  # warm-up: lazy initialisation, first-call allocations
    gc.collect()
    baseline = _rss()
    hwm_ok = _reset_hwm()
    sampled = memory_usage((infer, (), {}), interval=0.001, max_usage=True, include_children=False)
    sampled_peak = int(float(sampled if not isinstance(sampled, list) else max(sampled)) * 1024 * 1024)
    peak = sampled_peak
    method = "memory_profiler"
    hwm = _hwm() if hwm_ok else None
    if hwm is not None and hwm > peak:
        peak, method = hwm, "VmHWM"
    return {
        "peak_mem_bytes": max(0, peak - baseline),
        "baseline_bytes": baseline,
        "peak_bytes": peak,
        # The definition names both sources: which one caught the peak varies from run to run and goes
        # in ``peak_source``, so rows measured the same way keep the same definition.
        "method": "peak RSS (max of VmHWM and memory_profiler at 1 ms) minus baseline after warm-up, fresh process",
        "peak_source": method,
        "frames": frames,
        "threads": threads,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Child-process entry point: print one JSON line with the measurement."""
    ap = argparse.ArgumentParser(prog="python -m ddspbench.suite.metrics.memory", description="peak inference memory of a checkpoint")
    ap.add_argument("checkpoint")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--plugin", action="append", default=[], help="module to import first (registers extra families)")
    ap.add_argument("--engine", action="store_true", help="peak RSS streaming through the native engine (no baseline)")
    ap.add_argument("--buffer", type=int, default=64, help="engine buffer in samples (with --engine)")
    args = ap.parse_args(argv)
    try:
        if args.engine:
            res = _measure_engine(args.checkpoint, args.frames, args.buffer, args.threads, args.plugin)
        else:
            res = _measure(args.checkpoint, args.frames, args.threads, args.plugin)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
