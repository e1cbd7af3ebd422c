"""``ddspbench export``: write a candidate as a deployable artifact and prove it renders the same audio.

``--format onnx`` (a streaming step for ONNX Runtime: controls + state in, audio + state out, with a
``.json`` interface beside it), ``torchscript`` (a module keeping its state, one ``forward`` per buffer,
as nn~/Neutone-style hosts load) or ``engine`` (the native engine's arrays as ``.npz`` + JSON metadata).
Every export is followed by the parity check (:mod:`suite.metrics.parity`): test clips rendered through
the written file buffer by buffer against the eager model; exit 1 with one line when a tolerance is
missed, else one summary line (``--json``: the measures). ``PATH.parity.json`` keeps the measures.
With ``--results``/``--candidate``, a passed export appends the candidate's record again with
``artifacts["export:<format>"]`` (the last record of an id wins), so the report's ``export`` column links it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ddspbench.suite.bounds import CLIPS, FRAMES, SEED, Bound
from ddspbench.suite.features import CLIP_SAMPLES

HELP = "export a candidate to onnx, torchscript or the native engine file, then check it renders the same audio"

FORMATS = ("onnx", "torchscript", "engine")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--candidate", help="candidate id in --results (its checkpoint is exported)")
    src.add_argument("--model", help="checkpoint file (ddspbench train/compress output)")
    p.add_argument("--results", default=None, help="results directory holding records.jsonl (with --candidate)")
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx, torchscript or engine")
    p.add_argument("--out", required=True, help="artifact file to write")
    p.add_argument("--buffer", type=Bound(int, 64, CLIP_SAMPLES), default=64,
                   help="samples per buffer, a multiple of 64 (default 64); ONNX and TorchScript artifacts are fixed to it")
    p.add_argument("--data", default=None,
                   help="prepared dataset for the parity clips (default: the results' cached dataset, else generated controls)")
    p.add_argument("--clips", type=CLIPS, default=4, help="test clips rendered by the parity check (default 4)")
    p.add_argument("--frames", type=FRAMES, default=250, help="frames of each parity clip (default 250 = 1 s)")
    p.add_argument("--seed", type=SEED, default=0, help="noise seed the artifact starts from (default 0)")
    p.add_argument("--json", action="store_true", help="print the parity measures as JSON")


def _checkpoint(results: str | None, candidate: str) -> tuple[Path, Any]:
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.records import read_records

    if not results:
        raise UserError("--candidate needs --results DIR")
    base = Path(results)
    if not (base / "records.jsonl").is_file():
        raise UserError(f"--results {base}: no records.jsonl")
    found = [r for r in read_records([base / "records.jsonl"]) if r.candidate_id == candidate]
    if not found:
        raise UserError(f"--candidate {candidate!r}: not in {base / 'records.jsonl'}")
    rec = found[-1]
    if rec.status != "ok":
        raise UserError(f"--candidate {candidate!r}: its record failed ({rec.error})")
    ckpt = rec.artifacts.get("checkpoint")
    if not ckpt:
        raise UserError(f"--candidate {candidate!r}: its record has no checkpoint")
    path = Path(ckpt) if Path(ckpt).is_absolute() else base / ckpt
    return path, rec


def _parity_controls(args: argparse.Namespace, record: Any) -> tuple[Any, Any, str]:
    """``(f0, loudness, where from)``: test clips of the dataset, or generated controls."""
    from ddspbench.suite.commands._options import results_dataset
    from ddspbench.suite.data.store import load_split
    from ddspbench.suite.metrics.speed import example_inputs

    data = Path(args.data) if args.data else results_dataset(args.results, getattr(record, "dataset", None))
    if data is not None:
        clips = load_split(data, "test")
        if len(clips):
            clips = clips.subset(slice(0, args.clips))
            if clips.f0_hz.shape[1] > args.frames:
                clips = clips.crop(args.frames)
            import torch

            return (torch.as_tensor(clips.f0_hz, dtype=torch.float32), torch.as_tensor(clips.loudness_db, dtype=torch.float32),
                    f"{len(clips)} test clips of {data.name}")
    f0, loud = example_inputs(args.frames, batch=args.clips, seed=args.seed)
    return f0, loud, f"{args.clips} generated control signals"


def _record_export(results: Path, record: Any, fmt: str, artifact: Path) -> None:
    """Append ``record`` to ``results/records.jsonl`` with ``artifacts["export:<fmt>"]`` (relative to ``results``
    when inside it)."""
    import dataclasses

    from ddspbench.suite.records import append_record

    path = artifact.resolve()
    try:
        path = path.relative_to(results.resolve())
    except ValueError:
        pass
    artifacts = {**record.artifacts, f"export:{fmt}": str(path)}
    append_record(results / "records.jsonl", dataclasses.replace(record, artifacts=artifacts))


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from ddspbench.baselines.deploy import check_parity, export_artifact, open_artifact
    from ddspbench.baselines.stored import storage_of
    from ddspbench.suite.checkpoint import load_checkpoint
    from ddspbench.suite.commands._options import print_json
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.metrics.parity import TOLERANCES, parity_failures, parity_line

    if args.buffer % 64:
        raise UserError(f"--buffer must be a positive multiple of 64 samples, got {args.buffer}")
    fb = args.buffer // 64
    if args.frames < fb:
        raise UserError(f"--frames {args.frames} is shorter than one {args.buffer}-sample buffer")
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the artifact's file name")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    record = None
    if args.candidate:
        ckpt, record = _checkpoint(args.results, args.candidate)
    else:
        ckpt = Path(args.model)
    model, _ = load_checkpoint(ckpt)
    model = model.eval()
    stored = {storage_of(m) for m in model.modules()} - {"float32"}  # int8 / bf16 quantize candidates
    weights = "/".join(sorted(stored)) or "float32"
    export_artifact(model, args.format, fb, out, seed=args.seed)
    runner = open_artifact(out, args.format, fb)
    f0, loud, source = _parity_controls(args, record)
    stats = check_parity(model, runner, f0, loud, seed=args.seed)
    bad = parity_failures(stats)
    what = f"{args.format} {getattr(model, 'family', '?')}/{getattr(model, 'size_name', '?')} {weights} at {args.buffer} samples"
    result = {"ok": not bad, "format": args.format, "artifact": str(out), "checkpoint": str(ckpt), "weights": weights,
              "buffer": args.buffer, "clips": source, "parity": stats, "tolerances": TOLERANCES, "failures": bad}
    Path(str(out) + ".parity.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    if args.json:
        print_json(result)
    if bad:
        print(f"parity FAILED: {what}: {'; '.join(bad)} ({source})", file=sys.stderr)
        return 1
    if record is not None:  # the report's `export` column: the record again, with the artifact (last record wins)
        _record_export(Path(args.results), record, args.format, out)
    if not args.json:
        print(f"parity ok: {what}: {parity_line(stats)} ({source}) -> {out}")
    return 0
