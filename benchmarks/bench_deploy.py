"""Deployed runtimes side by side: the native engine, ONNX Runtime and TorchScript, fp32 and int8, one run.

For HpN and DDX7 (full and reduced, the ``quantize`` compressor's int8 model beside each), every runtime
times the artifact ``ddspbench export`` writes for it (``engine``, ``onnx``, ``torchscript``; built in
memory, the same bytes), streaming at 64/256/1024-sample buffers with the state carried, through the
runners ``evaluate --speed-backend`` times (``EXPORTERS``; a warm-up pass, then buffers timed one by one;
one thread for torch, BLAS and ONNX Runtime). Reported per cell: CPU RTF (thread CPU time per second of
audio), wall RTF (median buffer time / buffer duration), p99 buffer time and the deadline-miss rate.

Results go into ``benchmarks/results_export.md`` (the section between the ``deploy`` markers, kept by
``bench_export.py``) and ``benchmarks/results_deploy.json``.

Run: ``.venv/bin/python benchmarks/bench_deploy.py [--sizes 'hpn/*,ddx7/*'] [--frames 250] [--min-buffers 30]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import load_average  # benchmarks/common.py (this script's folder is on sys.path)

from ddspbench.compressors import quantize_int8
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.metrics.speed import example_inputs
from ddspbench.suite.provenance import cpu_model, git_commit
from ddspbench.suite.registry import EXPORTERS, SIZES

__all__ = ["RUNTIMES", "run", "section", "get_section", "put_section", "main", "MARK_BEGIN", "MARK_END"]

HERE = Path(__file__).resolve().parent
RUNTIMES = ("native", "onnxruntime", "torchscript")
MARK_BEGIN = "<!-- deploy:begin (benchmarks/bench_deploy.py) -->"
MARK_END = "<!-- deploy:end -->"


def time_side_by_side(runners: dict[str, Any], f0: torch.Tensor, loud: torch.Tensor, fb: int, min_buffers: int,
                      budget_s: float) -> dict[str, dict[str, float]]:
    """Stream the clip through every runner in ``fb``-frame buffers, the runtimes taking turns pass by pass (so a
    burst of load from other processes hits them alike), each pass from a fresh state, after a warm-up pass each:
    wall p50/p99 per buffer, deadline-miss rate, and CPU time per second of audio (this thread's
    ``time.thread_time``: every runtime computes on the calling thread at one thread)."""
    starts = list(range(0, f0.shape[1] - fb + 1, fb))
    times: dict[str, list[float]] = {rt: [] for rt in runners}
    cpu = dict.fromkeys(runners, 0.0)

    def one_pass(rt: str, record: bool) -> None:
        runner = runners[rt]
        runner.init_state(1, seed=0)
        c0 = time.thread_time()
        for a in starts:
            t0 = time.perf_counter()
            runner(f0[:, a: a + fb], loud[:, a: a + fb])
            if record:
                times[rt].append(time.perf_counter() - t0)
        if record:
            cpu[rt] += time.thread_time() - c0

    for rt in runners:
        one_pass(rt, record=False)
    t_all = time.perf_counter()
    while min(len(v) for v in times.values()) < min_buffers:
        for rt in runners:
            one_pass(rt, record=True)
        if time.perf_counter() - t_all > budget_s * len(runners):
            break
    dur = fb * 64 / 16000
    out = {}
    for rt, ts in times.items():
        arr = np.asarray(ts)
        out[rt] = {"rtf": float(np.median(arr)) / dur, "p99_ms": float(np.quantile(arr, 0.99)) * 1000.0,
                   "miss_rate": float(np.mean(arr > dur)), "cpu_rtf": cpu[rt] / (arr.size * dur),
                   "buffers": int(arr.size)}
    return out


def run(patterns: str, buffers: tuple[int, ...], frames: int, min_buffers: int, budget_s: float) -> dict[str, Any]:
    import scipy.linalg.cython_blas  # noqa: F401  (loaded before the limit below, so it covers the engine's BLAS)
    from threadpoolctl import threadpool_limits

    load_catalog()
    names = [n for n in SIZES.list() if any(fnmatch.fnmatch(n, p.strip()) for p in patterns.split(","))]
    f0, loud = example_inputs(frames, seed=0)
    rows = []
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"), torch.inference_mode():
            for name in names:
                torch.manual_seed(0)
                model = SIZES.get(name)().eval()
                for label, m in (("fp32", model), ("int8", quantize_int8(model))):
                    row: dict[str, Any] = {"size": name, "weights": label, "runtimes": {rt: {} for rt in RUNTIMES}}
                    for b in buffers:
                        runners = {rt: EXPORTERS.get(rt)(m, b // 64, offline=False, batch=1, seed=0) for rt in RUNTIMES}
                        cells = time_side_by_side(runners, f0, loud, b // 64, min_buffers, budget_s)
                        for rt in RUNTIMES:
                            row["runtimes"][rt][str(b)] = cells[rt]
                        print(f"{name} {label} {b}: " + "  ".join(
                            f"{rt} {c['cpu_rtf']:.4f}/{c['rtf']:.4f}" for rt, c in cells.items()), flush=True)
                    rows.append(row)
    finally:
        torch.set_num_threads(old)
    return {"rows": rows, "buffers": list(buffers), "frames": frames, "min_buffers": min_buffers}


def section(data: dict[str, Any]) -> str:
    """The Markdown section (between the markers) for ``results_export.md``."""
    bufs = [str(b) for b in data["buffers"]]
    lines = [MARK_BEGIN, "## Deployed runtimes side by side (`ddspbench export` artifacts; issue 22)", "",
             f"- date (UTC): {data['date']}; machine: {data['cpu']} ({os.cpu_count()} cores), torch {data['torch']}, "
             f"onnxruntime {data['onnxruntime']}, numba {data['numba']}; commit {data['commit']}",
             f"- load average before / after: {data['load_before']} / {data['load_after']} (other processes share "
             "the cores: wall figures are inflated when the load exceeds 1)",
             f"- one run, one thread (torch, BLAS, ONNX Runtime); {data['frames']}-frame clip, at least "
             f"{data['min_buffers']} buffers per cell (whole passes from a fresh state, budget-capped), after a "
             "warm-up pass; the runners `evaluate --speed-backend` times (`EXPORTERS`), timed buffer by buffer, the "
             "three runtimes taking turns pass by pass so that load from other processes hits them alike.",
             "- native = the engine file (`--format engine`); onnxruntime = the portable ONNX step (`--format onnx`, "
             "int8 weights stored as int8 initializers); torchscript = the portable step's state-keeping host module "
             "(`--format torchscript`, int8 weights widened per call). int8 = the `quantize` compressor's weight-only "
             "int8 model.",
             "- cell: CPU RTF (this thread's CPU time per second of audio; least inflated by other processes) / wall "
             "RTF (median buffer time / buffer duration) / wall p99 ms / deadline-miss rate (wall); lower is faster. "
             "Ratios: CPU RTF over the engine's.",
             "- why the engine leads at small buffers: it is one compiled call per buffer, whereas the ONNX step of "
             "hpn/reduced is 195 nodes after ONNX Runtime's optimisations and their dispatch (a few microseconds "
             "each, ORT's profiler) is most of a 64-sample buffer's time; ONNX Runtime folds int8 weights back to "
             "float32 when it loads the session (fp32 and int8 time alike), TorchScript widens them on every call "
             "(int8 slower than fp32 there).", "",
             "| size | weights | buffer | " + " | ".join(RUNTIMES) + " | onnxruntime / native | torchscript / native |",
             "|---|---|---:|" + "---|" * len(RUNTIMES) + "---:|---:|"]
    for row in data["rows"]:
        for b in bufs:
            cells = [row["runtimes"][rt][b] for rt in RUNTIMES]
            text = [f"{c['cpu_rtf']:.4f} / {c['rtf']:.4f} / {c['p99_ms']:.2f} / {c['miss_rate']:.2f}" for c in cells]
            nat = cells[0]["cpu_rtf"]
            lines.append(f"| {row['size']} | {row['weights']} | {b} | " + " | ".join(text)
                         + f" | {cells[1]['cpu_rtf'] / nat:.1f}x | {cells[2]['cpu_rtf'] / nat:.1f}x |")
    lines.append(MARK_END)
    return "\n".join(lines) + "\n"


def get_section(page: Path) -> str:
    """The marked section of ``page`` (markers included), or ``""``."""
    text = page.read_text() if page.exists() else ""
    if MARK_BEGIN not in text or MARK_END not in text:
        return ""
    return MARK_BEGIN + text.split(MARK_BEGIN, 1)[1].split(MARK_END, 1)[0] + MARK_END + "\n"


def put_section(page: Path, text: str) -> None:
    """Replace the marked section of ``page`` with ``text`` (append it when there is none)."""
    old = page.read_text() if page.exists() else ""
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1].lstrip("\n")
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    page.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="hpn/full,hpn/reduced,ddx7/full,ddx7/reduced", help="glob patterns of sizes")
    ap.add_argument("--buffers", default="64,256,1024", help="buffer sizes in samples")
    ap.add_argument("--frames", type=int, default=250, help="clip length in frames (250 = 1 s)")
    ap.add_argument("--min-buffers", type=int, default=30, help="buffers timed per cell (whole passes)")
    ap.add_argument("--budget", type=float, default=4.0, help="seconds of timing per cell at most")
    ap.add_argument("--page", type=Path, default=HERE / "results_export.md")
    args = ap.parse_args(argv)
    import numba
    import onnxruntime

    before = load_average()
    data = run(args.sizes, tuple(int(b) for b in args.buffers.split(",")), args.frames, args.min_buffers, args.budget)
    data.update(date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), cpu=cpu_model(),
                torch=torch.__version__, onnxruntime=onnxruntime.__version__, numba=numba.__version__,
                commit=git_commit(), load_before=before, load_after=load_average())
    (HERE / "results_deploy.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    text = section(data)
    put_section(args.page, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
