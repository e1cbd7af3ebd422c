"""Inference speed of the baseline families through each backend (eager, TorchScript, native), one thread.

For every registered family size (or those matching ``--sizes``), on a 4 s clip: offline (one call
for the whole clip) and streaming at 64/256/512-sample buffers with the state carried, once through
the eager ``forward``, once through :func:`baselines.export.export_streaming` with TorchScript (the same
forward, traced and frozen for that buffer size), once with the native engine (:mod:`baselines.native`),
and the ``quantize`` compressor's int8 and bf16 models on the native engine (``native-int8``,
``native-bf16``). DDX7 offline is compared with the reference implementation's REFERENCE.md figures
(not same-run). Per mode: wall RTF (median buffer time / buffer duration;
offline: median clip time / clip duration), CPU RTF (this thread's ``time.thread_time`` per second
of audio over whole passes, less inflated by other processes), and each backend's max audio error
against the eager offline render (relative to its peak). ONNX Runtime is tried once per size and
whether it exports recorded (since issue 22 the portable step of every family does; ``bench_deploy.py``
times ONNX Runtime beside the engine and TorchScript and keeps its own section of the page).

Results go to ``benchmarks/results_export.md`` and ``.json`` with machine, date, torch version,
commit and load average.

Run: ``.venv/bin/python benchmarks/bench_export.py [--sizes 'hpn/*'] [--passes 2]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_deploy import get_section, put_section  # this script's folder is on sys.path
from common import (  # benchmarks/common.py (this script's folder is on sys.path)
    GOALS,
    load_average,
    write_results,
)

from ddspbench.baselines.export import export_streaming
from ddspbench.compressors import quantize_bf16, quantize_int8
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics.speed import example_inputs
from ddspbench.suite.provenance import cpu_model, git_commit
from ddspbench.suite.registry import SIZES

__all__ = ["BACKENDS", "GOALS", "time_stream", "run", "to_markdown", "main"]

HERE = Path(__file__).resolve().parent
SR = 16000


def time_stream(step: Callable[[int, int], torch.Tensor], reset: Callable[[], None], frames: int, fb: int,
                passes: int, warmup: int = 20) -> tuple[float, float, torch.Tensor]:
    """``step(start, stop)`` renders frames ``start:stop``; ``reset()`` starts a fresh stream.

    Returns wall RTF (median call / buffer duration), CPU RTF (thread time per second of audio over
    whole passes) and the audio of the last pass.
    """
    starts = list(range(0, frames - fb + 1, fb))
    reset()
    for s in starts[:warmup]:
        step(s, s + fb)
    times: list[float] = []
    cpu = 0.0
    audio: list[torch.Tensor] = []
    for _ in range(passes):
        reset()
        audio = []
        c0 = time.thread_time()
        for s in starts:
            t0 = time.perf_counter()
            audio.append(step(s, s + fb))
            times.append(time.perf_counter() - t0)
        cpu += time.thread_time() - c0
    dur = fb * 64 / SR
    return float(np.median(times)) / dur, cpu / (passes * len(starts) * dur), torch.cat(audio, dim=-1)


def _eager_fns(model: torch.nn.Module, f0: torch.Tensor, loud: torch.Tensor
               ) -> tuple[Callable[[int, int], torch.Tensor], Callable[[], None]]:
    holder: dict[str, Any] = {}

    def reset() -> None:
        holder["state"] = model.init_state(1, seed=0)  # type: ignore[operator]

    def step(a: int, b: int) -> torch.Tensor:
        with torch.inference_mode():
            out = model(f0[:, a:b], loud[:, a:b], holder["state"])
        holder["state"] = out["state"]
        return out["audio"]

    return step, reset


def profile_exported(model: torch.nn.Module, f0: torch.Tensor, loud: torch.Tensor, fb: int = 1, n: int = 200,
                     top: int = 8) -> dict[str, Any]:
    """Where an exported buffer's time goes: graph nodes and the ``top`` ops by self CPU time per buffer."""
    from torch.profiler import ProfilerActivity, profile

    runner = export_streaming(model, fb, "torchscript", seed=0)
    graph = runner._step.graph  # type: ignore[attr-defined]
    nodes = sum(1 for node in graph.nodes() if node.kind() != "prim::Constant")
    for i in range(20):
        runner(f0[:, i * fb: (i + 1) * fb], loud[:, i * fb: (i + 1) * fb])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(n):
            j = i % (f0.shape[1] // fb)
            runner(f0[:, j * fb: (j + 1) * fb], loud[:, j * fb: (j + 1) * fb])
    stats = [e for e in prof.key_averages() if e.key != "forward"]
    total = sum(e.self_cpu_time_total for e in stats) / n
    stats.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    ops = [{"op": e.key, "us_per_buffer": e.self_cpu_time_total / n, "calls_per_buffer": e.count / n}
           for e in stats[:top]]
    return {"graph_nodes": nodes, "op_us_per_buffer": total, "ops": ops}


BACKENDS: tuple[str, ...] = ("eager", "torchscript", "native", "native-int8", "native-bf16")
"""``native-int8``/``native-bf16``: the ``quantize`` compressor's int8/bf16 model (weights stored in int8 or
bfloat16, float32 compute) on the native engine; its error is against the eager *quantized* model."""

# The reference implementation's offline RTF (4 s clip, one thread), REFERENCE.md, measured 2026-11-27 on this
# machine side by side with ddspbench: not measured in the same run as the figures of this page.
REFERENCE_OFFLINE = {"ddx7/full": 0.0054, "ddx7/reduced": 0.0032}


def _exported_fns(model: torch.nn.Module, backend: str, fb: int, f0: torch.Tensor, loud: torch.Tensor
                  ) -> tuple[Callable[[int, int], torch.Tensor], Callable[[], None]]:
    runner = export_streaming(model, fb, backend.split("-")[0], seed=0)

    def step(a: int, b: int) -> torch.Tensor:
        return runner(f0[:, a:b], loud[:, a:b])

    return step, runner.reset


def run(patterns: str, buffers: tuple[int, ...], frames: int, passes: int,
        backends: tuple[str, ...] = BACKENDS) -> dict[str, Any]:
    """Time every size matching ``patterns`` offline and at ``buffers`` through each backend (CPU, one thread)."""
    import scipy.linalg.cython_blas  # noqa: F401  (loaded before the limit below, so it covers the native kernels' BLAS)
    from threadpoolctl import threadpool_limits

    load_catalog()
    names = [n for n in SIZES.list() if any(fnmatch.fnmatch(n, p.strip()) for p in patterns.split(","))]
    f0, loud = example_inputs(frames, seed=0)
    rows: list[dict[str, Any]] = []
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            for name in names:
                torch.manual_seed(0)
                model = SIZES.get(name)().eval()
                variants = {"fp32": model}
                if any(b.startswith("native-") for b in backends):
                    variants.update(int8=quantize_int8(model), bf16=quantize_bf16(model))
                refs = {}
                with torch.inference_mode():
                    for label, m in variants.items():
                        refs[label] = m(f0, loud, m.init_state(1, seed=0))["audio"]
                row: dict[str, Any] = {"size": name, "modes": {}}
                for fb in [frames, *[b // 64 for b in buffers]]:
                    key = "offline" if fb == frames else str(fb * 64)
                    n_pass = passes if fb > 1 or "reduced" in name else 1
                    n_pass = max(n_pass, 3) if fb == frames else n_pass
                    mode: dict[str, Any] = {}
                    for backend in backends:
                        label = backend.split("-")[1] if "-" in backend else "fp32"
                        ref = refs[label]
                        t0 = time.perf_counter()
                        if backend == "eager":
                            step, reset = _eager_fns(model, f0, loud)
                        else:
                            step, reset = _exported_fns(variants[label], backend, fb, f0, loud)
                        build_s = time.perf_counter() - t0
                        wall, cpu, audio = time_stream(step, reset, frames, fb, n_pass,
                                                       warmup=2 if fb == frames else 20)
                        peak = float(ref.abs().max())
                        err = float((audio - ref[:, : audio.shape[-1]]).abs().max()) / max(peak, 1e-12)
                        mode[backend] = {"wall": wall, "cpu": cpu, "err": err, "build_s": build_s}
                    row["modes"][key] = mode
                    print(f"{name} {key}: " + "  ".join(f"{b} {v['wall']:.4f}/{v['cpu']:.4f} (err {v['err']:.1e})"
                                                        for b, v in mode.items()), flush=True)
                if 64 in buffers and "torchscript" in backends:
                    row["profile64"] = profile_exported(model, f0, loud)
                try:
                    export_streaming(model, 1, "onnxruntime")
                    row["onnx"] = "exports (the portable step; timed by bench_deploy.py)"
                except UserError as exc:
                    row["onnx"] = str(exc)
                rows.append(row)
    finally:
        torch.set_num_threads(old)
    return {"rows": rows, "frames": frames, "buffers": list(buffers), "passes": passes, "backends": list(backends)}


def _cell(name: str, key: str, values: list[float]) -> str:
    """``a / b / c`` for the backends; the goal verdict is for the fastest."""
    text = " / ".join(f"{v:.4f}" for v in values)
    goal = GOALS.get(name, {}).get(key)
    if goal is None:
        return text
    return text + (f" (meets <= {goal})" if min(values) <= goal else f" (misses <= {goal})")


def to_markdown(data: dict[str, Any]) -> str:
    keys = ["offline", *[str(b) for b in data["buffers"]]]
    backends = data.get("backends", list(BACKENDS))
    order = " / ".join(backends)
    lines = [
        "# Inference speed of the baseline families by backend (single thread)",
        "",
        f"- date (UTC): {data['date']}",
        f"- machine: {data['cpu']} ({os.cpu_count()} cores), torch {torch.__version__}, threads 1 (torch and BLAS)",
        f"- commit: {data['commit']}",
        f"- load average before / after: {data['load_before']} / {data['load_after']} (other processes share "
        "the cores: wall figures are inflated when the load exceeds 1)",
        f"- clip: {data['frames']} frames ({data['frames'] * 64 / SR:.0f} s); {data['passes']} timed pass(es) per "
        "mode (full models at 64 samples: 1 pass), after a warm-up",
        "- backends: eager = the model's forward called buffer by buffer (`torch.inference_mode`); torchscript = "
        "`baselines.export.export_streaming` (the same forward traced for that buffer size, state as tensors, "
        "`torch.jit.freeze`); native = `baselines.native.NativeEngine` (the weights in numba-compiled kernels, "
        "one native call per buffer); native-int8 / native-bf16 = the `quantize` compressor's int8 / bf16 model "
        "(weights stored in int8 per output channel / bfloat16, float32 compute) on the native engine. Offline = one "
        "call for the whole clip.",
        "- wall RTF: median call time / audio duration of the call; CPU RTF: thread CPU time per second of "
        "audio over whole passes. err: max |backend - eager offline| / peak, over all modes.",
        "- goals (issue 3) are judged on the fastest backend; physical floors of this machine: "
        "`results_roofline.md`.",
        "",
        f"## CPU-time RTF ({order})",
        "",
        "| size | " + " | ".join(keys) + " | max err " + "/".join(b for b in backends if b != "eager") + " |",
        "|---|" + "---:|" * (len(keys) + 1),
    ]
    for row in data["rows"]:
        m = row["modes"]
        cells = [_cell(row["size"], k, [m[k][b]["cpu"] for b in backends]) for k in keys]
        errs = " / ".join(f"{max(m[k][b]['err'] for k in keys):.1e}" for b in backends if b != "eager")
        lines.append(f"| {row['size']} | " + " | ".join(cells) + f" | {errs} |")
    lines += ["", f"## Wall-clock RTF ({order})", "",
              "| size | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for row in data["rows"]:
        m = row["modes"]
        cells = [_cell(row["size"], k, [m[k][b]["wall"] for b in backends]) for k in keys]
        lines.append(f"| {row['size']} | " + " | ".join(cells) + " |")
    lines += _quantized_section(data, keys) + _ddx7_section(data)
    lines += ["", "## Where a TorchScript 64-sample buffer's time goes (torch.profiler, self CPU per buffer)", "",
              "Profiler overhead inflates these; they rank the costs. `_to_copy`/`empty` come from 0-d constant "
              "tensors the tracer made of Python scalars; `addmm` is the decoder's matrix-vector products.", ""]
    for row in data["rows"]:
        prof = row.get("profile64")
        if prof is None:
            continue
        ops = ", ".join(f"{o['op']} {o['us_per_buffer']:.0f} us ({o['calls_per_buffer']:.0f}x)" for o in prof["ops"])
        lines.append(f"- {row['size']}: {prof['graph_nodes']} graph nodes, {prof['op_us_per_buffer']:.0f} us of ops "
                     f"per buffer; top: {ops}")
    lines += ["", "## ONNX Runtime", ""]
    for row in data["rows"]:
        lines.append(f"- {row['size']}: {row['onnx']}")
    return "\n".join(lines) + "\n"


def _quantized_section(data: dict[str, Any], keys: list[str]) -> list[str]:
    """int8/bf16 vs float32 on the native engine, CPU-time RTF, with the issue-12 goals judged."""
    backends = data.get("backends", [])
    if "native-int8" not in backends or "native" not in backends:
        return []
    has_bf16 = "native-bf16" in backends
    lines = ["", "## int8 and bf16 weights on the native engine (CPU-time RTF; speed-up = fp32 / int8)", "",
             "fp32 / int8" + (" / bf16" if has_bf16 else "") + " per cell. Goals (issue 12): HpN full int8 at 64 "
             "samples >= 3x faster than fp32 on the same engine, same run; int8 reduced models no slower than fp32. "
             "err: max |engine - eager quantized model| / peak over all modes.", "",
             "| size | " + " | ".join(keys) + " | int8 speed-up at " + " / ".join(keys) + " | goal | err int8"
             + (" / bf16" if has_bf16 else "") + " |",
             "|---|" + "---:|" * (len(keys) + 3)]
    for row in data["rows"]:
        m = row["modes"]
        cells = []
        for k in keys:
            vals = [m[k]["native"]["cpu"], m[k]["native-int8"]["cpu"]] + ([m[k]["native-bf16"]["cpu"]] if has_bf16 else [])
            cells.append(" / ".join(f"{v:.4f}" for v in vals))
        ups = [m[k]["native"]["cpu"] / m[k]["native-int8"]["cpu"] for k in keys]
        if row["size"] == "hpn/full" and "64" in m:
            goal = "64: >= 3x: " + ("meets" if ups[keys.index("64")] >= 3 else "misses")
        elif row["size"].endswith("/reduced"):
            goal = "no slower: " + ("meets" if min(ups) >= 1 else f"misses (min {min(ups):.2f}x)")
        else:
            goal = ""
        errs = " / ".join(f"{max(m[k][b]['err'] for k in keys):.1e}" for b in ("native-int8", "native-bf16")
                          if b in backends)
        lines.append(f"| {row['size']} | " + " | ".join(cells) + " | " + " / ".join(f"{u:.2f}x" for u in ups)
                     + f" | {goal} | {errs} |")
    return lines


def _ddx7_section(data: dict[str, Any]) -> list[str]:
    """Offline DDX7 on the native engine against the reference implementation's REFERENCE.md figures."""
    rows = [r for r in data["rows"] if r["size"] in REFERENCE_OFFLINE and "offline" in r["modes"]
            and "native" in r["modes"]["offline"]]
    if not rows:
        return []
    lines = ["", "## DDX7 offline (4 s clip) on the native engine vs the reference implementation", "",
             "Reference figures: REFERENCE.md, measured 2026-11-27 side by side with ddspbench on this machine; "
             "**not measured in the same run** as ours (the reference's numbers vary up to 2x between days on this "
             "shared VM). Goal (issue 12): reference / ours >= 1.", "",
             "Wall time counts the waits for a core when other processes share them (see the load average): "
             "the goal is judged on both; ours by CPU time is what one uncontended core would take.", "",
             "| size | reference RTF | ours wall RTF | ours CPU RTF | reference / ours (wall) | reference / ours (CPU) "
             "| goal (wall / CPU) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        ref = REFERENCE_OFFLINE[row["size"]]
        ours = row["modes"]["offline"]["native"]
        by_wall, by_cpu = ref / ours["wall"], ref / ours["cpu"]
        verdict = " / ".join("meets" if r >= 1 else "misses" for r in (by_wall, by_cpu))
        lines.append(f"| {row['size']} | {ref} | {ours['wall']:.4f} | {ours['cpu']:.4f} | {by_wall:.2f} | {by_cpu:.2f} "
                     f"| {verdict} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="*", help="comma-separated glob patterns of sizes (default: all)")
    ap.add_argument("--buffers", default="64,256,512", help="streaming buffer sizes in samples")
    ap.add_argument("--frames", type=int, default=1000, help="clip length in frames (1000 = 4 s)")
    ap.add_argument("--passes", type=int, default=2, help="timed passes over the clip per mode")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends to time")
    ap.add_argument("--out", type=Path, default=HERE / "results_export.md")
    args = ap.parse_args(argv)
    load_before = load_average()
    data = run(args.sizes, tuple(int(b) for b in args.buffers.split(",")), args.frames, args.passes,
               tuple(b.strip() for b in args.backends.split(",")))
    data.update(date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), cpu=cpu_model(), commit=git_commit(),
                load_before=load_before, load_after=load_average())
    kept = get_section(args.out)
    write_results(args.out, data, to_markdown)
    if kept:  # bench_deploy.py's runtimes section is its own run: keep it
        put_section(args.out, kept)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
