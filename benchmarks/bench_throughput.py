"""Training throughput of the ``compare`` recipe, before vs after (issue 21): runs per hour, same run, interleaved.

Two source trees are timed in the same session, one subprocess per measurement, alternating (before, after,
before, after ...): ``--before`` (default ``/tmp/thr_before``, a ``git worktree`` of commit 42bd581) and
``--after`` (this tree). Each subprocess imports ``ddspbench`` from its tree only (``PYTHONPATH`` and the working
directory are the tree) and runs :func:`worker` for one arm.

Arms (the compare preset's training runs; batch 8 x 250 frames = 1 s at 16 kHz, AdamW lr 2e-3, 1 thread):

* ``<family>/teacher``: the teacher (HpN full architecture at hidden 64, DDX7 full), plain MSS, once per compare run;
* ``<family>/scratch``: the reduced student, plain MSS, 3 seeds;
* ``<family>/kd_audio``: the reduced student, 0.5 MSS(target) + 0.5 MSS(teacher audio), teacher forward every step;
* ``<family>/kd_control``: the reduced student, 0.5 MSS(target) + L1 on the teacher's controls;
* ``prune`` (3 seeds per family): the pruned teacher fine-tuned with plain MSS. NOT timed separately: counted at the
  scratch arm's step time (the pruned HpN h64 has 26.6k parameters against the student's 23.5k; DDX7 58.5k against
  67.9k; the synth and the loss, which dominate, are the same size).

A worker builds synthetic, realistic clips (notes 200-800 Hz with vibrato; 32 training clips, 8 validation clips of
250 frames), makes the arm's loss once, trains ``warmup`` steps (one epoch: the target-spectrum cache of the after
tree is then warm, as it is after the first of a run's ~100 epochs) and then ``steps`` more, timed, with
:func:`suite.train.train` (no validation inside), and times ``validation_mss`` on the 8 validation clips.

Extrapolation to one compare run: ``steps_compare x step_s + n_valid x valid_s`` with the preset's steps (HpN 1200,
DDX7 300) and validations (``curve_points`` 20 plus ``valid_every`` 1000: HpN 21, DDX7 20); checkpoint writes (a
100 kB model, a few ms each) and the first epoch's cache misses are left out. The recipe is 1 teacher + 3 x (scratch,
kd_audio, kd_control, prune) per family = 26 training runs; runs per hour = 26 / (the recipe's summed run seconds /
3600) on one 1-thread process (the preset runs two such processes side by side; both trees gain alike from that).

Run: ``python benchmarks/bench_throughput.py [--repeats 3] [--steps 12]``; ``... profile --tree DIR --arm hpn/scratch``
prints a per-part breakdown of one step; ``... parallel`` compares two 1-thread processes with one 2-thread
process; ``... stack`` bounds what training 3 seeds as one stacked model could gain. Results: ``benchmarks/results_throughput.json`` and a section of
``benchmarks/results_train.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ARMS = ("hpn/teacher", "hpn/scratch", "hpn/kd_audio", "hpn/kd_control",
        "ddx7/teacher", "ddx7/scratch", "ddx7/kd_audio", "ddx7/kd_control")
COMPARE_STEPS = {"hpn": 1200, "ddx7": 300}
COMPARE_VALIDATIONS = {"hpn": 21, "ddx7": 20}
RUNS_PER_ARM = {"teacher": 1, "scratch": 6, "kd_audio": 3, "kd_control": 3}  # scratch stands for scratch + prune
N_TRAIN, N_VALID, FRAMES, BATCH = 32, 8, 250, 8
MARK_BEGIN = "<!-- bench_throughput:begin -->"
MARK_END = "<!-- bench_throughput:end -->"


# --- the worker: runs inside one tree ------------------------------------------------------------------------------

def _clips(n: int, seed: int) -> Any:
    import math

    import numpy as np
    import torch

    from ddspbench.suite.data.store import ClipSet

    g = torch.Generator().manual_seed(seed)
    t = torch.arange(FRAMES) / 250.0
    base = 200.0 * 4.0 ** torch.rand(n, 1, generator=g)
    f0 = base * (1.0 + 0.01 * torch.sin(2 * math.pi * 5.0 * t))
    loud = -60.0 + 40.0 * torch.sin(math.pi * t / t[-1]).clamp(min=0) + torch.randn(n, FRAMES, generator=g)
    phase = 2 * math.pi * torch.cumsum(f0.repeat_interleave(64, dim=1), dim=1) / 16000.0
    audio = sum(torch.sin(k * phase) / k for k in range(1, 8)) * 0.1 + 0.01 * torch.randn(n, FRAMES * 64, generator=g)
    ids = np.array([f"s{seed}-{i:03d}" for i in range(n)])
    return ClipSet(audio=audio.float().numpy(), f0_hz=f0.float().numpy(), loudness_db=loud.float().clamp(-80, 0).numpy(),
                   clip_ids=ids, recording_ids=ids, instruments=np.array(["tone"] * n))


def _models(arm: str) -> tuple[Any, Any, Any]:
    """``(model to train, teacher or None, loss_fn)`` of an arm."""
    import torch

    from ddspbench.compressors._distill import audio_kd_loss, control_kd_loss
    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.registry import FAMILIES, SIZES
    from ddspbench.suite.train import mss_loss_fn

    load_catalog()
    family, kind = arm.split("/")
    torch.manual_seed(0)
    if family == "hpn":
        cfg = dict(SIZES.get("hpn/full")().config)
        cfg.pop("widths", None)
        cfg["hidden"] = 64
        teacher = FAMILIES.get("hpn")(**cfg)
    else:
        teacher = SIZES.get("ddx7/full")()
    if kind == "teacher":
        return teacher, None, mss_loss_fn()
    teacher.eval()
    student = SIZES.get(f"{family}/reduced")()
    if kind == "scratch":
        return student, None, mss_loss_fn()
    if kind == "kd_audio":
        return student, teacher, audio_kd_loss(teacher, kd_weight=0.5, target_weight=0.5)
    return student, teacher, control_kd_loss(teacher, student, kd_weight=1.0, target_weight=0.5)


def worker(arm: str, steps: int, warmup: int, valid_repeats: int, threads: int = 1) -> dict[str, Any]:
    """Time ``steps`` training steps of ``arm`` (after ``warmup`` steps) and one validation, in this process's tree."""
    import torch

    import ddspbench.suite.train as tr

    torch.set_num_threads(threads)
    model, _, loss_fn = _models(arm)
    train_set, valid_set = _clips(N_TRAIN, 0), _clips(N_VALID, 1)
    base = {"batch_size": BATCH, "lr": 2e-3, "frames": FRAMES, "seed": 0, "curve_points": 0, "valid_every": 10**6,
            "checkpoint_every": 10**6, "log_every": 50, "threads": threads}
    tr.train(model, train_set, None, tr.TrainConfig(steps=warmup, **base), loss_fn=loss_fn, progress=False)
    t0 = time.perf_counter()
    # the same loss (and so the same target cache) continues: steps warmup+1 .. warmup+steps of one run
    tr.train(model, train_set, None, tr.TrainConfig(steps=steps, **{**base, "seed": 1}), loss_fn=loss_fn,
             progress=False)
    step_s = (time.perf_counter() - t0) / steps
    valid = []
    model.train()
    for _ in range(valid_repeats):
        t1 = time.perf_counter()
        tr.validation_mss(model, valid_set, batch_size=16, seed=0)
        valid.append(time.perf_counter() - t1)
    return {"arm": arm, "step_s": step_s, "valid_s": min(valid), "steps": steps, "warmup": warmup,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "file": tr.__file__}


