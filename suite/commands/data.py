"""``ddspbench data``: prepare a dataset (4 s clips at 16 kHz with f0 and loudness at 250 frames/s)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from ddspbench.suite.bounds import JOBS, SEED

HELP = "prepare a dataset (synthetic, soundfont, or a folder of recordings) for training and evaluation"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic", help="dataset name (see `ddspbench list datasets`); default synthetic")
    p.add_argument("--path", default=None, help="input folder (datasets made from files, e.g. folder)")
    p.add_argument("--out", required=True, help="output directory of the prepared dataset")
    p.add_argument("--seed", type=SEED, default=0, help="seed of generation and of the train/valid/test split")
    p.add_argument("--cache", default=None, metavar="DIR", help="feature cache (default $DDSPBENCH_CACHE or ~/.cache/ddspbench)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    p.add_argument("--f0", default=None, help="f0 tracker for the folder dataset: pyin (default), yin (fast), crepe (needs torchcrepe)")
    p.add_argument("--jobs", type=JOBS, default=None, help="worker processes for f0 tracking / rendering (default 1)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a dataset option, repeatable (e.g. --set recordings=4 --set timbres=flute-like,brass-like)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr (warnings still shown)")
    p.epilog = (
        "dataset options (--set): synthetic: recordings (per timbre, 10), clips_per_recording (3), timbres "
        "(flute-like,string-like,brass-like). soundfont: recordings (8), clips_per_recording (3), instruments "
        "(violin,flute,trumpet), soundfont (.sf2). folder: min_confidence (tracker default), f0_stride (1), "
        "top_db (40), split (recording|chunk), instrument (name for every file), instruments (keep only these)."
    )


def _parse_sets(items: list[str]) -> dict[str, Any]:
    from ddspbench.suite.commands._options import parse_key_values

    return parse_key_values(items, dashes=True)


class _StderrLog(logging.Handler):
    """The data pipeline's log on stderr: warnings as ``warning: ...``; progress only on a terminal."""

    def __init__(self, level: int = logging.NOTSET, progress: bool = True) -> None:
        super().__init__(level)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        from ddspbench.suite.errors import printable

        message = printable(record.getMessage())  # file names of a folder dataset are the user's data
        if record.levelno >= logging.WARNING:
            print(f"warning: {message}", file=sys.stderr)
        elif self.progress and sys.stderr.isatty():
            print(f"  {message}", file=sys.stderr)


def summarise(out_dir: Any) -> dict[str, Any]:
    """What a prepared dataset holds: clips, seconds, split sizes, instruments, cache use, skipped files."""
    from ddspbench.suite.data import SPLITS, load_meta, load_split

    meta = load_meta(out_dir)
    splits = {s: load_split(out_dir, s) for s in SPLITS if s in meta["splits"]}
    clips = sum(len(c) for c in splits.values())
    samples = sum(int(c.audio.shape[0] * c.audio.shape[1]) for c in splits.values())
    per_inst: dict[str, int] = {}
    for c in splits.values():
        for inst in c.instruments.tolist():
            per_inst[inst] = per_inst.get(inst, 0) + 1
    return {
        "dataset": meta.get("name"),
        "out": str(out_dir),
        "clips": clips,
        "seconds": round(samples / meta["sample_rate"], 2),
        "splits": {s: len(c) for s, c in splits.items()},
        "recordings": {s: len(set(c.recording_ids.tolist())) for s, c in splits.items()},
        "instruments": per_inst,
        "cache": meta.get("cache", {}),
        "skipped": meta.get("skipped", []),
        "f0_source": meta.get("f0_source"),
    }


def run(args: argparse.Namespace) -> int:
    from ddspbench.suite.commands._options import check_out_dir, print_json
    from ddspbench.suite.data import dataset_options, prepare
    from ddspbench.suite.errors import UserError, printable

    check_out_dir(args.out)
    options = _parse_sets(args.set)
    known = dataset_options(args.dataset)
    for flag, key, value in (("--f0", "f0", args.f0), ("--jobs", "jobs", args.jobs)):
        if value is None:
            continue
        if key not in known:
            raise UserError(f"dataset {args.dataset!r} does not take {flag}")
        options[key] = value
    if args.no_cache:
        options["use_cache"] = False
    log = logging.getLogger("ddspbench.data")
    handler = _StderrLog(logging.INFO, progress=not args.no_progress)
    old_level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    log.propagate = False
    t0 = time.perf_counter()
    try:
        out = prepare(args.dataset, args.out, path=args.path, seed=args.seed, cache_dir=args.cache, **options)
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        log.propagate = True
    summary = summarise(out)
    summary["wall_seconds"] = round(time.perf_counter() - t0, 2)
    if args.json:
        print_json(summary, indent=2)
        return 0
    sp, rec = summary["splits"], summary["recordings"]
    print(f"prepared {summary['dataset']} -> {summary['out']} in {summary['wall_seconds']} s")
    print(f"  clips: {summary['clips']} ({summary['seconds']} s of audio, 4 s each, 16 kHz, 250 frames/s)")
    print("  splits: " + ", ".join(f"{s} {sp[s]} clips / {rec[s]} recordings" for s in sp))
    print("  instruments: " + ", ".join(f"{printable(k)} {v}" for k, v in sorted(summary["instruments"].items())))
    if summary["f0_source"]:
        print(f"  f0: {summary['f0_source']}")
    cache = summary["cache"]
    if cache:
        state = "" if cache.get("enabled", True) else " (disabled)"
        print(f"  cache: {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses in {cache.get('dir')}{state}")
    if summary["skipped"]:
        print(f"  skipped {len(summary['skipped'])} file(s):")
        for item in summary["skipped"]:
            print(f"    {printable(item['file'])}: {printable(item['reason'])}")
    return 0
