"""``ddspbench worker``: join a sweep's study from another process or machine and run its trials."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "join an existing sweep study (e.g. on PostgreSQL) and run trials until it has N finished"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=None, help="the study's storage URL (default: the journal file in --out)")
    p.add_argument("--study", required=True, help="study name (as given to `ddspbench sweep`)")
    p.add_argument("--out", required=True, help="results directory shared by the workers (records, candidates)")
    p.add_argument("--trials", type=int, default=None, help="finished trials to reach (default: the sweep's)")
    p.add_argument("--cache", default=None, help="where prepared data and trained teachers are cached (default: <out>/cache); share it to share teachers")
    p.add_argument("--grace", type=float, default=120.0, help="seconds without heartbeat before a running trial is taken as dead")


def run(args: argparse.Namespace) -> int:
    from suite.commands.sweep import check_device, sigterm_as_interrupt
    from suite.errors import UserError
    from suite.pipeline import Workspace
    from suite.sweep.progress import SweepDisplay
    from suite.sweep.runner import load_study_config, open_study, run_trials
    from suite.sweep.storage import default_storage_url, mask_url

    out = Path(args.out)
    storage_url = args.storage or default_storage_url(out)
    cfg = load_study_config(storage_url, args.study)
    check_device(cfg.device)
    if args.trials is not None:
        if args.trials < 1:
            raise UserError(f"--trials must be at least 1, got {args.trials}")
        cfg.trials = args.trials
    sigterm_as_interrupt()
    study, storage = open_study(cfg, storage_url, worker_offset=os.getpid() % 100_003, write_attrs=False)
    ws = Workspace(cfg, out, cache=args.cache)
    with SweepDisplay(cfg.objectives) as display:
        ws.note = display.note
        display.note(f"worker {os.getpid()} on study {cfg.study!r} in {mask_url(storage_url)}; results in {out}")
        summary = run_trials(study, storage, storage_url, cfg, ws, display=display, grace_s=args.grace)
    print(f"worker done: ran {summary.ran} trials ({summary.ok} ok, {summary.failed} failed); "
          f"study has {summary.finished_total} of {cfg.trials} finished")
    return 0
