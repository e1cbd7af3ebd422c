"""``ddspbench train``: train one model family/size on a prepared dataset (the reference recipe)."""

from __future__ import annotations

import argparse
from typing import Any

from ddspbench.suite.bounds import BATCH, FRAMES, LR, SEED, STEPS, THREADS

HELP = "train a model family (named size or custom widths) on a prepared dataset"

__all__ = ["HELP", "add_arguments", "run", "build_model", "parse_sets"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", required=True, help="model family (see `ddspbench list families`)")
    p.add_argument("--size", default=None, help="named size (see `ddspbench list sizes`); --set overrides its settings")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="constructor setting, YAML value (e.g. hidden=64, widths='{gru: 32}'); repeatable",
    )
    p.add_argument("--data", required=True, help="prepared dataset directory (`ddspbench data`)")
    p.add_argument("--steps", type=STEPS, required=True, help="total optimizer steps")
    p.add_argument("--out", required=True, help="output directory for last.pt / best.pt")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds initialisation, batch order, crops and noise (default 0)")
    p.add_argument("--batch-size", type=BATCH, default=16, help="clips per step (default 16)")
    p.add_argument("--lr", type=LR, default=1e-3, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--frames", type=FRAMES, default=None, help="crop clips to this many frames (250 per second)")
    p.add_argument("--random-crop", action="store_true", help="crop training clips at random offsets")
    p.add_argument("--valid-every", type=STEPS, default=1000, help="steps between validations (and at the end)")
    p.add_argument("--checkpoint-every", type=STEPS, default=1000, help="steps between writes of last.pt (and at the end)")
    p.add_argument("--decay-every", type=STEPS, default=10_000, help="steps between learning-rate decays (x0.98)")
    p.add_argument("--threads", type=THREADS, default=None, help="torch CPU threads (default: torch's; 1 suits small models)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result (steps, seconds, checkpoints, valid MSS) as JSON")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["hidden=64", "widths={gru: 32}"]`` -> ``{"hidden": 64, "widths": {"gru": 32}}`` (values parsed as YAML)."""
    from ddspbench.suite.commands._options import parse_key_values

    return parse_key_values(items)


def build_model(family: str, size: str | None, sets: dict[str, Any]) -> Any:
    """A fresh model of ``family``: a named size, optionally with settings overridden, or settings alone."""
    from ddspbench.suite.errors import UserError, one_line_message
    from ddspbench.suite.registry import FAMILIES, SIZES
    from ddspbench.suite.train import probe_params

    cls = FAMILIES.get(family)  # unknown -> UserError listing the families
    known_sizes = [n.split("/", 1)[1] for n in SIZES.list(f"{family}/*")]
    if size is not None and f"{family}/{size}" not in SIZES:
        raise UserError(f"unknown size {size!r} for family {family!r}; known: {', '.join(known_sizes) or '(none)'}")
    if size is None and not sets:
        raise UserError(f"give --size ({', '.join(known_sizes) or 'none registered'}) or constructor settings with --set")
    try:
        if size is not None:
            model = SIZES.get(f"{family}/{size}")()
            if not sets:
                return model
            # override the size's own constructor arguments (e.g. hidden), not its resolved config
            specs = {s.name: s for s in getattr(cls, "SIZE_SPECS", ())}
            base = dict(specs[size].kwargs) if size in specs else dict(model.config)
            config = {**base, **sets}
        else:
            config = dict(sets)
        probe_params(cls, config, family)  # refuses settings too big for this machine before allocating them
        model = cls(**config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"cannot build {family} with {sets}: {one_line_message(exc, 200)}") from None
    model.size_name = "custom"
    return model


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import torch

    from ddspbench.suite.commands._options import check_out_dir, print_json
    from ddspbench.suite.data.store import load_meta, load_split
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.train import (
        LAST_CKPT,
        TrainConfig,
        TrainingDiverged,
        check_memory,
        resolve_device,
        train,
    )

    check_out_dir(args.out)
    resolve_device(args.device)
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        valid_every=args.valid_every,
        checkpoint_every=args.checkpoint_every,
        decay_every=args.decay_every,
        frames=args.frames,
        random_crop=args.random_crop,
        threads=args.threads,
    )
    torch.manual_seed(args.seed)  # the initial weights follow --seed too
    model = build_model(args.family, args.size, parse_sets(args.sets))
    n_params = sum(p.numel() for p in model.parameters())
    check_memory(cfg, n_params)  # before the data are read
    meta = load_meta(args.data)
    train_set = load_split(args.data, "train")
    valid_set = load_split(args.data, "valid") if meta.get("splits", {}).get("valid") else None
    out = Path(args.out)
    if args.resume and not (out / LAST_CKPT).is_file():
        raise UserError(f"--resume: no {LAST_CKPT} in {out}")
    if not args.resume and (out / LAST_CKPT).is_file():
        raise UserError(f"{out} already holds a training run ({LAST_CKPT}); pass --resume or choose another --out")
    print(f"training {args.family}/{getattr(model, 'size_name', 'custom')} ({n_params:,} parameters) on {len(train_set)} clips")
    try:
        res = train(model, train_set, valid_set, cfg, out_dir=out, resume=args.resume, progress=not args.no_progress)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json({"family": args.family, "size": getattr(model, "size_name", "custom"), "params": n_params,
                    "steps": res.steps, "start_step": res.start_step, "seconds": res.seconds,
                    "checkpoint": str(res.checkpoint),
                    "best_checkpoint": None if res.best_checkpoint is None else str(res.best_checkpoint),
                    "best_valid_mss": res.best_valid, "last_valid_mss": res.last_valid})
        return 0
    print(f"steps: {res.steps} ({res.steps - res.start_step} in {res.seconds:.1f} s)")
    print(f"checkpoint: {res.checkpoint}")
    if res.best_checkpoint is not None:
        print(f"best checkpoint: {res.best_checkpoint} (valid MSS {res.best_valid:.4f})")
    if res.last_valid is not None:
        print(f"final valid MSS: {res.last_valid:.4f}")
    else:
        print("final valid MSS: n/a (the dataset has no valid split)")
    return 0
