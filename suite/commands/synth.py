"""``ddspbench synth``: render a dataset split's clips with a trained checkpoint to 16 kHz wav files."""

from __future__ import annotations

import argparse

from ddspbench.suite.bounds import BATCH, CLIPS, SEED
from ddspbench.suite.names import safe_name

HELP = "render a split's clips with a checkpoint to <clip_id>.wav files (16 kHz)"

__all__ = ["HELP", "add_arguments", "run", "safe_name"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint (.pt) written by `ddspbench train`")
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--out", required=True, help="directory for the wav files")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"), help="split to render (default test)")
    p.add_argument("--limit", type=CLIPS, default=None, help="only the first N clips")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=BATCH, default=8, help="clips rendered at once (default 8)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the models' noise")
    p.add_argument("--subtype", default="PCM_16", choices=("PCM_16", "PCM_24", "FLOAT"), help="wav sample format")
    p.add_argument("--json", action="store_true", help="print the written files as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import soundfile as sf
    import torch

    from ddspbench.suite.checkpoint import load_checkpoint
    from ddspbench.suite.commands._options import check_out_dir, print_json
    from ddspbench.suite.data.store import load_split
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.evaluate import batch_seeds
    from ddspbench.suite.features import SAMPLE_RATE
    from ddspbench.suite.train import batch_to_tensors, derive_seed, forward_batch, resolve_device

    check_out_dir(args.out)
    device = resolve_device(args.device)
    clips = load_split(args.data, args.split)
    model, _ = load_checkpoint(args.model, map_location=device)
    model.to(device)
    if args.limit is not None:
        clips = clips.subset(slice(0, args.limit))
    if len(clips) == 0:
        raise UserError(f"{args.data}: split {args.split!r} has no clips")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    with torch.no_grad():
        for i, b in enumerate(clips.batches(args.batch_size)):
            t = batch_to_tensors(b, device)
            seeds = batch_seeds(model, derive_seed(args.seed, 0, salt=6), i, args.batch_size, len(t["f0_hz"]))
            audio = forward_batch(model, t, seeds)["audio"].float().cpu().numpy()
            if not np.isfinite(audio).all():
                raise UserError(f"{args.model}: the model's output holds NaN/inf")
            ids = clips.clip_ids[i * args.batch_size : i * args.batch_size + len(audio)]
            for cid, wav in zip(ids, audio):
                path = out / f"{safe_name(cid)}.wav"
                sf.write(path, np.clip(wav, -1.0, 1.0), SAMPLE_RATE, subtype=args.subtype)
                written.append(str(path))
    if args.json:
        print_json({"out": str(out), "files": written, "sample_rate": SAMPLE_RATE, "split": args.split,
                    "model": str(args.model)})
    else:
        print(f"wrote {len(written)} wav files to {out}")
    return 0
