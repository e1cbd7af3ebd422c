"""``ddspbench compress``: turn a trained teacher checkpoint into a compressed candidate."""

from __future__ import annotations

import argparse
from typing import Any

from ddspbench.suite.bounds import BATCH, FRAMES, LR, SEED, STEPS_OR_NONE

HELP = "compress a teacher checkpoint (scratch, kd_audio, kd_control, kd_feature, prune, quantize or a chain a+b+c)"

__all__ = ["HELP", "add_arguments", "run", "parse_params"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="compressor name or chain, e.g. kd_audio, prune+kd_audio+quantize")
    p.add_argument("--teacher", required=True, help="teacher checkpoint (.pt written by `ddspbench train`)")
    p.add_argument("--data", default=None, help="prepared dataset directory (needed by methods that train)")
    p.add_argument("--out", required=True, help="output directory: model.pt and description.json")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method parameter, YAML value (size=reduced, hidden=64, ratio=0.5, prune.ratio=0.5 in a chain); repeatable",
    )
    p.add_argument("--steps", type=STEPS_OR_NONE, default=200, help="training / fine-tuning steps (default 200)")
    p.add_argument("--batch-size", type=BATCH, default=16, help="clips per training step (default 16)")
    p.add_argument("--lr", type=LR, default=1e-3, help="learning rate of the methods that train (default 1e-3)")
    p.add_argument("--frames", type=FRAMES, default=None, help="crop training clips to this many frames (250 per second)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds training, crops and noise (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the description (before/after sizes, paths) as JSON")


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["size=reduced", "prune.ratio=0.5"]`` -> ``{"size": "reduced", "prune.ratio": 0.5}`` (YAML values)."""
    from ddspbench.suite.commands._options import parse_key_values

    return parse_key_values(items, dotted=True)


def run(args: argparse.Namespace) -> int:
    import json

    from ddspbench.compressors import CompressContext, get_compressor
    from ddspbench.suite.checkpoint import load_checkpoint, save_checkpoint
    from ddspbench.suite.commands._options import check_out_dir, print_json
    from ddspbench.suite.data.store import load_meta, load_split
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.recipe import Recipe, Step
    from ddspbench.suite.records import json_clean
    from ddspbench.suite.train import resolve_device

    out = check_out_dir(args.out)
    assert out is not None
    if (out / "model.pt").exists():
        raise UserError(f"{out} already holds a candidate (model.pt); choose another --out")
    resolve_device(args.device)
    params = parse_params(list(args.sets))
    compressor = get_compressor(args.method)  # unknown names -> UserError listing the known ones
    compressor.resolve_params(params)  # every value against the method's declared bounds, before the teacher is read
    teacher, teacher_meta = load_checkpoint(args.teacher)
    train_set = valid_set = None
    if args.data is not None:
        meta = load_meta(args.data)
        train_set = load_split(args.data, "train")
        valid_set = load_split(args.data, "valid") if meta.get("splits", {}).get("valid") else None
    ctx = CompressContext(
        train_set=train_set,
        valid_set=valid_set,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        frames=args.frames,
        work_dir=out / "work",
        progress=not args.no_progress,
    )
    result = compressor.compress(teacher, ctx, **params)
    description = json_clean({**result.description, "teacher": str(args.teacher), "data": args.data, "seed": args.seed})
    out.mkdir(parents=True, exist_ok=True)
    recipe = Recipe(family=str(getattr(teacher, "family", "?")), size=None,
                    steps=tuple(Step(r.method, r.params) for r in result.steps))
    save_checkpoint(result.model, out / "model.pt",
                    {"compress": description, "recipe": recipe.to_dict(), "steps": [r.to_dict() for r in result.steps],
                     "method": recipe.method, "method_params": recipe.method_params})
    (out / "description.json").write_text(json.dumps(description, indent=2, sort_keys=True))
    if args.json:
        print_json({**description, "checkpoint": str(out / "model.pt"), "description_file": str(out / "description.json")})
        return 0
    b, a = description["before"], description["after"]
    print(f"{args.method}: params {b['params']:,} -> {a['params']:,}   bytes {b.get('bytes', 0):,} -> {a.get('bytes', 0):,}")
    rtf = description.get("rtf") or {}
    if rtf:
        how = f", {rtf['backend']} backend, {rtf['buffer']}" + ("-sample buffers" if rtf.get("buffer") != "offline" else "") \
            if "backend" in rtf else ""
        print(f"RTF (1 thread, {rtf['frames']} frames{how}): {rtf['before']:.4f} -> {rtf['after']:.4f}")
    print(f"wrote {out / 'model.pt'} and {out / 'description.json'}")
    return 0
