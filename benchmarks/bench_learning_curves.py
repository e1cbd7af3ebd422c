"""Learning curves of the `compare` preset's students: validation MSS against step, and when they converge.

Renders one instrument of the ``soundfont`` dataset (FluidSynth with the first Debian GM soundfont
found, FluidR3_GM when installed), trains a width-64 teacher per family once (cached under
``--cache``), then trains every student the ``compare`` preset uses -- the reduced size of each
family from scratch, with KD on audio and with KD on controls -- through the same compressors a
sweep calls, validating on the held-out clips every ``--valid-every`` steps. For each curve it
reports the first step ``N`` at which the convergence rule (:func:`suite.train.convergence`: not
converged when the last 20% of the steps improved the best validation MSS by more than 5%) holds
for a run of ``N`` steps. A run of ``N`` steps is the first ``N`` steps of a longer run with the same
seed (the learning rate decays per 10k steps, not per run length), so truncating the curve is exact.

Steps to convergence do not depend on the machine's load; seconds per step do (they are measured
under whatever else runs, and the load average is recorded).

Usage::

    python benchmarks/bench_learning_curves.py [--steps 400] [--valid-every 20] [--out benchmarks]
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
from common import cpu_name, load_average, write_results  # benchmarks/common.py (on sys.path)

HERE = Path(__file__).resolve().parent
METHODS = ("scratch", "kd_audio", "kd_control")


def first_converged_step(curve: list[list[float]]) -> int | None:
    """The smallest validated step ``N`` at which a run of ``N`` steps satisfies the convergence rule."""
    from ddspbench.suite.train import convergence

    for step, _ in curve:
        prefix = [p for p in curve if p[0] <= step]
        if convergence(prefix, int(step))["converged"]:
            return int(step)
    return None


def stays_converged_from(curve: list[list[float]]) -> int | None:
    """The smallest validated step ``N`` such that a run of ``M`` steps satisfies the rule for every validated
    ``M >= N`` of the curve (a plateau early in training that later breaks does not count)."""
    from ddspbench.suite.train import convergence

    found: int | None = None
    for step, _ in curve:
        ok = convergence([p for p in curve if p[0] <= step], int(step))["converged"]
        found = (found if found is not None else int(step)) if ok else None
    return found


def _teacher(family: str, args: argparse.Namespace, train_set: Any, valid_set: Any, cache: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A width-``--teacher-hidden`` teacher of ``family``, trained once and cached (weights + its summary)."""
    from ddspbench.suite.checkpoint import load_checkpoint, save_checkpoint
    from ddspbench.suite.registry import SIZES
    from ddspbench.suite.train import TrainConfig, train, train_summary

    base = SIZES.get(f"{family}/full")()
    config = dict(base.config)
    if family in ("hpn", "wavetable"):
        config.pop("widths", None)
        config["hidden"] = args.teacher_hidden
    tag = (f"{family}-{args.instrument}-h{args.teacher_hidden}-s{args.teacher_steps}-b{args.batch_size}"
           f"-f{args.frames}-lr{args.lr:g}-r{args.recordings}")
    path = cache / f"teacher-{tag}.pt"
    if path.is_file():
        model, meta = load_checkpoint(path)
        return model.eval(), {**meta.get("summary", {}), "cached": str(path)}
    torch.manual_seed(args.seed)
    model = type(base)(**config)
    cfg = TrainConfig(steps=args.teacher_steps, batch_size=args.batch_size, lr=args.lr, frames=args.frames,
                      random_crop=True, seed=args.seed, valid_every=max(args.teacher_steps // 10, 1), curve_points=0)
    res = train(model, train_set, valid_set, cfg, progress=False)
    summary = {k: v for k, v in train_summary(res).items() if k != "curve"}
    save_checkpoint(model.eval(), path, meta={"summary": summary})
    return model, {**summary, "cached": None}


def time_evaluation(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    """Seconds of one evaluation with the compare preset's metrics (the sweep's defaults: mss, mss_teacher, logmel
    FAD, RTF, streaming at 64/256 samples, memory, size) of each family's reduced student (untrained: the same
    compute as a trained one) and of its int8-quantized teacher (where int8 supports the family), on the test clips of ``--eval-recordings``."""
    from ddspbench.compressors import CompressContext, get_compressor
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.data import load_split, prepare
    from ddspbench.suite.evaluate import evaluate_model
    from ddspbench.suite.registry import SIZES

    load_catalog()
    with tempfile.TemporaryDirectory(prefix="bench-curves-eval-") as tmp:
        d = prepare("soundfont", Path(tmp) / "d", seed=args.seed, cache_dir=cache / "renders",
                    recordings=args.eval_recordings, instruments=args.instrument)
        test = load_split(d, "test")
        out: dict[str, Any] = {"test_clips": len(test), "recordings": args.eval_recordings, "load_before": load_average()}
        for family in args.families.split(","):
            teacher, _ = _teacher(family, args, None, None, cache)
            models = [(f"{family}/reduced", SIZES.get(f"{family}/reduced")())]
            if "int8" not in get_compressor("quantize").unsupported.get(family, {}).get("method", ()):
                models.append((f"{family} teacher int8", get_compressor("quantize").compress(teacher, CompressContext(), method="int8").model))
            for label, model in models:
                t0 = time.time()
                evaluate_model(model.eval(), test, metrics=["mss", "mss_teacher", "fad", "rtf", "stream", "memory", "size"],
                               teacher=teacher, embedding="logmel", stream_buffers=(64, 256), threads=1,
                               audio_out=Path(tmp) / "audio" / label.replace("/", "-").replace(" ", "-"), n_audio_examples=2)
                out[label] = round(time.time() - t0, 1)
                print(f"evaluation {label}: {out[label]} s", flush=True)
        out["load_after"] = load_average()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="hpn,ddx7")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--instrument", default="violin")
    p.add_argument("--recordings", type=int, default=8, help="soundfont recordings (x3 clips of 4 s each)")
    p.add_argument("--steps", type=int, default=400, help="steps of every student curve")
    p.add_argument("--valid-every", type=int, default=20)
    p.add_argument("--teacher-steps", type=int, default=400)
    p.add_argument("--teacher-hidden", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--frames", type=int, default=250, help="training crop in frames (250 = 1 s)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "ddspbench" / "bench_learning_curves"))
    p.add_argument("--out", default=str(HERE))
    p.add_argument("--from-json", default=None, metavar="JSON", help="rewrite the results page from a results json "
                   "(no training); with --eval-recordings, also time the evaluation")
    p.add_argument("--merge", action="append", default=[], metavar="JSON",
                   help="with --from-json: curves of another run (e.g. one model trained longer) replace the same "
                        "family/method's curve")
    p.add_argument("--eval-recordings", type=int, default=0,
                   help="time one sweep evaluation of each family's reduced student and int8 teacher on the test clips "
                        "of a soundfont dataset of this many recordings (0: skip)")
    args = p.parse_args(argv)
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        order = [(x["family"], x["method"]) for x in data["curves"]]
        for extra in args.merge:
            other = json.loads(Path(extra).read_text())
            for c in other["curves"]:
                c["run"] = f"{other['date']}, load {list(other['load_before'])} -> {list(other['load_after'])}"
                data["curves"] = [x for x in data["curves"] if (x["family"], x["method"]) != (c["family"], c["method"])] + [c]
        data["curves"].sort(key=lambda x: order.index((x["family"], x["method"])) if (x["family"], x["method"]) in order else len(order))
        for c in data["curves"]:
            c["converged_at"] = first_converged_step(c["curve"])
            c["stays_converged_from"] = stays_converged_from(c["curve"])
        if args.eval_recordings:
            torch.set_num_threads(args.threads)
            data["evaluation"] = time_evaluation(args, Path(args.cache))
        write_results(Path(args.out) / "results_learning_curves.md", data, to_markdown)
        return 0

    from ddspbench.compressors import CompressContext, get_compressor
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.data import load_meta, load_split, prepare

    torch.set_num_threads(args.threads)
    load_catalog()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-curves-") as tmp:
        d = prepare("soundfont", Path(tmp) / "d", seed=args.seed, cache_dir=cache / "renders",
                    recordings=args.recordings, instruments=args.instrument)
        meta = load_meta(d)
        train_set, valid_set = load_split(d, "train"), load_split(d, "valid")
    print(f"data: {len(train_set)} train / {len(valid_set)} valid clips, {meta['settings']['soundfont']} "
          f"({time.time() - t_start:.0f} s)", flush=True)

    teachers: dict[str, Any] = {}
    curves: list[dict[str, Any]] = []
    for family in args.families.split(","):
        t0 = time.time()
        teacher, tinfo = _teacher(family, args, train_set, valid_set, cache)
        tinfo["wall_s"] = round(time.time() - t0, 1)
        teachers[family] = tinfo
        print(f"teacher {family}: {tinfo}", flush=True)
        for method in args.methods.split(","):
            ctx = CompressContext(train_set=train_set, valid_set=valid_set, steps=args.steps, batch_size=args.batch_size,
                                  lr=args.lr, seed=args.seed, frames=args.frames,
                                  train_options={"random_crop": True, "valid_every": args.valid_every, "curve_points": 0,
                                                 "threads": args.threads})
            t0 = time.time()
            res = get_compressor(method).compress(teacher, ctx, size="reduced")
            tr = res.description["train"]
            wall = time.time() - t0
            row = {"family": family, "method": method, "steps": tr["steps"], "train_seconds": tr["train_seconds"],
                   "s_per_step": round(tr["train_seconds"] / max(tr["steps"], 1), 4), "wall_s": round(wall, 1),
                   "best_valid": tr["best_valid"], "last_valid": tr["last_valid"],
                   "converged_at": first_converged_step(tr["curve"]),
                   "stays_converged_from": stays_converged_from(tr["curve"]),
                   "verdict_at_end": tr["convergence"]["converged"],
                   "improvement_last_20pct": tr["convergence"]["improvement"], "curve": tr["curve"]}
            curves.append(row)
            print({k: v for k, v in row.items() if k != "curve"}, flush=True)

    data = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{cpu_name()} x{os.cpu_count()}, torch {torch.__version__}",
        "threads": args.threads, "load_before": load_before, "load_after": load_average(),
        "wall_s": round(time.time() - t_start, 1),
        "recipe": {"instrument": args.instrument, "soundfont": meta["settings"]["soundfont"],
                   "train_clips": len(train_set), "valid_clips": len(valid_set), "batch_size": args.batch_size,
                   "frames": args.frames, "lr": args.lr, "seed": args.seed, "steps": args.steps,
                   "valid_every": args.valid_every, "teacher_steps": args.teacher_steps,
                   "teacher_hidden": args.teacher_hidden},
        "teachers": teachers, "curves": curves,
    }
    write_results(Path(args.out) / "results_learning_curves.md", data, to_markdown)
    return 0


