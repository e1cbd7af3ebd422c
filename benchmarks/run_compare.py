"""Run the ``compare`` preset on several instruments, one study per instrument and family, and report them together.

    .venv/bin/python benchmarks/run_compare.py --out results/compare

Each (instrument, family) pair is its own study in ``<out>/<instrument>/<family>/`` (the preset with the instrument
and family swapped in; the pairs of one instrument share its prepared data through ``<out>/<instrument>/cache``).
The studies are created first (``sweep --setup-only``); then ``--workers`` one-thread ``ddspbench worker``
processes run them, a freed slot joining the next study that still has trials to hand out; then one report covers
every study (``<out>/report``: per-instrument verdicts, FAD beside MSS, the cross-instrument ranks). ``times.txt``
records the wall time of each step, the load average and the commit.

Smaller designs for a machine that cannot afford the full one: ``--families``, ``--instruments``, ``--repeats``,
``--teacher-seeds``, ``--steps FAMILY=N`` (students' and teachers' budget), ``--recordings`` and ``--methods``; whatever is
changed is written into each study's sweep file and the resolved configs beside the records.

The teacher's size or budget as an axis: ``--teacher-variant long:steps=600`` (repeatable; ``NAME:key=value,...`` with
the keys of ``teacher.variants``) runs every teacher-using arm once per teacher, the default one and each variant.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ddspbench.suite.presets import COMPARE_INSTRUMENTS, preset_tree  # noqa: E402
from ddspbench.suite.sweep.config import config_from_dict, deep_merge  # noqa: E402
from ddspbench.suite.sweep.space import covering_trials, resolve_space  # noqa: E402


def _cli() -> list[str]:
    return [sys.executable, "-m", "ddspbench.suite"]


def _stamp(log: Path, text: str) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} load {load} {text}"
    print(line, flush=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def _variant(spec: str) -> tuple[str, dict]:
    """``long:steps=600,size=full`` -> ``("long", {"steps": 600, "size": "full"})`` (values read as YAML scalars)."""
    name, _, body = spec.partition(":")
    if not name or not body:
        raise SystemExit(f"--teacher-variant {spec!r}: expected NAME:key=value[,key=value]")
    fields = {}
    for item in body.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--teacher-variant {spec!r}: {item!r} is not key=value")
        fields[key.strip()] = yaml.safe_load(value)
    return name.strip(), fields


def _sweep_file(inst: str, family: str, args: argparse.Namespace) -> dict:
    tree = preset_tree("compare")
    over: dict = {
        "preset": "compare", "study": f"compare-{inst}-{family}", "trials": 1,
        "space": {"families": [family], **({"methods": args.methods.split(",")} if args.methods else {})},
        "data": {"options": {**tree["data"]["options"], "instruments": inst,
                             **({"recordings": args.recordings} if args.recordings else {})}},
    }
    if args.repeats is not None:
        over["repeats"] = args.repeats
    teacher: dict = {}
    student: dict = {}
    if args.teacher_seeds is not None:
        teacher["seeds"] = args.teacher_seeds
    for spec in args.steps:
        fam, _, n = spec.partition("=")
        if fam == family:
            teacher["family_steps"] = {**tree["teacher"]["family_steps"], fam: int(n)}
            student["family_steps"] = {**tree["student"]["family_steps"], fam: int(n)}
    if args.teacher_variant:
        teacher["variants"] = dict(_variant(v) for v in args.teacher_variant)
    if teacher:
        over["teacher"] = teacher
    if student:
        over["student"] = student
    # one trial per arm: the preset's grid (scratch x 2 budgets, kd_audio, kd_control, prune x 2 losses, int8 = 7
    # per family), each teacher-using arm once per teacher variant
    over["trials"] = len(covering_trials(resolve_space(config_from_dict(deep_merge(tree, over))), 10_000, grid=True))
    return over


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--instruments", default=",".join(COMPARE_INSTRUMENTS))
    ap.add_argument("--families", default="hpn,ddx7")
    ap.add_argument("--repeats", type=int, default=None, help="runs per trained arm (default: the preset's 8)")
    ap.add_argument("--teacher-seeds", type=int, default=None, help="teachers per family (default: the preset's 2)")
    ap.add_argument("--steps", action="append", default=[], metavar="FAMILY=N",
                    help="teachers' and students' steps for FAMILY (default: the preset's HpN 1200, DDX7 300)")
    ap.add_argument("--recordings", type=int, default=None, help="recordings per instrument (default: the preset's 80)")
    ap.add_argument("--methods", default=None, help="comma-separated methods (default: the preset's five)")
    ap.add_argument("--teacher-variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                    help="another teacher (teacher.variants), e.g. long:steps=600; repeatable")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = out / "times.txt"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    t0 = time.perf_counter()
    _stamp(log, f"start commit {commit} argv {' '.join(sys.argv[1:])}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    studies: list[tuple[str, Path, Path]] = []
    for inst in [i.strip() for i in args.instruments.split(",") if i.strip()]:
        cache = out / inst / "cache"
        for family in [f.strip() for f in args.families.split(",") if f.strip()]:
            sdir = out / inst / family
            sdir.mkdir(parents=True, exist_ok=True)
            cfg = sdir / "sweep.yaml"
            over = _sweep_file(inst, family, args)
            cfg.write_text(yaml.safe_dump(over, sort_keys=False))
            rc = subprocess.run([*_cli(), "sweep", "--config", str(cfg), "--out", str(sdir), "--cache", str(cache),
                                 "--setup-only", "--no-progress"], env=env, check=False).returncode
            _stamp(log, f"setup {over['study']} rc={rc} at +{time.perf_counter() - t0:.0f}s")
            if rc != 0:
                return rc
            studies.append((over["study"], sdir, cache))
    running: dict[subprocess.Popen, int] = {}
    active = [0] * len(studies)
    exhausted = [False] * len(studies)
    failed = 0
    while True:
        for p, i in list(running.items()):
            if p.poll() is not None:
                del running[p]
                active[i] -= 1
                exhausted[i] = True  # a worker leaves only when its study has no trial left to hand out
                failed += p.returncode != 0
                _stamp(log, f"worker {studies[i][0]} rc={p.returncode} at +{time.perf_counter() - t0:.0f}s")
        open_ = [i for i in range(len(studies)) if not exhausted[i]]
        while len(running) < args.workers and open_:
            i = min(open_, key=lambda k: (active[k], k))
            name, sdir, cache = studies[i]
            p = subprocess.Popen([*_cli(), "worker", "--study", name, "--out", str(sdir), "--cache", str(cache),
                                  "--no-progress"], env=env, stdout=subprocess.DEVNULL)
            running[p] = i
            active[i] += 1
            _stamp(log, f"worker {name} started at +{time.perf_counter() - t0:.0f}s")
            if active[i] >= 2:  # at most two workers per study: a third would only wait for trials
                open_.remove(i)
        if not running:
            break
        time.sleep(2.0)
    rc = subprocess.run([*_cli(), "report", "--results", str(out), "--out", str(out / "report")], env=env,
                        check=False).returncode
    _stamp(log, f"end total {time.perf_counter() - t0:.0f}s, {failed} worker(s) failed, report rc={rc}")
    return 1 if failed else rc


if __name__ == "__main__":
    raise SystemExit(main())
