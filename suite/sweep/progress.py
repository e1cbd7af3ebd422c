"""The sweep's progress display: a rich bar (trials done / total, current candidate, ETA) on a terminal,
one plain line per finished trial otherwise."""

from __future__ import annotations

import sys
from typing import IO, Any

from suite.records import ResultRecord

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
            import suite.train

            suite.train.NESTED_PROGRESS = self._progress  # teacher/student training shows as a row below
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            import suite.train

            suite.train.NESTED_PROGRESS = None
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

    def trial_done(self, record: ResultRecord, seconds: float) -> None:
        """Report one finished trial."""
        self._finished += 1
        if record.status == "ok":
            vals = ", ".join(f"{o}={_fmt(record.metrics.get(o))}" for o in self.objectives)
            line = f"{record.candidate_id} {record.family} {record.size} {record.method}: ok {vals} ({seconds:.1f} s)"
        else:
            line = f"{record.candidate_id} {record.family} {record.size} {record.method}: failed: {record.error} ({seconds:.1f} s)"
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


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
