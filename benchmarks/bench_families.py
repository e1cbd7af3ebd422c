"""Speed of the baseline families: single-thread offline and streaming real-time factor.

For every registered family size (or those matching ``--sizes``): RTF offline on a 4 s clip and
streaming at 64/256/512-sample buffers with the state carried from buffer to buffer (median and
p99 per-buffer time, RTF = median buffer time / buffer duration), measured by
:func:`suite.metrics.speed.measure_speed` (warm-up, repeats, ``torch.inference_mode``, one thread).
It also checks that the streamed audio equals the offline audio. Results go to
``benchmarks/results_families.md`` and ``.json`` with the machine, date, torch version, commit
and the load average around the run (other processes on the machine inflate the figures).

``--backend native`` (or ``torchscript``) times the exported path instead of the eager forward
(results in ``results_families_<backend>.md``); stream errors are then against the eager offline render.

Run: ``.venv/bin/python benchmarks/bench_families.py [--sizes 'hpn/*'] [--repeats 10] [--backend native]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from common import GOALS  # benchmarks/common.py (this script's folder is on sys.path)

from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.metrics.speed import example_inputs, measure_speed
from ddspbench.suite.provenance import cpu_model, git_commit
from ddspbench.suite.registry import SIZES

__all__ = ["GOALS", "stream_error", "run", "main"]

HERE = Path(__file__).resolve().parent



def _target(model: torch.nn.Module, backend: str, frames: int, offline: bool) -> Any:
    """The model itself (eager) or its exported path for calls of ``frames`` frames."""
    if backend == "eager":
        return model
    from ddspbench.baselines.export import exported_model

    return exported_model(model, frames, backend, offline=offline, seed=0)


def stream_error(model: torch.nn.Module, f0: torch.Tensor, loud: torch.Tensor, buffer: int,
                 target: Any = None) -> float:
    """Max |streamed - offline| / peak |offline| for one clip cut into ``buffer``-sample buffers.

    The reference is the eager model's offline render; the stream runs through ``target``
    (default: the eager model; or an exported path built for ``buffer``).
    """
    step = buffer // 64
    target = model if target is None else target
    with torch.inference_mode():
        ref = model(f0, loud, model.init_state(f0.shape[0], seed=0))["audio"]
        state = target.init_state(f0.shape[0], seed=0)
        parts = []
        for i in range(0, f0.shape[-1], step):
            out = target(f0[:, i: i + step], loud[:, i: i + step], state)
            state = out["state"]
            parts.append(out["audio"])
        got = torch.cat(parts, dim=-1)
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


def cpu_rtf(model: torch.nn.Module, f0: torch.Tensor, loud: torch.Tensor, buffer: int | None, passes: int = 2) -> float:
    """CPU time of this thread (``time.thread_time``) per second of audio, after one warm-up pass.

    Less sensitive than wall time to other processes taking the core away (not immune: they
    still share caches and memory bandwidth). ``buffer=None`` times whole-clip (offline) calls.
    """
    audio_s = f0.shape[-1] * 64 / 16_000
    with torch.inference_mode():
        total = 0.0
        for rep in range(passes + 1):
            t0 = time.thread_time()
            if buffer is None:
                model(f0, loud)
            else:
                step = buffer // 64
                state = model.init_state(f0.shape[0], seed=0)
                for i in range(0, f0.shape[-1], step):
                    state = model(f0[:, i: i + step], loud[:, i: i + step], state)["state"]
            if rep:
                total += time.thread_time() - t0
    return total / passes / audio_s


def op_overhead_us(n: int = 2000) -> float:
    """Median wall time of one tiny torch op (adding 1 to 64 floats), in microseconds: the per-op cost floor now."""
    x = torch.zeros(64)
    times = []
    with torch.inference_mode():
        for _ in range(n):
            t0 = time.perf_counter()
            x + 1
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1e6


def run(patterns: str, repeats: int, min_buffers: int, buffers: tuple[int, ...], budget_s: float,
        backend: str = "eager") -> dict[str, Any]:
    """Measure every size matching ``patterns`` through ``backend``; returns the JSON-able results."""
    import scipy.linalg.cython_blas  # noqa: F401  (loaded before the limit below, so it covers the native kernels' BLAS)
    from threadpoolctl import threadpool_limits

    load_catalog()
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")
    load_before = os.getloadavg()
    op_before = op_overhead_us()
    rows: dict[str, Any] = {}
    for name in SIZES.expand(patterns):
        torch.manual_seed(0)
        model = SIZES.get(name)().eval()
        f0, loud = example_inputs(seed=0)
        res = measure_speed(model, buffers=buffers, inputs=(f0, loud), threads=1, repeats=repeats,
                            min_buffers=min_buffers, budget_s=budget_s, backend=backend)
        targets = {b: _target(model, backend, b // 64, False) for b in buffers}
        res["stream_error"] = {str(b): stream_error(model, f0, loud, b, targets[b]) for b in buffers}
        res["cpu_rtf"] = {"offline": cpu_rtf(_target(model, backend, f0.shape[-1], True), f0, loud, None, passes=3),
                          **{str(b): cpu_rtf(targets[b], f0, loud, b) for b in buffers}}
        res["params"] = int(sum(p.numel() for p in model.parameters()))
        rows[name] = res
        print(name, f"offline {res['offline']['rtf']:.4f}",
              " ".join(f"@{b} {res['stream'][b]['rtf']:.4f}" for b in buffers),
              "cpu:", " ".join(f"{k} {v:.4f}" for k, v in res["cpu_rtf"].items()), flush=True)
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "threads": 1,
        "backend": backend,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "op_overhead_us_before_after": [op_before, op_overhead_us()],
        "buffers": list(buffers),
        "results": rows,
    }


_BACKEND_TEXT = {
    "eager": "eager (the model's forward under `torch.inference_mode`)",
    "torchscript": "torchscript (`baselines.export`: the forward traced per buffer size and frozen)",
    "native": "native (`baselines.native.NativeEngine`: the weights in numba-compiled kernels, one call per buffer)",
}


def _goal_cell(name: str, key: str, value: float) -> str:
    goal = GOALS.get(name, {}).get(key)
    if goal is None:
        return f"{value:.4f}"
    return f"{value:.4f} ({'meets' if value <= goal else 'misses'} <= {goal})"


def to_markdown(data: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    bufs = data["buffers"]
    lines = [
        f"# Baseline family speed (single thread, backend {data.get('backend', 'eager')})",
        "",
        f"- date (UTC): {data['date_utc']}",
        f"- machine: {data['cpu_model']} ({data['cpu_count']} cores), torch {data['torch_version']}, "
        f"threads {data['threads']} (torch and BLAS)",
        "- backend: " + _BACKEND_TEXT.get(data.get("backend", "eager"), data.get("backend", "eager")),
        f"- commit: {data['git_commit']}",
        f"- load average before / after: {tuple(round(x, 2) for x in data['load_average_before'])} / "
        f"{tuple(round(x, 2) for x in data['load_average_after'])} (other processes share the 2 cores: "
        "figures are inflated when the load exceeds 1)",
        "- one tiny torch op (64-float add) took {:.1f} / {:.1f} us (median) before / after: streaming at small "
        "buffers costs about a hundred such ops per buffer".format(*data.get("op_overhead_us_before_after", [float("nan")] * 2)),
        "- RTF = processing time / audio duration (< 1 is faster than real time). Offline: median over repeats "
        "of one 4 s clip. Streaming: state carried buffer to buffer, RTF = median buffer time / buffer duration.",
        "- stream err: max |streamed - offline| / peak |offline| over the 4 s clip at that buffer size.",
        "- CPU RTF: this thread's CPU time (`time.thread_time`) per second of audio over whole passes of the "
        "clip: less inflated by other processes than wall time (caches and memory bandwidth are still shared).",
        "",
        "## Wall-clock RTF (suite.metrics.speed)",
        "",
        "| size | params | offline RTF | " + " | ".join(f"RTF @{b}" for b in bufs) + " | "
        + " | ".join(f"p99 ms @{b}" for b in bufs) + " | max stream err |",
        "|---|---:|---:|" + "---:|" * (2 * len(bufs)) + "---:|",
    ]
    for name, r in data["results"].items():
        st = r["stream"]
        cells = [name, f"{r['params']:,}", _goal_cell(name, "offline", r["offline"]["rtf"])]
        cells += [_goal_cell(name, str(b), st[b]["rtf"] if b in st else st[str(b)]["rtf"]) for b in bufs]
        cells += [f"{(st[b] if b in st else st[str(b)])['p99_ms']:.3f}" for b in bufs]
        cells.append(f"{max(r['stream_error'].values()):.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## CPU-time RTF (thread CPU time / audio duration)", "",
              "| size | offline | " + " | ".join(f"@{b}" for b in bufs) + " |",
              "|---|---:|" + "---:|" * len(bufs)]
    for name, r in data["results"].items():
        c = r["cpu_rtf"]
        cells = [name, _goal_cell(name, "offline", c["offline"])] + [_goal_cell(name, str(b), c[str(b)]) for b in bufs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="*", help="comma-separated size names or wildcards (default: all)")
    ap.add_argument("--repeats", type=int, default=10, help="offline repeats (median reported)")
    ap.add_argument("--min-buffers", type=int, default=500, help="streaming buffers timed per buffer size")
    ap.add_argument("--buffers", default="64,256,512", help="streaming buffer sizes in samples")
    ap.add_argument("--budget-s", type=float, default=60.0, help="wall-time cap per measurement")
    ap.add_argument("--backend", default="eager", choices=["eager", "torchscript", "native"],
                    help="inference path to time (default eager)")
    ap.add_argument("--out", type=Path, default=None,
                    help="Markdown output, JSON beside it (default results_families.md, or results_families_<backend>.md)")
    args = ap.parse_args(argv)
    if args.out is None:
        suffix = "" if args.backend == "eager" else f"_{args.backend}"
        args.out = HERE / f"results_families{suffix}.md"
    buffers = tuple(int(b) for b in args.buffers.split(","))
    data = run(args.sizes, args.repeats, args.min_buffers, buffers, args.budget_s, args.backend)
    args.out.write_text(to_markdown(data))
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
