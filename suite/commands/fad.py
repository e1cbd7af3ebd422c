"""``ddspbench fad A B``: Fréchet Audio Distance (and KAD) between two sets of clips.

A and B are folders of audio files (each file one clip; stereo downmixed, resampled to 16 kHz;
``--segment S`` cuts each file into S-second clips) or ``.npy`` files of embeddings (N x D, each row
one clip). B is scored against the reference A. FAD needs at least two clips per set. The default
embedding is ``aisfx`` (pretrained, offline; the meaningful choice for real audio); ``logmel`` is the
fast no-weights one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ddspbench.suite.bounds import SEED, Bound

HELP = "Frechet Audio Distance and Kernel Audio Distance between two folders of audio (or .npy embeddings)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="reference: folder of audio files, or .npy embeddings (N x D)")
    p.add_argument("b", help="evaluated: folder of audio files, or .npy embeddings (N x D)")
    p.add_argument("--embedding", default="aisfx", help="embedding back-end (ddspbench list embeddings); default aisfx, "
                   "the pretrained one; logmel is the fast one without weights")
    p.add_argument("--ckpt-dir", default=None, help="local weights folder for the pretrained back-ends (vggish, pann, ...)")
    p.add_argument("--segment", type=Bound(float, 0.5, 3600.0), default=None, help="cut each audio file into clips of this many seconds")
    p.add_argument("--bootstrap", type=Bound(int, 0, 100_000), default=0, help="bootstrap resamples for 95%% intervals (0: none)")
    p.add_argument("--inf", action="store_true", help="also FAD-infinity (extrapolation over subset sizes)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the bootstrap and FAD-infinity subsets (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _segments(audio: Any, seconds: float | None) -> list[Any]:
    if not seconds:
        return [audio]
    n = int(round(seconds * 16000))
    out = [audio[i : i + n] for i in range(0, audio.size, n)]
    return [c for c in out if c.size >= n // 2]


def load_side(path: str, segment: float | None) -> tuple[list[Any], str]:
    """One side as a list of clips: 16 kHz audio arrays (kind "audio") or embedding rows (kind "npy")."""
    import numpy as np

    from ddspbench.suite.audio_io import list_audio_files, load_audio
    from ddspbench.suite.errors import UserError

    p = Path(path)
    if p.suffix == ".npy" and p.is_file():
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"{p}: not a readable .npy file ({exc})") from None
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
            raise UserError(f"{p}: embeddings must be a numeric N x D array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise UserError(f"{p}: embeddings hold NaN or infinite values")
        return [row[None, :].astype(np.float64) for row in arr], "npy"
    if not p.exists():
        raise UserError(f"not found: {p}")
    if not p.is_dir():
        raise UserError(f"{p}: expected a folder of audio files or a .npy file of embeddings")
    files = list_audio_files(p)
    if not files:
        raise UserError(f"{p}: no audio files (.wav/.flac/.ogg) in this folder")
    return [seg for f in files for seg in _segments(load_audio(f), segment)], "audio"


def run(args: argparse.Namespace) -> int:
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.metrics.compare import MIN_CLIPS, compare_sets
    from ddspbench.suite.metrics.embeddings import embed_clips, get_embedding

    sides = []
    for side, path in (("A", args.a), ("B", args.b)):
        clips, kind = load_side(path, args.segment)
        if len(clips) < MIN_CLIPS:  # checked before any embedding model is loaded
            what = "rows" if kind == "npy" else "clips"
            raise UserError(f"{side} ({path}) has {len(clips)} {what}; FAD needs at least {MIN_CLIPS} per set (a covariance)")
        sides.append((clips, kind))
    embedder = get_embedding(args.embedding, ckpt_dir=args.ckpt_dir) if any(k == "audio" for _, k in sides) else None
    sets = [
        embed_clips(embedder, clips, use_cache=not args.no_cache) if kind == "audio" and embedder is not None else clips
        for clips, kind in sides
    ]
    try:
        out = compare_sets(sets[0], sets[1], bootstrap=args.bootstrap, with_inf=args.inf, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out["embedding"] = embedder.definition if embedder is not None else "npy"
    out["unit"] = "1"
    if args.json:
        from ddspbench.suite.commands._options import print_json

        print_json(out)
        return 0
    line = f"FAD {out['fad']:.4f}  KAD {out['kad']:.4f}"
    if "fad_inf" in out and out["fad_inf"] is not None:
        line += f"  FAD-inf {out['fad_inf']:.4f}"
    elif "fad_inf" in out:
        line += f"  ({out['fad_inf_fit'].get('error', 'FAD-infinity unavailable')})"
    iv = out.get("intervals")
    if iv:
        line += f"  (95% FAD [{iv['fad'][0]:.4f}, {iv['fad'][1]:.4f}], KAD [{iv['kad'][0]:.4f}, {iv['kad'][1]:.4f}])"
    print(f"{line}  [{out['embedding']}; clips {out['n_clips'][0]} vs {out['n_clips'][1]}]")
    return 0
