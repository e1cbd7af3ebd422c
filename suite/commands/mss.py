"""``ddspbench mss A.wav B.wav``: multi-scale spectral distance between two audio files.

Both files are loaded as mono 16 kHz (stereo downmixed, other rates resampled). Length policy:
when the two differ in length, both are truncated to the shorter one and the JSON says so
(``length_policy``, ``samples``); if they differ by more than 10 % of the longer one, that is an
error (they are probably not the same passage).
"""

from __future__ import annotations

import argparse
from typing import Any

from ddspbench.suite.bounds import IntList

HELP = "multi-scale spectral distance (MSS: mean L1 of linear and log magnitude spectra over FFT sizes) between two audio files"

MAX_LENGTH_MISMATCH = 0.10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="first audio file (wav/flac/ogg)")
    p.add_argument("b", help="second audio file")
    p.add_argument("--scales", type=IntList(4, 65536), default=None, help="comma-separated FFT sizes (default 2048,1024,512,256,128,64)")
    p.add_argument("--json", action="store_true", help="print JSON")


def compute(a_path: str, b_path: str, scales: tuple[int, ...]) -> dict[str, Any]:
    """The MSS between two files and how lengths were reconciled."""
    import torch

    from ddspbench.suite.audio_io import load_audio
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.metrics.mss import mss, require_mss_length

    a, b = load_audio(a_path), load_audio(b_path)
    n = min(a.size, b.size)
    longer = max(a.size, b.size)
    if longer - n > MAX_LENGTH_MISMATCH * longer:
        raise UserError(
            f"lengths differ by more than {MAX_LENGTH_MISMATCH:.0%}: {a.size} vs {b.size} samples at 16 kHz"
        )
    require_mss_length(n, scales)
    policy = "equal" if a.size == b.size else f"truncated to the shorter ({n} of {longer} samples)"
    value = float(mss(torch.from_numpy(a[:n]), torch.from_numpy(b[:n]), scales))  # float32, as in evaluate
    return {"mss": value, "unit": "1", "scales": list(scales), "length_policy": policy, "samples": n, "sample_rate": 16000}


def run(args: argparse.Namespace) -> int:
    from ddspbench.suite.metrics.mss import DEFAULT_SCALES

    out = compute(args.a, args.b, args.scales or DEFAULT_SCALES)
    if args.json:
        from ddspbench.suite.commands._options import print_json

        print_json(out)
    else:
        print(f"MSS {out['mss']:.4f}  (scales {','.join(map(str, out['scales']))}; {out['length_policy']})")
    return 0
