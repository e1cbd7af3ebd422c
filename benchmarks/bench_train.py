"""One training step of the paper's student recipe, with and without the compiled CPU kernels.

The step is :func:`suite.train.train`'s: a fresh seeded state, forward, MSS(target, audio), backward,
gradient clipping at 3.0, AdamW. The model is HpN reduced at batch 16 x 4 s (1000 frames) on
``--threads`` torch threads (2: the figure of REFERENCE §5). Two paths of the same maths run
interleaved in one process:

* ``tensor``: the plain tensor code (``baselines.dsp.BANK_KERNELS = False``,
  ``suite.metrics.mss.KERNELS = False``), i.e. ddspbench's step before the kernels;
* ``kernels``: the harmonic bank (:mod:`baselines._train_kernels`) and the MSS loss
  (:mod:`suite.metrics._mss_kernels`) through their compiled kernels.

Before timing, both paths compute the loss and the gradients of the same weights on the same batch
and the script records their largest relative difference (the paths must agree to float32 rounding).

The reference implementation is not installed here: its step (2.47 s, REFERENCE §5, measured on
2026-11-27 on this kind of machine beside ddspbench's 0.99 s) is quoted, not re-measured. Results go
to ``benchmarks/results_train.md`` and ``.json`` with machine, date, torch, commit and load.

Run: ``python benchmarks/bench_train.py [--repeats 6] [--threads 2] [--family hpn/reduced]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from common import load_average, write_results  # benchmarks/common.py (this script's folder is on sys.path)

import ddspbench.baselines.dsp as dsp
import ddspbench.suite.metrics.mss as mss_mod
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.metrics.mss import MSSLoss
from ddspbench.suite.provenance import cpu_model, git_commit
from ddspbench.suite.registry import SIZES
from ddspbench.suite.train import forward_batch

__all__ = ["REFERENCE_STEP_S", "REFERENCE_DDSPBENCH_STEP_S", "set_path", "make_batch", "run", "main"]

HERE = Path(__file__).resolve().parent
REFERENCE_STEP_S = 2.47
"""The reference implementation's step (HpN reduced, batch 16 x 4 s, 2 threads), REFERENCE §5."""
REFERENCE_DDSPBENCH_STEP_S = 0.99
"""ddspbench's step measured beside it in the same process that day (before the kernels), REFERENCE §5."""
PATHS = ("tensor", "kernels")


def set_path(name: str) -> None:
    """Select the ``tensor`` or the ``kernels`` path for the harmonic bank and the MSS loss."""
    on = name == "kernels"
    dsp.BANK_KERNELS = on
    mss_mod.KERNELS = on


def make_batch(batch: int, frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Realistic inputs: notes of 200-800 Hz with vibrato and a loudness envelope; target a harmonic tone plus noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames) / 250.0
    base = 200.0 * 4.0 ** torch.rand(batch, 1, generator=g)
    f0 = base * (1.0 + 0.01 * torch.sin(2 * math.pi * 5.0 * t))
    loud = -60.0 + 40.0 * torch.sin(math.pi * t / t[-1]).clamp(min=0) + torch.randn(batch, frames, generator=g)
    n = torch.arange(frames * 64) / 16000.0
    phase = 2 * math.pi * torch.cumsum(f0.repeat_interleave(64, dim=1), dim=1) / 16000.0
    audio = sum(torch.sin(k * phase) / k for k in range(1, 8)) * 0.1 + 0.01 * torch.randn(batch, n.numel(), generator=g)
    return {"audio": audio.float(), "f0_hz": f0.float(), "loudness_db": loud.float()}


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, crit: MSSLoss, batch: dict[str, torch.Tensor]) -> float:
    out = forward_batch(model, batch, 1234)
    loss = crit(batch["audio"], out["audio"])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 3.0)
    opt.step()
    return float(loss.detach())  # a host sync: on CUDA the step's kernels have finished when this returns


