"""``mss``: multi-scale spectral distance to the target clips, mean over test clips (paired per clip)."""

from __future__ import annotations

from typing import Any

from ddspbench.suite.metrics.declare import Measured, Role, declare_metric

N_BOOT_MSS = 1000


def mss_against(ctx: Any, ref: Any) -> Measured:
    """MSS of the context's audio against ``ref`` per clip, its mean and its bootstrap interval."""
    import numpy as np
    import torch

    from ddspbench.suite.metrics.fad import bootstrap_mean_interval
    from ddspbench.suite.metrics.mss import DEFAULT_SCALES, mss_per_clip, require_mss_length

    pred = ctx.pred()
    require_mss_length(min(ref.shape[-1], pred.shape[-1]))
    vals: list[float] = []
    for i in range(0, pred.shape[0], 16):
        vals += [float(v) for v in mss_per_clip(torch.from_numpy(ref[i : i + 16]), torch.from_numpy(pred[i : i + 16])).tolist()]
    return Measured(float(np.mean(vals)), f"mss/1 scales={','.join(map(str, DEFAULT_SCALES))}", vals,
                    list(bootstrap_mean_interval(vals, n_boot=N_BOOT_MSS, seed=ctx.seed)))


def compute(ctx: Any) -> Measured:
    return mss_against(ctx, ctx.target())


MSS = declare_metric("mss", unit="1", role=Role.QUALITY, paired=True, headline=1, column=1, compute=compute,
                     description="multi-scale spectral distance to the target clips, mean over test clips")
