"""A sweep from its settings to its report: what ``ddspbench sweep`` and ``ddspbench worker`` run, without the CLI.

:func:`resolve_config` merges a preset, a sweep file and explicit overrides into a validated
:class:`suite.sweep.config.SweepConfig` (every registry name is checked there, once: :func:`suite.sweep.names.check_names`);
:func:`start_sweep` checks the device, the space and the memory, opens the study and the results directory;
:func:`run_sweep` runs trials until the study is complete and :func:`finish_report` builds the report. The command
modules parse options and print; everything between lives here.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddspbench.suite.errors import UserError

if TYPE_CHECKING:
    import optuna

    from ddspbench.suite.pipeline import Workspace
    from ddspbench.suite.sweep.config import SweepConfig
    from ddspbench.suite.sweep.runner import RunSummary
    from ddspbench.suite.sweep.space import ResolvedSpace

__all__ = [
    "STORAGE_ENV",
    "resolve_config",
    "check_device",
    "sigterm_as_interrupt",
    "repeats_note",
    "storage_url_for",
    "SweepSession",
    "start_sweep",
    "setup_only",
    "run_sweep",
    "start_worker",
    "finish_report",
]

STORAGE_ENV = "DDSPBENCH_STORAGE"
"""The environment variable a storage URL (with its password) is read from when none is given."""


def resolve_config(*, preset: str | None = None, config: str | None = None, families: Sequence[str] | None = None,
                   methods: Sequence[str] | None = None, sizes: Sequence[str] | None = None,
                   objectives: Sequence[str] | None = None, checkpoint: str | None = None,
                   data_path: str | None = None, tree: Mapping[str, Any] | None = None, **settings: Any) -> SweepConfig:
    """Preset, then sweep file (``config``), then ``tree`` (a sweep file's keys, nested), then these overrides -> a
    validated config.

    ``settings`` are top-level keys (``sampler``, ``trials``, ``study``, ``device``, ``seed``, ``repeats``); None
    leaves a value as the preset and file set it. A streaming objective gets its buffer measured.
    """
    from ddspbench.suite.presets import preset_tree
    from ddspbench.suite.sweep.config import config_from_dict, deep_merge, load_yaml

    file_tree = load_yaml(config) if config else {}
    if tree:
        file_tree = deep_merge(file_tree, dict(tree))
    name = preset or file_tree.get("preset") or "smoke"
    tree = deep_merge(preset_tree(str(name)), file_tree)
    tree["preset"] = name if preset else tree.get("preset", name)
    space = tree.setdefault("space", {})
    for key, value in (("families", families), ("methods", methods), ("sizes", sizes)):
        if value:
            space[key] = list(value)
    tree.update({k: v for k, v in settings.items() if v is not None})
    if checkpoint:
        for sect in ("teacher", "student"):
            tree.setdefault(sect, {})["checkpoint"] = checkpoint
    if objectives:
        tree["objectives"] = list(objectives)
    if data_path:
        tree.setdefault("data", {})["path"] = str(Path(data_path).resolve())
    cfg = config_from_dict(tree, where=config or f"preset {name}")
    for objective in cfg.objectives:  # a streaming objective needs its buffer measured
        m = re.search(r"_stream_(\d+)$", objective)
        if m and int(m.group(1)) not in cfg.evaluation.stream_buffers:
            cfg.evaluation.stream_buffers.append(int(m.group(1)))
    return cfg


def check_device(device: str) -> None:
    """A CUDA device must exist before hours of trials fail one by one."""
    if device.startswith("cuda"):
        import torch

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


def repeats_note(cfg: SweepConfig) -> str:
    """What ``repeats`` does to a sweep, in one line."""
    return (f"{cfg.repeats} seeds per configuration ({cfg.seed}..{cfg.seed + cfg.repeats - 1}); Optuna gets the mean "
            "over the ok seeds; candidates that neither train nor draw random numbers run once")


def storage_url_for(storage: str | None, out: Path) -> str:
    """``storage``, else ``$DDSPBENCH_STORAGE``, else the journal file in ``out``."""
    from ddspbench.suite.sweep.storage import default_storage_url

    return storage or os.environ.get(STORAGE_ENV) or default_storage_url(out)


@dataclass
class SweepSession:
    """An opened sweep: its config, study, storage, workspace and where it writes."""

    cfg: SweepConfig
    out: Path
    storage_url: str
    study: optuna.Study
    storage: Any
    ws: Workspace
    space: ResolvedSpace | None = None
    config_path: Path | None = None


def start_sweep(cfg: SweepConfig, out: Path, *, storage: str | None = None, cache: str | None = None) -> SweepSession:
    """Check everything a sweep needs before anything is written (device, names and space, memory, results folder,
    storage URL), then open the study and save the resolved config."""
    from ddspbench.suite.commands._options import check_out_dir
    from ddspbench.suite.pipeline import Workspace, check_sweep_fits
    from ddspbench.suite.sweep.runner import open_study, save_resolved_config
    from ddspbench.suite.sweep.space import resolve_space
    from ddspbench.suite.sweep.storage import storage_kind

    check_device(cfg.device)
    space = resolve_space(cfg)
    check_sweep_fits(cfg)  # the data and training it implies, against the memory available
    check_out_dir(out)
    storage_url = storage_url_for(storage, out)
    storage_kind(storage_url)  # an unusable URL is refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    sigterm_as_interrupt()
    study, store = open_study(cfg, storage_url)
    config_path = save_resolved_config(cfg, out, storage_url)
    return SweepSession(cfg, out, storage_url, study, store, Workspace(cfg, out, cache=cache), space, config_path)


def setup_only(session: SweepSession) -> int:
    """Enqueue the covering trials of a study that workers will run; returns how many were added."""
    from ddspbench.suite.sweep.runner import enqueue_covering
    from ddspbench.suite.sweep.storage import slot_lock

    assert session.space is not None
    with slot_lock(session.storage_url, session.storage, session.cfg.study):
        return enqueue_covering(session.study, session.space, session.cfg)


def run_sweep(session: SweepSession, *, live: bool | None = None, grace_s: float | None = None,
              header: Sequence[str] = ()) -> RunSummary:
    """Run trials until the study has ``cfg.trials`` finished ones (a resumed study runs only the missing ones)."""
    from ddspbench.suite.sweep.progress import SweepDisplay
    from ddspbench.suite.sweep.runner import count_trials, run_trials

    cfg = session.cfg
    finished, _ = count_trials(session.study)
    with SweepDisplay(cfg.objectives, live=live) as display:
        session.ws.note = display.note
        for line in header:
            display.note(line)
        if cfg.repeats > 1:
            display.note(repeats_note(cfg))
        if finished and session.space is not None:
            display.note(f"resuming: {finished} of {cfg.trials} trials already finished")
        kwargs: dict[str, Any] = {"space": session.space, **({"grace_s": grace_s} if grace_s is not None else {})}
        return run_trials(session.study, session.storage, session.storage_url, cfg, session.ws, display=display, **kwargs)


def start_worker(out: Path, study_name: str, *, storage: str | None = None, cache: str | None = None,
                 trials: int | None = None) -> SweepSession:
    """Join a study another process set up: its config from the storage, checked against this machine."""
    from ddspbench.suite.commands._options import check_out_dir
    from ddspbench.suite.pipeline import Workspace, check_sweep_fits
    from ddspbench.suite.sweep.runner import load_study_config, open_study

    check_out_dir(out)
    storage_url = storage_url_for(storage, out)
    cfg = load_study_config(storage_url, study_name)
    check_sweep_fits(cfg)  # this machine's memory, not the one that made the study
    check_device(cfg.device)
    if trials is not None:
        cfg.trials = trials
    sigterm_as_interrupt()
    study, store = open_study(cfg, storage_url, worker_offset=os.getpid() % 100_003, write_attrs=False)
    return SweepSession(cfg, out, storage_url, study, store, Workspace(cfg, out, cache=cache))


def finish_report(out: Path, cfg: SweepConfig) -> Path | None:
    """Build the report of ``out`` (ranked by the first objective) and print the leaderboard and the verdicts."""
    from rich.console import Console

    from ddspbench import reports
    from ddspbench.reports.pareto import pareto_objectives
    from ddspbench.reports.tables import print_verdicts

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
        print_verdicts(paths["json"], console)
    if cfg.preset == "smoke":  # the report pages carry the same warning (reports reads the records' preset)
        (report_dir / "SMOKE.txt").write_text(reports.SMOKE_WARNING + "\n", encoding="utf-8")
        console.print(reports.SMOKE_WARNING, style="bold yellow", markup=False, highlight=False)
    board = paths.get("md") or next(iter(paths.values()), report_dir)
    print(f"leaderboard: {board}")
    return report_dir
