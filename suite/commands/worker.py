"""``ddspbench worker``: join a sweep's study from another process or machine and run its trials."""

from __future__ import annotations

import argparse
import os

from ddspbench.suite.bounds import TRIALS, Bound

HELP = "join an existing sweep study (e.g. on PostgreSQL) and run trials until it has N finished"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=None,
                   help="the study's storage URL (default: $DDSPBENCH_STORAGE, else the journal file in --out)")
    p.add_argument("--study", required=True, help="study name (as given to `ddspbench sweep`)")
    p.add_argument("--out", required=True, help="results directory shared by the workers (records, candidates)")
    p.add_argument("--trials", type=TRIALS, default=None, help="finished trials to reach (default: the sweep's)")
    p.add_argument("--cache", default=None, help="where prepared data and trained teachers are cached (default: <out>/cache); share it to share teachers")
    p.add_argument("--grace", type=Bound(float, 0.0, 7 * 86400.0, low_open=True), default=120.0,
                   help="seconds without a heartbeat after which a running trial is taken as dead, whatever its pid "
                        "(default 120; heartbeats come every 10 s)")
    p.add_argument("--no-progress", action="store_true", help="no live progress bar (one line per finished trial instead)")
    p.add_argument("--json", action="store_true", help="print what this worker ran as JSON")


def run(args: argparse.Namespace) -> int:
    from ddspbench.suite.commands._options import check_out_dir, print_json
    from ddspbench.suite.sweep import orchestrate
    from ddspbench.suite.sweep.storage import mask_url

    out = check_out_dir(args.out)
    assert out is not None
    session = orchestrate.start_worker(out, args.study, storage=args.storage, cache=args.cache, trials=args.trials)
    cfg = session.cfg
    summary = orchestrate.run_sweep(session, live=False if args.no_progress else None, grace_s=args.grace, header=(
        f"worker {os.getpid()} on study {cfg.study!r} in {mask_url(session.storage_url)}; results in {out}",))
    if args.json:
        print_json({"study": cfg.study, "storage": mask_url(session.storage_url), "out": str(out), "pid": os.getpid(),
                    "ran": summary.ran, "ok": summary.ok, "failed": summary.failed,
                    "finished": summary.finished_total, "trials": cfg.trials,
                    "candidates": [r.candidate_id for r in summary.records]})
        return 0
    print(f"worker done: ran {summary.ran} trials ({summary.ok} ok, {summary.failed} failed); "
          f"study has {summary.finished_total} of {cfg.trials} finished")
    return 0
