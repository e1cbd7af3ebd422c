"""``ddspbench sweep``: an Optuna multi-objective sweep over families, sizes and compression methods."""

from __future__ import annotations

import argparse
import re
import signal
from pathlib import Path
from typing import Any

from ddspbench.suite.bounds import REPEATS, SEED, TRIALS

HELP = "run (or resume) a multi-objective compression sweep; ends with a leaderboard"

STORAGE_ENV = "DDSPBENCH_STORAGE"


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


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def resolve_config(args: argparse.Namespace) -> Any:
    """Preset, then YAML file, then flags -> a validated :class:`suite.sweep.config.SweepConfig`."""
    from ddspbench.suite.presets import preset_tree
    from ddspbench.suite.sweep.config import config_from_dict, deep_merge, load_yaml

    file_tree = load_yaml(args.config) if args.config else {}
    preset = args.preset or file_tree.get("preset") or "smoke"
    tree = deep_merge(preset_tree(str(preset)), file_tree)
    tree["preset"] = preset if args.preset else tree.get("preset", preset)
    space = tree.setdefault("space", {})
    if args.families:
        space["families"] = _csv(args.families)
    if args.methods:
        space["methods"] = _csv(args.methods)
    if args.sizes:
        space["sizes"] = _csv(args.sizes)
    for key in ("sampler", "trials", "study", "device", "seed", "repeats"):
        if getattr(args, key) is not None:
            tree[key] = getattr(args, key)
    if args.checkpoint:
        for sect in ("teacher", "student"):
            tree.setdefault(sect, {})["checkpoint"] = args.checkpoint
    if args.objectives:
        tree["objectives"] = _csv(args.objectives)
    if args.data_path:
        tree.setdefault("data", {})["path"] = str(Path(args.data_path).resolve())
    cfg = config_from_dict(tree, where=args.config or f"preset {preset}")
    for name in cfg.objectives:  # a streaming objective needs its buffer measured
        m = re.search(r"_stream_(\d+)$", name)
        if m and int(m.group(1)) not in cfg.evaluation.stream_buffers:
            cfg.evaluation.stream_buffers.append(int(m.group(1)))
    return cfg


def check_device(device: str) -> None:
    """A CUDA device must exist before hours of trials fail one by one."""
    if device.startswith("cuda"):
        import torch

        from ddspbench.suite.errors import UserError

        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")


def sigterm_as_interrupt() -> None:
    """SIGINT and SIGTERM both raise KeyboardInterrupt, so the running trial is recorded as interrupted.

    SIGINT is set explicitly: a process started in the background by a non-interactive shell inherits
    SIGINT as *ignored*, and Python then never raises KeyboardInterrupt for it.
    """

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)


def repeats_note(cfg: Any) -> str:
    """What ``repeats`` does to a sweep, in one line."""
    return (f"{cfg.repeats} seeds per configuration ({cfg.seed}..{cfg.seed + cfg.repeats - 1}); Optuna gets the mean "
            "over the ok seeds; candidates that neither train nor draw random numbers run once")


def storage_url_of(args: argparse.Namespace, out: Path) -> str:
    """``--storage``, else ``$DDSPBENCH_STORAGE``, else the journal file in ``out``."""
    import os

    from ddspbench.suite.sweep.storage import default_storage_url

    return args.storage or os.environ.get(STORAGE_ENV) or default_storage_url(out)