def to_markdown(data: dict[str, Any]) -> str:
    r = data["recipe"]
    lines = [
        "# Learning curves of the compare preset's students",
        "",
        f"Measured {data['date']} on {data['machine']}, {data['threads']} torch thread, by "
        f"`benchmarks/bench_learning_curves.py` (whole run {data['wall_s']:.0f} s; load average before "
        f"{list(data['load_before'])}, after {list(data['load_after'])} -- a shared machine).",
        "",
        f"Data: the `soundfont` dataset, {r['instrument']} only, rendered with `{r['soundfont']}`: "
        f"{r['train_clips']} train / {r['valid_clips']} validation clips of 4 s. Recipe: batch {r['batch_size']}, "
        f"{r['frames']}-frame ({r['frames'] / 250:g} s) random crops, AdamW lr {r['lr']:g}, seed {r['seed']}, "
        f"{r['steps']} steps per student, validation MSS on the whole validation clips every {r['valid_every']} steps. "
        f"Teachers: the full size at hidden={r['teacher_hidden']} (HpN; DDX7 at its full size), {r['teacher_steps']} "
        "steps of the same recipe, trained once and cached. Students: the reduced size, through the sweep's "
        "compressors (`scratch`, `kd_audio` w 0.5/0.5, `kd_control` w 1.0/0.5).",
        "",
        "**Converged at**: the first validated step N at which a run of N steps satisfies the rule of "
        "docs/CONTRACTS.md \"Convergence\" (converged unless the last 20% of the steps improved the best validation "
        "MSS by more than 5%). **Stays converged from**: the first N from which every longer measured run satisfies "
        "it too (an early plateau that later breaks does not count); the compare preset's budgets use this one. Step counts do not depend on the machine's load; seconds per step do (measured here "
        "under the load above, 1 thread; a quiet core is faster).",
        "",
        "| family | method | steps run | converged at | stays converged from | verdict at the last step | improvement, last 20% | "
        "best valid MSS | last valid MSS | s/step (train, incl. validation) |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    verdicts = {True: "converged", False: "not converged", None: "unknown"}
    for c in data["curves"]:
        imp = c["improvement_last_20pct"]
        at = c["converged_at"] if c["converged_at"] is not None else f"not by {c['steps']}"
        stays = c.get("stays_converged_from")
        stays_s = stays if stays is not None else f"not by {c['steps']}"
        lines.append(
            f"| {c['family']} | {c['method']} | {c['steps']} | {at} | {stays_s} | {verdicts[c['verdict_at_end']]} | "
            f"{'' if imp is None else f'{imp:.1%}'} | {c['best_valid']:.3f} | {c['last_valid']:.3f} | {c['s_per_step']:.3f} |")
    for c in data["curves"]:
        if c.get("run"):
            lines.append(f"\n{c['family']}/{c['method']}: from a separate run of the same recipe ({c['run']}).")
    lines += ["", "Teachers:", ""]
    for fam, t in data["teachers"].items():
        conv = t.get("convergence", {}).get("converged")
        lines.append(f"- {fam}: {t.get('steps')} steps, best valid MSS {t.get('best_valid')}, verdict {conv}, "
                     f"train {t.get('train_seconds')} s" + (f" (cached: {t['cached']})" if t.get("cached") else ""))
    late = [f"{c['family']}/{c['method']}" for c in data["curves"] if c.get("stays_converged_from") is None]
    if late:
        lines += ["", f"**Not converged by the largest budget measured ({max(c['steps'] for c in data['curves'])} steps): "
                  f"{', '.join(late)}.** Their last 20% still improved the best validation MSS by more than 5%; a "
                  "longer curve is needed to say where they converge (a finding, not a failure of the run)."]
    ev = data.get("evaluation")
    if ev:
        lines += ["", f"Evaluation (one sweep record's measurement, 1 thread, {ev['test_clips']} test clips of 4 s; load "
                  f"{list(ev['load_before'])} before, {list(ev['load_after'])} after): "
                  + ", ".join(f"{k} {v} s" for k, v in ev.items() if isinstance(v, float)) + "."]
    lines += ["", "Curves (step: validation MSS):", ""]
    for c in data["curves"]:
        pts = ", ".join(f"{int(s)}: {v:.2f}" for s, v in c["curve"])
        lines.append(f"- {c['family']}/{c['method']}: {pts}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
