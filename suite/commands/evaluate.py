"""``ddspbench evaluate --model CKPT --data DIR``: one result row for one checkpoint.

Prints the row as a table (or ``--json``: ``ResultRecord.to_dict()``) and, with ``--out DIR``,
appends it to ``DIR/records.jsonl`` with the rendered examples in ``DIR/candidates/<id>/audio`` and
the matching targets in ``DIR/targets``. A model whose output holds NaN gives a failed row and exit
code 1.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from ddspbench.suite.bounds import CLIPS, FRAMES, SEED, THREADS, Bound, IntList
from ddspbench.suite.features import CLIP_SAMPLES

HELP = "evaluate a checkpoint on a prepared dataset: MSS, FAD, KAD, speed, memory, size -> one result row"

DEFAULT_METRICS = "mss,fad,kad,rtf,stream,memory,size"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint file (ddspbench train/compress output)")
    p.add_argument("--data", required=True, help="prepared dataset directory (ddspbench data)")
    p.add_argument("--split", default="test", help="split to evaluate on (default test)")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"metric names or groups rtf,stream,memory,size (default {DEFAULT_METRICS})")
    p.add_argument("--teacher", default=None, help="teacher checkpoint, for mss_teacher")
    p.add_argument("--embedding", default="logmel", help="FAD embedding back-end (default logmel; aisfx for real data)")
    p.add_argument("--ckpt-dir", default=None, help="weights folder for the pretrained FAD back-ends")
    p.add_argument("--buffers", type=IntList(64, CLIP_SAMPLES, " samples"), default="64,256,512",
                   help="streaming buffer sizes in samples (default 64,256,512)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=THREADS, default=1, help="torch threads while measuring (default 1)")
    p.add_argument("--speed-backend", default="native", choices=["eager", "torchscript", "onnxruntime", "native"],
                   help="inference path the speed metrics time (default native: the compiled engine, CPU; onnxruntime / "
                        "torchscript: what `ddspbench export --format onnx|torchscript` writes, timed in that runtime; "
                        "eager: the PyTorch forward); float32 and int8/bf16-quantized models")
    p.add_argument("--limit", type=CLIPS, default=None, help="evaluate only the first N clips")
    p.add_argument("--frames", type=FRAMES, default=None,
                   help="crop every clip to its first N frames, as a sweep's data.frames does (smoke: 250)")
    p.add_argument("--n-audio", type=Bound(int, 0, 10_000), default=4, help="rendered examples written with --out (default 4)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the models' noise and of the intervals (default 0)")
    p.add_argument("--out", default=None, help="results directory: append to OUT/records.jsonl and write audio examples")
    p.add_argument("--json", action="store_true", help="print the record as JSON")


def _candidate_id(path: Path, meta: dict[str, Any]) -> str:
    """The checkpoint's own candidate id, else ``<stem>-<hash8>``; always a safe single path component."""
    from ddspbench.suite.names import safe_name

    if meta.get("candidate_id"):
        return safe_name(str(meta["candidate_id"]), fallback="candidate")
    h = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return safe_name(f"{path.stem}-{h}", fallback="candidate")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ddspbench.suite.audio_io import write_wav
    from ddspbench.suite.checkpoint import load_checkpoint, meta_recipe
    from ddspbench.suite.commands._options import check_out_dir, print_json
    from ddspbench.suite.data.store import load_meta, load_split
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.evaluate import CandidateFailed, evaluate_model, expand_metrics
    from ddspbench.suite.names import safe_name
    from ddspbench.suite.provenance import provenance
    from ddspbench.suite.records import ResultRecord, append_record
    from ddspbench.suite.train import resolve_device

    check_out_dir(args.out)
    resolve_device(args.device)
    buffers = args.buffers
    names = expand_metrics(args.metrics, buffers)
    ckpt = Path(args.model)
    model, meta = load_checkpoint(ckpt)
    teacher = load_checkpoint(args.teacher)[0] if args.teacher else None
    data_meta = load_meta(args.data)
    clips = load_split(args.data, args.split)
    if args.limit is not None:
        clips = clips.subset(slice(0, args.limit))
    if args.frames is not None and clips.f0_hz.shape[1] > args.frames:
        clips = clips.crop(args.frames)
    if len(clips) == 0:
        raise UserError(f"{args.data}: split {args.split!r} has no clips")
    cid = _candidate_id(ckpt, meta)
    family = str(getattr(model, "family", meta.get("family", "?")))
    size = str(getattr(model, "size_name", "custom"))
    recipe, steps = meta_recipe(meta, family, size)
    identity: dict[str, Any] = dict(
        candidate_id=cid,
        family=family,
        size=size,
        recipe=recipe,
        steps=steps,
        dataset=str(data_meta.get("name", Path(args.data).name)),
        instrument=meta.get("instrument"),
        seed=args.seed,
        study=str(meta.get("study", "")),
        provenance={**provenance(device=args.device, threads=args.threads, seed=args.seed),
                    "speed_backend": args.speed_backend},
    )
    audio_out = None
    if args.out:
        out = Path(args.out)
        audio_out = out / "candidates" / cid / "audio"
        for k in range(min(args.n_audio, len(clips))):
            target = out / "targets" / f"{safe_name(clips.clip_ids[k])}.wav"
            if not target.exists():
                write_wav(target, clips.audio[k])
    try:
        result = evaluate_model(
            model, clips, metrics=names, teacher=teacher, embedding=args.embedding, stream_buffers=buffers,
            device=args.device, threads=args.threads, checkpoint_path=ckpt, audio_out=audio_out,
            n_audio_examples=args.n_audio, seed=args.seed, ckpt_dir=args.ckpt_dir, speed_backend=args.speed_backend,
        )
        fields = dataclasses.asdict(result)
        if args.out:
            fields["artifacts"]["target_audio"] = str(Path(args.out) / "targets")
        record = ResultRecord.with_units(**identity, **fields)
    except CandidateFailed as exc:
        record = ResultRecord.with_units(**identity, status="failed", error=str(exc), artifacts={"checkpoint": str(ckpt)})
    if args.out:
        append_record(Path(args.out) / "records.jsonl", record)
    if args.json:
        print_json(record.to_dict())
    else:
        _print_table(record)
    return 0 if record.status == "ok" else 1


def _print_table(record: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"{record.candidate_id}  {record.family}/{record.size}  {record.method}  [{record.status}]"
    if record.status != "ok":
        console.print(f"{title}: {record.error}")
        return
    table = Table(title=title, title_justify="left")
    for col in ("metric", "value", "unit", "95% interval"):
        table.add_column(col, justify="right" if col in ("value",) else "left")
    for name, value in record.metrics.items():
        iv = record.intervals.get(name)
        table.add_row(
            name,
            "-" if value is None else f"{value:,.6g}",
            record.units.get(name, ""),
            f"[{iv[0]:.4g}, {iv[1]:.4g}]" if iv else "",
        )
    console.print(table)
    defs = sorted({v for k, v in record.metric_defs.items() if k in ("mss", "fad", "kad", "fad_inf")})
    prov = record.provenance
    console.print(f"definitions: {'; '.join(defs)}; threads={prov.get('threads')} torch {prov.get('torch_version')} on {prov.get('cpu_model')}")
