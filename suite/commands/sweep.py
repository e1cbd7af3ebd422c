"""``ddspbench sweep``: an Optuna multi-objective sweep over families, sizes and compression methods.

This module parses the options and prints; the sweep itself (config, checks, study, trials, report) is
:mod:`suite.sweep.orchestrate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ddspbench.suite.bounds import REPEATS, SEED, TRIALS

HELP = "run (or resume) a multi-objective compression sweep; ends with a leaderboard"

STORAGE_ENV = "DDSPBENCH_STORAGE"  # suite.sweep.orchestrate.STORAGE_ENV (kept here: the help text is built at import)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="smoke (minutes on a CPU), quick (about an hour), paper (GPU); default smoke")
    p.add_argument("--config", default=None, metavar="YAML", help="a sweep file overriding the preset (see suite/configs/)")
    p.add_argument("--families", default=None, help="comma-separated families or wildcards (e.g. hpn,ddx7)")
    p.add_argument("--family", dest="families", default=None, help=argparse.SUPPRESS)  # the other spelling, kept working
    p.add_argument("--methods", default=None, help="comma-separated methods or chains (e.g. scratch,kd_audio,prune+quantize)")
    p.add_argument("--sizes", default=None, help="comma-separated student sizes (reduced, full, hidden=32)")
    p.add_argument("--objectives", default=None, help="comma-separated metric names to minimise (e.g. mss,rtf_stream_64,param_bytes)")
    p.add_argument("--sampler", default=None, help="tpe (the presets'), nsga2 (a sweep file's default), nsga3, random; "
                   "tpe and nsga2 settings follow from --trials (suite/sweep/sampler.py)")
    p.add_argument("--trials", type=TRIALS, default=None, help="finished trials the study should have in total")
    p.add_argument("--study", default=None, help="study name (default: the preset's)")
    p.add_argument("--storage", default=None,
                   help=f"Optuna storage URL (default: ${STORAGE_ENV}, else a journal file in --out); postgresql://... for "
                        f"many machines (prefer ${STORAGE_ENV} for a URL with a password: command lines are visible to others)")
    p.add_argument("--out", default=None, help="results directory (default: results/<study>)")
    p.add_argument("--device", default=None, help="cpu or cuda")
    p.add_argument("--seed", type=SEED, default=None, help="seed of data, training, sampling")
    p.add_argument("--repeats", type=REPEATS, default=None, metavar="N",
                   help="train and evaluate every sampled configuration with N seeds (--seed + 0..N-1; default 1); "
                        "Optuna is told the mean over the ok seeds, the report shows means and intervals over seeds")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which weights every trained teacher and candidate keeps and is evaluated at: the best validation "
                        "MSS (default) or the last step's (the behaviour before best-checkpoint selection)")
    p.add_argument("--data-path", default=None, help="a prepared dataset or a folder of audio to use instead of the preset's data")
    p.add_argument("--cache", default=None, help="where prepared data and trained teachers are cached (default: <out>/cache); share it to share teachers")
    p.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    p.add_argument("--setup-only", action="store_true",
                   help="create the study (settings, covering trials) and exit; run it with `ddspbench worker`")
    p.add_argument("--no-progress", action="store_true", help="no live progress bar (one line per finished trial instead)")
    p.add_argument("--json", action="store_true", help="print the summary (trials, records, report files) as JSON")


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def resolve_config(args: argparse.Namespace) -> Any:
    """Preset, then YAML file, then flags -> a validated config (:func:`suite.sweep.orchestrate.resolve_config`)."""
    from ddspbench.suite.sweep.orchestrate import resolve_config as resolve

    return resolve(preset=args.preset, config=args.config, families=_csv(args.families), methods=_csv(args.methods),
                   sizes=_csv(args.sizes), objectives=_csv(args.objectives), checkpoint=args.checkpoint,
                   data_path=args.data_path, **{k: getattr(args, k) for k in ("sampler", "trials", "study", "device",
                                                                               "seed", "repeats")})


def run(args: argparse.Namespace) -> int:
    from ddspbench.suite.commands._options import print_json
    from ddspbench.suite.records import read_records
    from ddspbench.suite.sweep import orchestrate
    from ddspbench.suite.sweep.storage import mask_url

    cfg = resolve_config(args)
    out = Path(args.out or Path("results") / cfg.study)
    session = orchestrate.start_sweep(cfg, out, storage=args.storage, cache=args.cache)
    url = session.storage_url
    if args.setup_only:
        added = orchestrate.setup_only(session)
        if args.json:
            print_json({"study": cfg.study, "storage": mask_url(url), "covering_enqueued": added,
                        "trials": cfg.trials, "repeats": cfg.repeats, "out": str(out), "config": str(session.config_path)})
            return 0
        print(f"study {cfg.study!r} ready in {mask_url(url)} ({added} covering trials enqueued); "
              f"run: ddspbench worker --storage URL --study {cfg.study} --out {out}")
        return 0
    summary = orchestrate.run_sweep(session, live=False if args.no_progress else None, header=(
        f"study {cfg.study!r} (preset {cfg.preset}) in {mask_url(url)}; results in {out}",
        f"objectives (minimised): {', '.join(cfg.objectives)}; sampler {cfg.sampler}, seed {cfg.seed}"))
    ws = session.ws
    print(f"{summary.finished_total} of {cfg.trials} trials finished ({summary.ran} run now: {summary.ok} ok, {summary.failed} failed)")
    print(f"records: {ws.records_path}\nconfig: {session.config_path}")
    report_dir = None if args.no_report else orchestrate.finish_report(out, cfg)
    written = list(read_records([ws.records_path])) if ws.records_path.is_file() else []
    any_ok = any(r.status == "ok" and "reference" not in r.tags for r in written)
    if args.json:
        print_json({"study": cfg.study, "storage": mask_url(url), "out": str(out), "trials": cfg.trials, "repeats": cfg.repeats,
                    "finished": summary.finished_total, "ran": summary.ran, "ok": summary.ok, "failed": summary.failed,
                    "records": str(ws.records_path), "config": str(session.config_path),
                    "report": None if report_dir is None else str(report_dir),
                    "candidates": [{"candidate_id": r.candidate_id, "config_id": r.config_id, "seed": r.seed,
                                    "status": r.status, "method": r.method,
                                    "family": r.family, "size": r.size, "error": r.error,
                                    "objectives": {o: r.metrics.get(o) for o in cfg.objectives}}
                                   for r in summary.records]})
    return 0 if any_ok else 1