def _loss_and_grads(model: torch.nn.Module, crit: MSSLoss, batch: dict[str, torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = crit(batch["audio"], forward_batch(model, batch, 1234)["audio"])
    loss.backward()
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def agreement(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Loss and gradients of both paths on the same weights, each against a float64 yardstick.

    The yardstick is the tensor path with the harmonic sum evaluated in float64 from the same float32
    phase (:func:`baselines._train_kernels.harmonic_bank_f64`). Per path: the loss's relative difference
    and the worst per-parameter relative gradient error (``|g - g_ref| / |g_ref|``).
    """
    from ddspbench.baselines._train_kernels import harmonic_bank_f64

    crit = MSSLoss()
    res = {}
    for name in PATHS:
        set_path(name)
        res[name] = _loss_and_grads(model, crit, batch)
    set_path("tensor")
    saved = dsp.harmonic_bank
    dsp.harmonic_bank = harmonic_bank_f64  # type: ignore[assignment]
    try:
        ref_loss, ref_grads = _loss_and_grads(model, crit, batch)
    finally:
        dsp.harmonic_bank = saved
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    out: dict[str, Any] = {"loss_reference": ref_loss}
    for name, (loss, grads) in res.items():
        errs = [float((g - r).norm() / r.norm().clamp(min=1e-30)) for g, r in zip(grads, ref_grads)]
        worst = max(range(len(errs)), key=errs.__getitem__)
        out[name] = {"loss": loss, "loss_rel_diff": abs(loss - ref_loss) / abs(ref_loss),
                     "grad_rel_err_max": errs[worst], "worst_param": names[worst]}
    return out


def run(size: str, batch: int, frames: int, threads: int, repeats: int, device: str = "cpu") -> dict[str, Any]:
    load_catalog()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    model = SIZES.get(size)().to(dev)
    model.train()
    data = {k: v.to(dev) for k, v in make_batch(batch, frames).items()}
    load_before = load_average()
    paths = PATHS if dev.type == "cpu" else ("tensor",)  # the kernels are CPU-only: one path elsewhere
    check = agreement(model, data) if dev.type == "cpu" else {}
    crit = MSSLoss()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.01)
    times: dict[str, list[float]] = {p: [] for p in paths}
    for name in paths:  # warm-up (kernel compilation, allocator)
        set_path(name)
        _step(model, opt, crit, data)
    for _ in range(repeats):  # interleaved, so load changes hit both paths alike
        for name in paths:
            set_path(name)
            t0 = time.perf_counter()
            _step(model, opt, crit, data)
            times[name].append(time.perf_counter() - t0)
    set_path("kernels")
    med = {p: statistics.median(v) for p, v in times.items()}
    common = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "torch_version": torch.__version__,
        "commit": git_commit(), "threads": threads, "size": size, "batch": batch, "frames": frames, "device": device,
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "repeats": repeats, "load_before": load_before, "load_after": load_average(),
        "times_s": times, "median_s": med, "min_s": {p: min(v) for p, v in times.items()},
    }
    if dev.type != "cpu":
        return common
    return {
        **common,
        "speedup_same_run": med["tensor"] / med["kernels"],
        "speedup_same_run_min": min(times["tensor"]) / min(times["kernels"]),
        "agreement": check,
        "reference_step_s": REFERENCE_STEP_S, "reference_ddspbench_step_s": REFERENCE_DDSPBENCH_STEP_S,
        "vs_reference_not_same_run": REFERENCE_STEP_S / med["kernels"],
        # conservative: the smaller of the two same-run ratios (medians, minima)
        "vs_reference_via_same_run_ratio": REFERENCE_STEP_S / (REFERENCE_DDSPBENCH_STEP_S / min(
            med["tensor"] / med["kernels"], min(times["tensor"]) / min(times["kernels"]))),
    }


def to_markdown(d: dict[str, Any]) -> str:
    med, mn, ag = d["median_s"], d["min_s"], d["agreement"]
    goal = "met" if d["vs_reference_via_same_run_ratio"] >= 3.0 else "not met"
    return "\n".join([
        "# Training step: paper student recipe",
        "",
        f"- {d['size']}, batch {d['batch']} x {d['frames']} frames ({d['frames'] / 250:g} s), {d['threads']} threads, "
        f"forward + MSS + backward + clip + AdamW (`benchmarks/bench_train.py`)",
        f"- machine: {d['cpu_model']} ({d['cpu_count']} cores), torch {d['torch_version']}, commit {d['commit']}",
        f"- date: {d['date']}; load average before {d['load_before']}, after {d['load_after']} "
        "(a shared machine: other processes inflate both paths; they ran interleaved, so the ratio is the figure to trust)",
        "",
        "| path | median step (s) | min (s) | repeats |",
        "|---|---|---|---|",
        *[f"| {p} | {med[p]:.3f} | {mn[p]:.3f} | {len(d['times_s'][p])} |" for p in PATHS],
        "",
        f"Same-run speed-up, kernels vs tensor path: **{d['speedup_same_run']:.2f}x** (medians), "
        f"{d['speedup_same_run_min']:.2f}x (fastest steps: load only ever adds time, so the minima are the less "
        "disturbed estimate on a busy machine).",
        "",
        "Agreement on the same weights and batch, against a yardstick (the tensor path with the harmonic sum in "
        f"float64 from the same float32 phase; loss {ag['loss_reference']:.6f}):",
        "",
        "| path | loss | loss rel. diff | worst per-parameter gradient rel. error |",
        "|---|---|---|---|",
        *[f"| {p} | {ag[p]['loss']:.6f} | {ag[p]['loss_rel_diff']:.1e} | {ag[p]['grad_rel_err_max']:.1e} "
          f"(`{ag[p]['worst_param']}`) |" for p in PATHS],
        "",
        "The float32 tensor path rounds `k * phase` to float32 before the sine (an error up to ~4e-5 rad at k = 100); "
        "the MSS log term amplifies that in the gradients of a few parameters. The kernels evaluate the sines in "
        "float64, so they sit at float32 rounding from the yardstick.",
        "",
        "## Against the reference implementation (NOT same-run)",
        "",
        f"The reference implementation is not available on this machine. REFERENCE §5 measured its step at "
        f"{d['reference_step_s']} s beside ddspbench's {d['reference_ddspbench_step_s']} s (tensor path) in one process on "
        "2026-11-27.",
        f"- today's kernels step against that figure directly: {d['vs_reference_not_same_run']:.2f}x "
        "(different runs, different load: indicative only);",
        f"- scaling ddspbench's same-day {d['reference_ddspbench_step_s']} s by the smaller of this run's two same-run "
        "speed-ups: "
        f"{d['vs_reference_via_same_run_ratio']:.2f}x. Goal (>= 3x): **{goal}** by this estimate; a same-process "
        "comparison needs the reference installed.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="hpn/reduced")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--device", default="cpu", help="cpu (both paths, the results page) or cuda (one path, JSON only)")
    ap.add_argument("--out", type=Path, default=None, help="results page (default benchmarks/results_train.md on CPU)")
    args = ap.parse_args(argv)
    data = run(args.size, args.batch, args.frames, args.threads, args.repeats, args.device)
    if args.device == "cpu":
        write_results(args.out or HERE / "results_train.md", data, to_markdown)
    else:
        text = json.dumps(data, indent=1, default=str)
        if args.out is not None:
            args.out.write_text(text + "\n")
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
