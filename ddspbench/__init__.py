"""ddspbench: the public API in one import name, for notebooks and scripts.

```python
import ddspbench

df = ddspbench.run_sweep(preset="smoke", out="results/smoke")       # runs (or resumes) the study
df = ddspbench.load_results("results/smoke")                          # one row per candidate
df[["uid", "method", "hparams", "mss", "rtf_stream_64", "param_bytes"]]
res = ddspbench.evaluate_checkpoint("results/smoke/candidates/t0001/model.pt",
                                    "results/smoke/cache/data/<dataset>", metrics=["mss", "rtf", "size"])
res.metrics["mss"], res.units["mss"]
```

This module only re-exports and wraps the packages' own functions (``reports``, ``suite``); it imports
nothing heavy until a function is called, so ``import ddspbench`` is fast, and it exports exactly ``__all__``
(the subpackages ``suite``, ``reports``, ``baselines``, ``compressors`` are importable as ``ddspbench.<name>``).
"""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:  # names for annotations only: the module exports exactly __all__
    import os
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any

    import pandas as pd

    from ddspbench.suite.evaluate import EvalResult

__all__ = [
    "__version__",
    "load_results",
    "build_report",
    "print_leaderboard",
    "leaderboard",
    "run_sweep",
    "evaluate_checkpoint",
    "load_checkpoint",
    "load_split",
    "UserError",
]

from ddspbench.suite import __version__
from ddspbench.suite.errors import UserError


def load_results(dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 allow_mixed_hardware: bool = False) -> pd.DataFrame:
    """Results directories -> one DataFrame, one row per candidate (see :func:`reports.load_results`)."""
    from ddspbench.reports import load_results as _load

    return _load(dirs, allow_mixed_hardware=allow_mixed_hardware)


def build_report(results_dirs: Any, out_dir: str | os.PathLike[str], **kwargs: Any) -> dict[str, Path]:
    """Markdown, CSV, JSON and HTML reports of results directories (see :func:`reports.build_report`)."""
    from ddspbench.reports import build_report as _build

    return _build(results_dirs, out_dir, **kwargs)


def print_leaderboard(df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """The leaderboard as a rich table in the terminal (see :func:`reports.print_leaderboard`)."""
    from ddspbench.reports import print_leaderboard as _print

    return _print(df, **kwargs)


def leaderboard(df: pd.DataFrame, metric: str = "mss", columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The ok rows of a results frame ranked by ``metric`` (see :func:`reports.leaderboard`)."""
    from ddspbench.reports import leaderboard as _board

    return _board(df, metric, columns)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """``(model, meta)`` of a ddspbench checkpoint (``weights_only`` loading; see :mod:`suite.checkpoint`)."""
    from ddspbench.suite.checkpoint import load_checkpoint as _load

    return _load(path)


def load_split(data: str | os.PathLike[str], split: str = "test") -> Any:
    """One split of a prepared dataset directory (a :class:`suite.data.store.ClipSet`)."""
    from pathlib import Path

    from ddspbench.suite.data.store import load_split as _load

    return _load(Path(data), split)


def run_sweep(preset: str = "smoke", out: str | os.PathLike[str] | None = None, *,
              config: str | os.PathLike[str] | None = None, report: bool = True,
              families: str | Sequence[str] | None = None, methods: str | Sequence[str] | None = None,
              storage: str | None = None, cache: str | os.PathLike[str] | None = None,
              **overrides: Any) -> pd.DataFrame:
    """Run (or resume) a sweep exactly as ``ddspbench sweep`` does, then return its results frame.

    Args:
        preset: ``smoke``, ``quick`` or ``paper``.
        out: the results directory (default ``results/<study>``).
        config: a sweep YAML file (applied over the preset).
        report: build ``<out>/report`` and print the leaderboard at the end.
        families, methods: the search space's families / methods (``"hpn,ddx7"`` or a list).
        storage: an Optuna storage URL (default: a journal file in ``out``).
        cache: where prepared data and teachers are cached (default ``<out>/cache``).
        **overrides: any key of a sweep file, nested as in YAML, e.g. ``trials=4``,
            ``teacher={"steps": 20}``, ``data={"max_test": 3}``, ``objectives=["mss", "param_bytes"]``.

    Raises:
        UserError: a bad setting (the message the CLI would print after ``error:``).
    """
    from pathlib import Path

    from ddspbench.suite.sweep import orchestrate

    def names(value: str | Sequence[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)

    cfg = orchestrate.resolve_config(preset=preset, config=None if config is None else str(config),
                                     families=names(families), methods=names(methods), tree=overrides)
    results = Path("results") / cfg.study if out is None else Path(out)  # the CLI's default
    session = orchestrate.start_sweep(cfg, results, storage=storage, cache=None if cache is None else str(cache))
    orchestrate.run_sweep(session)
    if report:
        orchestrate.finish_report(results, cfg)
    return load_results(results, allow_mixed_hardware=True)


def evaluate_checkpoint(path: str | os.PathLike[str], data: str | os.PathLike[str], *,
                        metrics: str | Sequence[str] = ("mss", "rtf", "size"), split: str = "test",
                        teacher: str | os.PathLike[str] | None = None, frames: int | None = None,
                        **kwargs: Any) -> EvalResult:
    """Measure one checkpoint on a prepared dataset's split (what ``ddspbench evaluate`` does).

    Args:
        path: a ddspbench checkpoint (``model.pt``).
        data: a prepared dataset directory (``ddspbench data`` or a sweep's ``cache/data/...``).
        metrics: metric names or groups (``mss``, ``fad``, ``rtf``, ``stream``, ``memory``, ``size``...).
        split: which split to measure on.
        teacher: a teacher checkpoint, for ``mss_teacher``.
        frames: crop every clip to its first ``frames`` frames, as a sweep's ``data.frames`` does (the smoke
            preset scores 250), so that the figures match the sweep's records.
        **kwargs: passed to :func:`suite.evaluate.evaluate_model` (``embedding``, ``stream_buffers``,
            ``device``, ``threads``, ``audio_out``, ``seed``...).

    Returns:
        An :class:`suite.evaluate.EvalResult` (``metrics``, ``units``, ``per_clip``, ``intervals``,
        ``metric_defs``, ``artifacts``).
    """
    from ddspbench.suite.evaluate import evaluate_model

    model, _ = load_checkpoint(path)
    teacher_model = load_checkpoint(teacher)[0] if teacher is not None else None
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    clips = load_split(data, split)
    if frames is not None and clips.f0_hz.shape[1] > frames:
        clips = clips.crop(frames)
    return evaluate_model(model, clips, metrics=names, teacher=teacher_model,
                          checkpoint_path=path, **kwargs)
