"""``ddspbench bench --results DIR --out DIR2``: re-time every ok candidate of a study on this machine.

Each ok record of ``DIR/records.jsonl`` (the last per candidate) is copied to ``DIR2/records.jsonl`` with
its speed metrics (``rtf_offline`` and the per-buffer streaming figures) measured again here, through
``--speed-backend`` (default ``native``), and every other metric (quality, size, memory) kept from the
original. The copy's provenance is this machine's, with ``system`` (:func:`suite.provenance.system_description`:
CPU model, board, cores, governor, runtime versions), ``speed_backend`` and ``retimed_from`` (DIR).
Artifact paths point back into DIR, so ``ddspbench report --results DIR2`` works. A candidate the
backend cannot run becomes a failed record with the one-line reason.
"""

from __future__ import annotations

import argparse
from typing import Any

from ddspbench.suite.bounds import FRAMES, THREADS, IntList
from ddspbench.suite.features import CLIP_SAMPLES

HELP = "re-time every ok candidate of a results directory on this machine, with a system description"

SPEED_PREFIXES = ("rtf_", "p99_ms_stream_", "miss_rate_stream_")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", required=True, help="results directory holding records.jsonl (a sweep's --out)")
    p.add_argument("--out", required=True, help="results directory to write the re-timed records to")
    p.add_argument("--speed-backend", default="native", choices=["native", "onnxruntime", "torchscript", "eager"],
                   help="runtime to time (default native); one per --out, so a report compares like with like")
    p.add_argument("--buffers", type=IntList(64, CLIP_SAMPLES, " samples"), default="64,256,1024", help="streaming buffer sizes in samples (default 64,256,1024)")
    p.add_argument("--offline", action="store_true", help="also time whole-clip rendering (rtf_offline)")
    p.add_argument("--data", default=None,
                   help="prepared dataset whose first test clip drives the timing (default: the results' cached one, "
                        "else generated controls)")
    p.add_argument("--frames", type=FRAMES, default=250, help="frames of the timing clip (default 250 = 1 s)")
    p.add_argument("--threads", type=THREADS, default=1, help="threads while timing (default 1)")
    p.add_argument("--json", action="store_true", help="print the written records as JSON")


def _timing_clips(data: Any, frames: int) -> Any:
    """A one-clip :class:`ClipSet` (its first test clip, or generated controls) cut to ``frames``."""
    import numpy as np

    from ddspbench.suite.data.store import ClipSet, load_split
    from ddspbench.suite.metrics.speed import example_inputs

    if data is not None:
        clips = load_split(data, "test")
        if len(clips):
            clips = clips.subset(slice(0, 1))
            return clips.crop(frames) if clips.f0_hz.shape[1] > frames else clips
    f0, loud = example_inputs(frames)
    one = np.array(["generated"])
    return ClipSet(audio=np.zeros((1, frames * 64), np.float32), f0_hz=f0.numpy(), loudness_db=loud.numpy(),
                   clip_ids=one, recording_ids=one, instruments=one)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from ddspbench.suite.checkpoint import load_checkpoint
    from ddspbench.suite.commands._options import (
        check_out_dir,
        print_json,
        results_dataset,
    )
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.evaluate import CandidateFailed, evaluate_model, expand_metrics
    from ddspbench.suite.provenance import provenance, system_description
    from ddspbench.suite.records import append_record, read_records

    check_out_dir(args.out)
    out = Path(args.out)
    buffers = tuple(args.buffers)
    src = Path(args.results)
    if not (src / "records.jsonl").is_file():
        raise UserError(f"--results {src}: no records.jsonl")
    if out.resolve() == src.resolve():
        raise UserError("--out must differ from --results (the re-timed records are a separate results directory)")
    latest: dict[str, Any] = {}
    for rec in read_records([src / "records.jsonl"]):
        latest.pop(rec.candidate_id, None)
        latest[rec.candidate_id] = rec
    todo = [r for r in latest.values() if r.status == "ok" and r.artifacts.get("checkpoint")]
    if not todo:
        raise UserError(f"--results {src}: no ok candidate with a checkpoint")
    names = expand_metrics(("rtf," if args.offline else "") + "stream", buffers)
    system = system_description()
    data = Path(args.data) if args.data else results_dataset(src, todo[0].dataset)
    clips = _timing_clips(data, args.frames)
    out.mkdir(parents=True, exist_ok=True)

    def absolute(path: str) -> str:
        return path if Path(path).is_absolute() else str((src / path).resolve())

    written = []
    for rec in todo:
        kept = {k: v for k, v in rec.metrics.items() if not k.startswith(SPEED_PREFIXES)}
        fields: dict[str, Any] = {name: {k: v for k, v in getattr(rec, name).items() if k in kept}
                                  for name in ("units", "per_clip", "intervals", "metric_defs")}
        artifacts = {k: absolute(v) for k, v in rec.artifacts.items()}
        prov = {**rec.provenance, **provenance(threads=args.threads, seed=rec.seed), "system": system,
                "speed_backend": args.speed_backend, "retimed_from": str(src.resolve())}
        try:
            model, _ = load_checkpoint(artifacts["checkpoint"])
            res = evaluate_model(model, clips, metrics=names, stream_buffers=buffers, threads=args.threads,
                                 seed=rec.seed, speed_backend=args.speed_backend)
            new = dataclasses.replace(
                rec, metrics={**kept, **res.metrics}, units={**fields["units"], **res.units},
                per_clip=fields["per_clip"], intervals=fields["intervals"],
                metric_defs={**fields["metric_defs"], **res.metric_defs}, artifacts=artifacts, provenance=prov)
        except (UserError, CandidateFailed) as exc:
            new = dataclasses.replace(rec, status="failed", error=f"bench ({args.speed_backend}): {exc}",
                                      metrics={}, units={}, per_clip={}, intervals={}, metric_defs={},
                                      artifacts=artifacts, provenance=prov)
        append_record(out / "records.jsonl", new)
        written.append(new)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in new.metrics.items() if k.startswith("rtf_") and v is not None)
        if not args.json:
            print(f"{new.candidate_id} {new.family}/{new.size} {new.method}: {new.status} {shown or new.error}")
    if args.json:
        print_json({"out": str(out), "system": system, "records": [r.to_dict() for r in written]})
    else:
        board = system["board"] or system["cpu_model"]
        print(f"re-timed {len(written)} candidates on {board} ({system['cores']} cores, governor "
              f"{system['governor'] or 'unknown'}) with {args.speed_backend}: {out / 'records.jsonl'}")
    return 0 if all(r.status == "ok" for r in written) else 1