def run(args: argparse.Namespace) -> int:
    from ddspbench.suite.commands._options import check_out_dir, print_json
    from ddspbench.suite.pipeline import Workspace, check_sweep_fits
    from ddspbench.suite.sweep.progress import SweepDisplay
    from ddspbench.suite.sweep.runner import (
        count_trials,
        enqueue_covering,
        open_study,
        run_trials,
        save_resolved_config,
    )
    from ddspbench.suite.sweep.space import resolve_space
    from ddspbench.suite.sweep.storage import mask_url, slot_lock, storage_kind

    cfg = resolve_config(args)
    check_device(cfg.device)
    space = resolve_space(cfg)  # every name checked before anything is written
    check_sweep_fits(cfg)  # and the data and training it implies estimated against the memory available
    out = Path(args.out or Path("results") / cfg.study)
    check_out_dir(out)
    storage_url = storage_url_of(args, out)
    storage_kind(storage_url)  # an unusable URL is refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    sigterm_as_interrupt()
    study, storage = open_study(cfg, storage_url)
    config_path = save_resolved_config(cfg, out, storage_url)
    ws = Workspace(cfg, out, cache=args.cache)
    if args.setup_only:
        with slot_lock(storage_url, storage, cfg.study):
            added = enqueue_covering(study, space, cfg)
        if args.json:
            print_json({"study": cfg.study, "storage": mask_url(storage_url), "covering_enqueued": added,
                        "trials": cfg.trials, "repeats": cfg.repeats, "out": str(out), "config": str(config_path)})
            return 0
        print(f"study {cfg.study!r} ready in {mask_url(storage_url)} ({added} covering trials enqueued); "
              f"run: ddspbench worker --storage URL --study {cfg.study} --out {out}")
        return 0
    finished, _ = count_trials(study)
    with SweepDisplay(cfg.objectives, live=False if args.no_progress else None) as display:
        ws.note = display.note
        display.note(f"study {cfg.study!r} (preset {cfg.preset}) in {mask_url(storage_url)}; results in {out}")
        display.note(f"objectives (minimised): {', '.join(cfg.objectives)}; sampler {cfg.sampler}, seed {cfg.seed}")
        if cfg.repeats > 1:
            display.note(repeats_note(cfg))
        if finished:
            display.note(f"resuming: {finished} of {cfg.trials} trials already finished")
        summary = run_trials(study, storage, storage_url, cfg, ws, display=display, space=space)
    print(f"{summary.finished_total} of {cfg.trials} trials finished ({summary.ran} run now: {summary.ok} ok, {summary.failed} failed)")
    print(f"records: {ws.records_path}\nconfig: {config_path}")
    report_dir = None if args.no_report else finish_report(out, cfg)
    any_ok = any(r.status == "ok" and r.method != "teacher" for r in _records(ws.records_path))
    if args.json:
        print_json({"study": cfg.study, "storage": mask_url(storage_url), "out": str(out), "trials": cfg.trials, "repeats": cfg.repeats,
                    "finished": summary.finished_total, "ran": summary.ran, "ok": summary.ok, "failed": summary.failed,
                    "records": str(ws.records_path), "config": str(config_path),
                    "report": None if report_dir is None else str(report_dir),
                    "candidates": [{"candidate_id": r.candidate_id, "config_id": r.config_id, "seed": r.seed,
                                    "status": r.status, "method": r.method,
                                    "family": r.family, "size": r.size, "error": r.error,
                                    "objectives": {o: r.metrics.get(o) for o in cfg.objectives}}
                                   for r in summary.records]})
    return 0 if any_ok else 1


def _records(path: Path) -> list[Any]:
    from ddspbench.suite.records import read_records

    return list(read_records([path])) if path.is_file() else []


def finish_report(out: Path, cfg: Any) -> Path | None:
    """Build the report of ``out`` (ranked by the first objective) and print the leaderboard."""
    from rich.console import Console

    from ddspbench import reports
    from ddspbench.suite.commands.report import pareto_objectives
    from ddspbench.suite.errors import UserError

    report_dir = out / "report"
    quality = cfg.objectives[0]
    rtf = next((o for o in cfg.objectives if o.startswith("rtf_")), "rtf_stream_64")
    objectives = pareto_objectives(quality, list(cfg.objectives))
    console = Console()
    mixed = False
    try:
        paths = reports.build_report([out], report_dir, metric=quality, objectives=objectives, rtf_metric=rtf)
    except UserError as exc:
        if "not comparable" not in str(exc):
            raise
        # Rows of one study measured differently (e.g. workers on several machines): report them anyway,
        # and say so; the report itself lists what differs.
        console.print(f"[yellow]warning:[/] {exc}; building the report with mixed rows", markup=True, highlight=False)
        mixed = True
        paths = reports.build_report([out], report_dir, metric=quality, objectives=objectives, rtf_metric=rtf,
                                     allow_mixed_hardware=True)
    reports.print_leaderboard(reports.load_results([out], allow_mixed_hardware=mixed), console=console, metric=quality)
    if "json" in paths:
        from ddspbench.reports.tables import print_verdicts

        print_verdicts(paths["json"], console)
    if cfg.preset == "smoke":  # the report pages carry the same warning (reports reads the records' preset)
        (report_dir / "SMOKE.txt").write_text(reports.SMOKE_WARNING + "\n", encoding="utf-8")
        console.print(reports.SMOKE_WARNING, style="bold yellow", markup=False, highlight=False)
    board = paths.get("md") or next(iter(paths.values()), report_dir)
    print(f"leaderboard: {board}")
    return report_dir