# --- the profile: one step's parts -----------------------------------------------------------------------------------

def profile(arm: str, steps: int) -> dict[str, float]:
    """Mean milliseconds per step of each part of a training step (this process's tree), 1 thread."""
    import torch

    import ddspbench.baselines.dsp as dsp
    import ddspbench.compressors._distill as dist
    import ddspbench.suite.metrics._mss_kernels as kern
    import ddspbench.suite.metrics.mss as mssm
    import ddspbench.suite.train as tr

    torch.set_num_threads(1)
    acc: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapped(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0
        return wrapped

    model, teacher, _ = _models(arm)
    for m, who in ((model, "student"), (teacher, "teacher")):
        if m is None:
            continue
        m.decoder.forward = timed(f"{who} decoder (GRU/TCN)", m.decoder.forward)
        m.reverb.forward = timed(f"{who} reverb", m.reverb.forward)
        if hasattr(m, "_tonal"):
            m._tonal = timed(f"{who} harmonic bank", m._tonal)
    dsp.filtered_noise = timed("filtered noise (both)", dsp.filtered_noise)
    dsp.fm_synth = timed("FM synth (both)", dsp.fm_synth)
    mssm._spec = timed("loss: STFTs (forward)", mssm._spec)
    for name in ("spectral_distance", "spectral_distance_stats", "target_stats"):
        if hasattr(kern, name):
            setattr(kern, name, timed(f"loss: distance kernel ({name})", getattr(kern, name)))
    for name in ("_teacher_out", "_teacher_controls"):
        if hasattr(dist, name):
            setattr(dist, name, timed(f"teacher forward ({name})", getattr(dist, name)))
    kind = arm.split("/")[1]
    if teacher is None:
        loss_fn = tr.mss_loss_fn()
    else:  # the loss on the wrapped teacher
        loss_fn = (dist.audio_kd_loss(teacher, 0.5, 0.5) if kind == "kd_audio"
                   else dist.control_kd_loss(teacher, model, 1.0, 0.5))
    train_set, valid_set = _clips(N_TRAIN, 0), _clips(N_VALID, 1)
    cfg = tr.TrainConfig(steps=10**6, batch_size=BATCH, lr=2e-3, frames=FRAMES)
    sampler = tr._Sampler(train_set, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
    parts: dict[str, list[float]] = {}

    def step(k: int) -> None:
        t = [time.perf_counter()]
        torch.manual_seed(k)
        batch = tr.batch_to_tensors(sampler.batch(k), torch.device("cpu"))
        t.append(time.perf_counter())
        out = tr.forward_batch(model, batch, k)
        t.append(time.perf_counter())
        loss, _ = loss_fn(out, batch)
        t.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        opt.step()
        t.append(time.perf_counter())
        for name, a, b in zip(("data (sample, crop, to tensors)", "model forward (decoder + synth)",
                               "loss (incl. teacher forward)", "backward (all)", "clip + AdamW"), t[:-1], t[1:]):
            parts.setdefault(name, []).append(b - a)
        parts.setdefault("step", []).append(t[-1] - t[0])

    model.train()
    for k in range(N_TRAIN // BATCH):  # one epoch: numba compiled, caches warm
        step(k)
    acc.clear()
    for k in range(steps):
        step(100 + k)
    out = {f"part: {k}": 1e3 * statistics.median(v[-steps:]) for k, v in parts.items()}
    out.update({f"inside: {k}": 1e3 * v / steps for k, v in acc.items()})
    acc.clear()
    t0 = time.perf_counter()
    tr.validation_mss(model, valid_set, batch_size=16, seed=0)
    v = time.perf_counter() - t0
    family = arm.split("/")[0]
    out["validation, one (8 clips)"] = 1e3 * v
    out["validation, amortized per step"] = 1e3 * v * COMPARE_VALIDATIONS[family] / COMPARE_STEPS[family]
    return out


# --- the driver ------------------------------------------------------------------------------------------------------

def _run_in(tree: Path, args: list[str], timeout: float = 900) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], cwd=tree, env=env,
                         capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{tree}: {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _commit(tree: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True,
                          check=False).stdout.strip() + ("-dirty" if subprocess.run(
                              ["git", "status", "--porcelain", "--untracked-files=no"], cwd=tree, capture_output=True,
                              text=True, check=False).stdout.strip() else "")


def parallel_modes(tree: Path, arm: str, steps: int, repeats: int) -> dict[str, Any]:
    """Training steps per second on this 2-core machine: two 1-thread processes side by side (the compare preset's
    way) against one 2-thread process, alternating; ``arm`` in ``tree``."""
    sys.path.insert(0, str(HERE))
    from common import load_average

    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--arm", arm, "--steps", str(steps)]
    load_before = load_average()
    rates: dict[str, list[float]] = {"2 processes x 1 thread": [], "1 process x 2 threads": []}
    for _ in range(repeats):
        procs = [subprocess.Popen([*cmd, "--threads", "1"], cwd=tree, env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        rates["2 processes x 1 thread"].append(sum(1.0 / o["step_s"] for o in outs))
        one = _run_in(tree, ["worker", "--arm", arm, "--steps", str(steps), "--threads", "2"])
        rates["1 process x 2 threads"].append(1.0 / one["step_s"])
    return {"arm": arm, "tree": str(tree), "commit": _commit(tree), "steps": steps, "repeats": repeats,
            "load_before": load_before, "load_after": load_average(), "steps_per_s": rates,
            "median": {k: statistics.median(v) for k, v in rates.items()}}


def stack_gain(k: int = 3, repeats: int = 6) -> list[str]:
    """Upper bound of training ``k`` runs as one stacked model: one step at batch ``8 k`` against one at batch 8
    (this process's tree, 1 thread, alternating), per family's reduced student; per run ratio < 1 would pay."""
    import torch

    from ddspbench.suite.catalog import load_catalog
    from ddspbench.suite.metrics.mss import MSSLoss
    from ddspbench.suite.registry import SIZES
    from ddspbench.suite.train import batch_to_tensors, forward_batch

    torch.set_num_threads(1)
    load_catalog()
    clips = _clips(8 * k, 0)
    lines = []
    for fam in ("hpn", "ddx7"):
        torch.manual_seed(0)
        model = SIZES.get(f"{fam}/reduced")().train()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
        crit = MSSLoss(cache_targets=True)
        data = {b: batch_to_tensors({"audio": clips.audio[:b], "f0_hz": clips.f0_hz[:b],
                                     "loudness_db": clips.loudness_db[:b]}, torch.device("cpu")) for b in (8, 8 * k)}

        def step(b: int, model: Any = model, opt: Any = opt, crit: Any = crit, data: Any = data) -> float:
            t0 = time.perf_counter()
            out = forward_batch(model, data[b], 1)
            loss = crit(data[b]["audio"], out["audio"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return time.perf_counter() - t0

        times: dict[int, list[float]] = {8: [], 8 * k: []}
        for b in data:
            step(b)
        for _ in range(repeats):
            for b in data:
                times[b].append(step(b))
        m1, mk = statistics.median(times[8]), statistics.median(times[8 * k])
        lines.append(f"{fam}: batch 8 {m1:.3f} s (min {min(times[8]):.3f}), batch {8 * k} {mk:.3f} s (min "
                     f"{min(times[8 * k]):.3f}); per run {mk / k / m1:.2f}x of a separate step (medians), "
                     f"{min(times[8 * k]) / k / min(times[8]):.2f}x (minima)")
    return lines


def recipe_seconds(per_arm: dict[str, dict[str, float]]) -> dict[str, Any]:
    """One compare run's training seconds per arm and the recipe's total from per-arm ``step_s``/``valid_s``."""
    runs, total, n = {}, 0.0, 0
    for arm, m in per_arm.items():
        family, kind = arm.split("/")
        run_s = COMPARE_STEPS[family] * m["step_s"] + COMPARE_VALIDATIONS[family] * m["valid_s"]
        runs[arm] = run_s
        total += RUNS_PER_ARM[kind] * run_s
        n += RUNS_PER_ARM[kind]
    return {"run_s": runs, "recipe_s": total, "runs": n, "runs_per_hour": n * 3600.0 / total}


def drive(before: Path, after: Path, repeats: int, steps: int, arms: tuple[str, ...]) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from common import cpu_name, load_average

    load_before = load_average()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    trees = {"before": before, "after": after}
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {k: {a: [] for a in arms} for k in trees}
    for arm in arms:  # warm-up: numba compiles into each tree's __pycache__ once, outside the timing
        for tree in trees.values():
            _run_in(tree, ["worker", "--arm", arm, "--steps", "1", "--warmup", "1"])
    for r in range(repeats):
        for arm in arms:
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for name in order:
                raw[name][arm].append(_run_in(trees[name], ["worker", "--arm", arm, "--steps", str(steps),
                                                             "--warmup", str(N_TRAIN // BATCH)]))
                print(f"rep {r} {arm} {name}: {raw[name][arm][-1]['step_s']:.3f} s/step", file=sys.stderr)
    summary: dict[str, Any] = {}
    for name in trees:
        med = {a: {"step_s": statistics.median(x["step_s"] for x in raw[name][a]),
                   "valid_s": statistics.median(x["valid_s"] for x in raw[name][a])} for a in arms}
        mn = {a: {"step_s": min(x["step_s"] for x in raw[name][a]),
                  "valid_s": min(x["valid_s"] for x in raw[name][a])} for a in arms}
        summary[name] = {"median": med, "min": mn, "recipe_median": recipe_seconds(med), "recipe_min": recipe_seconds(mn)}
    return {
        "date": started, "machine": f"{cpu_name()} ({os.cpu_count()} cores)", "torch": raw["after"][arms[0]][0]["torch"],
        "threads": 1, "repeats": repeats, "steps": steps, "warmup": N_TRAIN // BATCH,
        "commit_before": _commit(before), "commit_after": _commit(after), "tree_before": str(before),
        "tree_after": str(after), "load_before": load_before, "load_after": load_average(), "raw": raw,
        "summary": summary,
        "speedup_recipe_median": summary["before"]["recipe_median"]["recipe_s"] / summary["after"]["recipe_median"]["recipe_s"],
        "speedup_recipe_min": summary["before"]["recipe_min"]["recipe_s"] / summary["after"]["recipe_min"]["recipe_s"],
    }


def to_markdown(d: dict[str, Any]) -> str:
    sb, sa = d["summary"]["before"], d["summary"]["after"]
    lines = [
        MARK_BEGIN,
        "## Throughput of the compare recipe, before vs after (issue 21; `benchmarks/bench_throughput.py`)",
        "",
        f"- {d['date']}, {d['machine']}, torch {d['torch']}, 1 thread per process, one measurement at a time; "
        f"before = {d['commit_before']} ({d['tree_before']}), after = {d['commit_after']}",
        f"- load average before {d['load_before']}, after {d['load_after']} (a shared machine; the trees alternate per "
        f"arm and repeat, {d['repeats']} repeats of {d['steps']} timed steps after a {d['warmup']}-step warm-up epoch)",
        "- per compare run: steps x step + validations x validation (HpN 1200 steps / 21 validations, DDX7 300 / 20); "
        "the recipe = 1 teacher + 3 x (scratch, kd_audio, kd_control, prune) per family, prune at the scratch step time",
        "",
        "| arm | step before (s) median / min | step after (s) median / min | step ratio (medians) | validation before / "
        "after (s, min) | one run before / after (s, medians) |",
        "|---|---|---|---|---|---|",
    ]
    for arm in sb["median"]:
        b, a = sb["median"][arm], sa["median"][arm]
        lines.append(
            f"| {arm} | {b['step_s']:.3f} / {sb['min'][arm]['step_s']:.3f} | {a['step_s']:.3f} / "
            f"{sa['min'][arm]['step_s']:.3f} | {b['step_s'] / a['step_s']:.2f}x | {sb['min'][arm]['valid_s']:.3f} / "
            f"{sa['min'][arm]['valid_s']:.3f} | {sb['recipe_median']['run_s'][arm]:.0f} / "
            f"{sa['recipe_median']['run_s'][arm]:.0f} |")
    rb, ra = sb["recipe_median"], sa["recipe_median"]
    goal = "met" if min(d["speedup_recipe_median"], d["speedup_recipe_min"]) >= 3.0 else "NOT met"
    lines += [
        "",
        f"Recipe ({rb['runs']} training runs, one 1-thread process): before {rb['recipe_s']:.0f} s = "
        f"**{rb['runs_per_hour']:.1f} runs/hour**, after {ra['recipe_s']:.0f} s = **{ra['runs_per_hour']:.1f} runs/hour**: "
        f"**{d['speedup_recipe_median']:.2f}x** (medians), {d['speedup_recipe_min']:.2f}x (minima). "
        f"Goal (>= 3x): **{goal}**.",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write(d: dict[str, Any], md: Path, js: Path) -> None:
    js.write_text(json.dumps(d, indent=1, default=str) + "\n")
    text = md.read_text() if md.is_file() else ""
    block = to_markdown(d)
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + block + rest.split(MARK_END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    md.write_text(text)
    print(block)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    w = sub.add_parser("worker")
    w.add_argument("--arm", required=True, choices=ARMS)
    w.add_argument("--steps", type=int, default=12)
    w.add_argument("--warmup", type=int, default=N_TRAIN // BATCH)
    w.add_argument("--valid-repeats", type=int, default=2)
    w.add_argument("--threads", type=int, default=1)
    q = sub.add_parser("parallel")
    q.add_argument("--arm", default="hpn/scratch", choices=ARMS)
    q.add_argument("--steps", type=int, default=12)
    q.add_argument("--repeats", type=int, default=3)
    sub.add_parser("stack")
    p = sub.add_parser("profile")
    p.add_argument("--arm", required=True, choices=ARMS)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--tree", type=Path, default=None, help="run in this tree (a subprocess); default: this process")
    ap.add_argument("--before", type=Path, default=Path("/tmp/thr_before"))
    ap.add_argument("--after", type=Path, default=HERE.parent)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--out", type=Path, default=HERE / "results_train.md")
    ap.add_argument("--json", type=Path, default=HERE / "results_throughput.json")
    args = ap.parse_args(argv)
    if args.cmd == "worker":
        print(json.dumps(worker(args.arm, args.steps, args.warmup, args.valid_repeats, args.threads)))
        return 0
    if args.cmd == "parallel":
        print(json.dumps(parallel_modes(args.after, args.arm, args.steps, args.repeats), indent=1))
        return 0
    if args.cmd == "stack":
        print("\n".join(stack_gain()))
        return 0
    if args.cmd == "profile":
        if args.tree is not None:
            print(json.dumps(_run_in(args.tree, ["profile", "--arm", args.arm, "--steps", str(args.steps)])))
        else:
            print(json.dumps(profile(args.arm, args.steps)))
        return 0
    arms = tuple(a for a in args.arms.split(",") if a)
    write(drive(args.before, args.after, args.repeats, args.steps, arms), args.out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
