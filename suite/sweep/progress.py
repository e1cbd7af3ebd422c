"""The sweep's progress display: a rich bar (trials done / total, current candidate, ETA) on a terminal,
one plain line per finished trial otherwise."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

from ddspbench.suite.records import ResultRecord, seed_means

__all__ = ["SweepDisplay"]


class SweepDisplay:
    """Progress of a sweep; use as a context manager.

    Args:
        objectives: metric names shown for each finished trial.
        live: show the rich bar (default: only when ``stream`` is a terminal).
        stream: where lines go (stdout).
    """

    def __init__(self, objectives: list[str], live: bool | None = None, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.objectives = objectives
        self.live = self.stream.isatty() if live is None else live
        self._progress: Any = None
        self._task: Any = None
        self._finished = 0
        self._target = 0

    def __enter__(self) -> SweepDisplay:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.fields[kind]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                console=Console(file=self.stream), transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("", total=None, kind="trials")
            import ddspbench.suite.train

            ddspbench.suite.train.NESTED_PROGRESS = self._progress  # teacher/student training shows as a row below
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            import ddspbench.suite.train

            ddspbench.suite.train.NESTED_PROGRESS = None
            self._progress.__exit__(*exc)
            self._progress = None

    def update(self, finished: int | None, target: int | None, label: str | None) -> None:
        """New totals and/or the candidate now running."""
        if finished is not None:
            self._finished = finished
        if target is not None:
            self._target = target
        if self._progress is not None:
            kwargs: dict[str, Any] = {"completed": self._finished, "total": self._target or None}
            if label is not None:
                kwargs["description"] = label
            self._progress.update(self._task, **kwargs)

    def trial_done(self, record: ResultRecord | Sequence[ResultRecord], seconds: float) -> None:
        """Report one finished trial: its record, or its seeds' records (shown as their means)."""
        records = [record] if isinstance(record, ResultRecord) else list(record)
        self._finished += 1
        line = _trial_line(records, self.objectives) + f" ({seconds:.1f} s)"
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
            self._progress.update(self._task, completed=self._finished)
        else:
            print(f"[{self._finished}/{self._target}] {line}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A line of information (teacher training, resume counts...)."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)


def _trial_line(records: list[ResultRecord], objectives: list[str]) -> str:
    """``t0007 hpn reduced kd_audio: ok mss=4.5, ...``; with several seeds the means and how many were averaged."""
    first = records[0]
    head = f"{first.candidate_id} {first.family} {first.size} {first.method}"
    ok = [r for r in records if r.status == "ok"]
    if not ok:
        return f"{head}: failed: {first.error}" + (f" (all {len(records)} seeds)" if len(records) > 1 else "")
    if len(records) == 1:
        return f"{head}: ok " + ", ".join(f"{o}={_fmt(first.metrics.get(o))}" for o in objectives)
    means = seed_means(ok)
    vals = ", ".join(f"{o}={_fmt(means.get(o))}" for o in objectives)
    failed = [f"{r.candidate_id} failed: {r.error}" for r in records if r.status != "ok"]
    return f"{head}: ok {vals} (mean of {len(ok)} of {len(records)} seeds" + "".join(f"; {f}" for f in failed) + ")"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
