"""Compressors side by side on HpN full and the synthetic dataset: params, bytes, RTF and MSS.

Trains an HpN full teacher for a few steps, then makes one candidate per method (scratch-reduced,
kd_audio-reduced, kd_control-reduced, prune-0.5, int8, prune+int8), and measures every model in this
process: parameter count, checkpoint bytes, offline RTF on one 4 s clip with one thread (median of
repeats, :func:`suite.metrics.speed.measure_offline`), and MSS to the target audio and to the
teacher's audio on the test clips. Writes ``results_compressors.md`` and ``.json`` next to itself.

Usage::

    .venv/bin/python benchmarks/bench_compressors.py [--teacher-steps 100] [--steps 100] [--out benchmarks]

Short training: the numbers show the machinery and the relative costs, not final quality.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import cpu_name  # benchmarks/common.py (this script's folder is on sys.path)

HERE = Path(__file__).resolve().parent


def _mss(model: torch.nn.Module, test: Any, ref_audio: torch.Tensor | None = None) -> float:
    from ddspbench.suite.metrics.mss import mss_per_clip

    f0 = torch.as_tensor(test.f0_hz)
    loud = torch.as_tensor(test.loudness_db)
    target = torch.as_tensor(test.audio) if ref_audio is None else ref_audio
    with torch.inference_mode():
        audio = model(f0, loud, state=model.init_state(len(test), seed=0))["audio"]
    return float(mss_per_clip(target, audio).mean())


def _render(model: torch.nn.Module, test: Any) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.as_tensor(test.f0_hz), torch.as_tensor(test.loudness_db), state=model.init_state(len(test), seed=0))["audio"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher-steps", type=int, default=100)
    p.add_argument("--steps", type=int, default=100, help="training / fine-tuning steps of every student")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--frames", type=int, default=250, help="training crop (frames)")
    p.add_argument("--recordings", type=int, default=4, help="synthetic recordings per timbre")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per RTF measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE))
    args = p.parse_args(argv)

    from ddspbench.compressors import CompressContext, count_params, get_compressor, serialized_bytes
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.data.store import load_split
    from ddspbench.suite.metrics.speed import measure_offline
    from ddspbench.suite.registry import DATASETS, SIZES
    from ddspbench.suite.train import TrainConfig, train

    torch.set_num_threads(args.threads)
    load_catalog()
    t_start = time.time()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        data = DATASETS.get("synthetic")(Path(tmp) / "data", recordings=args.recordings, clips_per_recording=2, seed=0)
        train_set, valid_set, test = (load_split(data, s) for s in ("train", "valid", "test"))
    test = test.subset(slice(0, 4))
    print(f"data: {len(train_set)} train / {len(test)} test clips ({time.time() - t_start:.0f} s)", flush=True)

    torch.manual_seed(0)
    teacher = SIZES.get("hpn/full")()
    tcfg = TrainConfig(steps=args.teacher_steps, batch_size=args.batch_size, frames=args.frames, seed=0, random_crop=True)
    t0 = time.time()
    train(teacher, train_set, None, tcfg, progress=False)
    teacher.eval()
    print(f"teacher: {args.teacher_steps} steps in {time.time() - t0:.0f} s", flush=True)

    ctx = CompressContext(train_set=train_set, valid_set=None, steps=args.steps, batch_size=args.batch_size,
                          frames=args.frames, seed=0, train_options={"random_crop": True})
    plans: list[tuple[str, str, dict[str, Any]]] = [
        ("scratch-reduced", "scratch", {"size": "reduced"}),
        ("kd_audio-reduced", "kd_audio", {"size": "reduced"}),
        ("kd_control-reduced", "kd_control", {"size": "reduced"}),
        ("prune-0.5", "prune", {"ratio": 0.5}),
        ("int8", "quantize", {"method": "int8", "measure_frames": 0}),
        ("prune-0.5+int8", "prune+quantize", {"prune.ratio": 0.5, "quantize.measure_frames": 0}),
    ]
    models: dict[str, tuple[torch.nn.Module, float]] = {"teacher (HpN full)": (teacher, 0.0)}
    for label, method, params in plans:
        t0 = time.time()
        res = get_compressor(method).compress(teacher, ctx, **params)
        models[label] = (res.model, time.time() - t0)
        print(f"{label}: {time.time() - t0:.0f} s", flush=True)

    teacher_audio = _render(teacher, test)
    f0_1 = torch.as_tensor(test.f0_hz[:1])
    loud_1 = torch.as_tensor(test.loudness_db[:1])
    rows = []
    for label, (model, seconds) in models.items():
        model.eval()
        with torch.inference_mode():
            speed = measure_offline(model, f0_1, loud_1, repeats=args.repeats, warmup=1, budget_s=60.0)
        rows.append({
            "candidate": label,
            "params": count_params(model),
            "bytes": serialized_bytes(model),
            "rtf": speed["rtf"],
            "mss_target": _mss(model, test),
            "mss_teacher": _mss(model, test, teacher_audio) if label != "teacher (HpN full)" else 0.0,
            "compress_s": round(seconds, 1),
        })
        print(rows[-1], flush=True)

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{cpu_name()} x{os.cpu_count()} ({torch.get_num_threads()} thread used), torch {torch.__version__}"
    load = f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    meta = {
        "date": stamp, "machine": machine, "teacher_steps": args.teacher_steps, "student_steps": args.steps,
        "batch_size": args.batch_size, "frames": args.frames, "train_clips": len(train_set), "test_clips": len(test),
        "rtf_clip_s": 4.0, "repeats": args.repeats, "wall_s": round(time.time() - t_start, 1), "load": load,
    }
    out = Path(args.out)
    (out / "results_compressors.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# Compressors on HpN full, synthetic data",
        "",
        f"Measured {stamp} on {machine} by `benchmarks/bench_compressors.py` (whole run {meta['wall_s']:.0f} s, {load}).",
        f"Teacher: HpN full trained {args.teacher_steps} steps; every student/fine-tune {args.steps} steps "
        f"(batch {args.batch_size}, {args.frames}-frame random crops, seed 0) on {len(train_set)} synthetic clips.",
        f"RTF: one 4 s clip, offline, 1 thread, median of {args.repeats} calls. MSS: mean over {len(test)} "
        "test clips (4 s), to the target audio and to the teacher's audio. Bytes: the checkpoint file.",
        "Short training: compare methods with each other, not with the paper's numbers.",
        "",
        "| candidate | params | bytes | RTF | MSS to target | MSS to teacher | compress s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['candidate']} | {r['params']:,} | {r['bytes']:,} | {r['rtf']:.4f} | {r['mss_target']:.2f} | "
                     f"{r['mss_teacher']:.2f} | {r['compress_s']} |")
    (out / "results_compressors.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
