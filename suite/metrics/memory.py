"""Memory: bytes of parameters, bytes of the checkpoint file, and peak inference memory.

- :func:`param_bytes`: parameters and buffers as stored in memory (element size x count; the int8
  weights packed inside dynamically quantized modules at their int8 size).
- :func:`checkpoint_bytes`: the size of the serialized checkpoint file.
- :func:`peak_inference_memory`: peak RSS minus baseline RSS around one inference of a 4 s clip,
  in a **fresh subprocess** (``python -m suite.metrics.memory CKPT``) so nothing else the caller
  allocated counts. The child loads the checkpoint, runs one warm-up inference, frees it, takes
  the baseline RSS, then runs the measured inference while ``memory_profiler.memory_usage``
  samples RSS every millisecond; on Linux it also resets the kernel's high-water mark
  (``/proc/self/clear_refs``) before the run and reads ``VmHWM`` after it, which catches peaks
  shorter than a sampling interval. The peak is the larger of the two. glibc is told to return
  large blocks to the system at once (``MALLOC_MMAP_THRESHOLD_``), so memory freed after the
  warm-up is not silently reused by the measured run and hidden from RSS.
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

from suite.errors import UserError

__all__ = ["param_bytes", "checkpoint_bytes", "peak_inference_memory", "main"]


def param_bytes(model: nn.Module) -> int:
    """Bytes of parameters, buffers and quantized packed weights (shared storages counted once)."""
    from suite.metrics.size import quantized_tensors

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
    cmd = [sys.executable, "-m", "suite.metrics.memory", str(checkpoint), "--frames", str(frames), "--threads", str(threads)]
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


def _measure(checkpoint: str, frames: int, threads: int, plugins: Sequence[str]) -> dict[str, Any]:
    import importlib

    from memory_profiler import memory_usage

    from suite.checkpoint import load_checkpoint
    from suite.metrics.speed import example_inputs
    from suite.registry import FAMILIES

    torch.set_num_threads(threads)
    for spec in plugins:
        mod = importlib.import_module(spec)
        for obj in vars(mod).values():  # register families the catalogue does not know (e.g. test models)
            fam = getattr(obj, "family", None)
            if isinstance(obj, type) and issubclass(obj, nn.Module) and isinstance(fam, str) and fam not in FAMILIES:
                FAMILIES.register(fam, obj)
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
    ap = argparse.ArgumentParser(prog="python -m suite.metrics.memory", description="peak inference memory of a checkpoint")
    ap.add_argument("checkpoint")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--plugin", action="append", default=[], help="module to import first (registers extra families)")
    args = ap.parse_args(argv)
    try:
        res = _measure(args.checkpoint, args.frames, args.threads, args.plugin)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
