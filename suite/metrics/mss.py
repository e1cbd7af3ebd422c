"""Multi-scale spectral distance (MSS), exactly as REFERENCE §5 defines it.

For each scale ``s`` in ``scales`` (default 2048, 1024, 512, 256, 128, 64)::

    S = |STFT(x; n_fft = win = s, hop = s / 4, Hann, centred, normalized=True)|
    loss += mean|S_a - S_b| + mean|log(S_a + eps) - log(S_b + eps)|      (eps = 1e-7)

summed over the scales. ``MSSLoss`` is the training loss (mean over the batch);
:func:`mss_per_clip` gives one value per clip (the mean over a clip's own bins), so the mean of
``mss_per_clip`` over equal-length clips equals the batch loss.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DEFAULT_SCALES", "MSSLoss", "mss", "mss_per_clip"]

DEFAULT_SCALES: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)
EPS = 1e-7

KERNELS = True
"""Whether training (a gradient for one CPU float32 signal) may use the fused kernel of
:mod:`suite.metrics._mss_kernels` (same values and gradients to float32 rounding); ``False`` keeps
the plain tensor maths everywhere (``benchmarks/bench_train.py`` times both)."""

_windows: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}


def _window(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (n, device, dtype)
    w = _windows.get(key)
    if w is None:
        w = torch.hann_window(n, device=device, dtype=dtype)
        _windows[key] = w
    return w


def _spec(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    return torch.stft(
        x,
        n_fft=n_fft,
        hop_length=n_fft // 4,
        win_length=n_fft,
        window=_window(n_fft, x.device, x.dtype),
        center=True,
        normalized=True,
        return_complex=True,
    )


def _mag(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    return _spec(x, n_fft).abs()


def require_mss_length(n: int, scales: tuple[int, ...] = DEFAULT_SCALES) -> None:
    """A one-line :class:`UserError` when ``n`` samples are too few for the largest MSS window (its
    reflect padding needs more than half a window), instead of torch's padding error."""
    from ddspbench.suite.errors import UserError

    if n <= max(scales) // 2:
        raise UserError(f"audio too short for MSS scale {max(scales)}: {n} samples at 16 kHz (needs > {max(scales) // 2})")


def mss_per_clip(a: torch.Tensor, b: torch.Tensor, scales: tuple[int, ...] = DEFAULT_SCALES) -> torch.Tensor:
    """MSS of each pair of clips: ``a`` and ``b`` are (B, N) or (N,); returns (B,) (or a scalar)."""
    if a.shape != b.shape:
        raise ValueError(f"MSS needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    squeeze = a.dim() == 1
    if squeeze:
        a, b = a[None], b[None]
    total = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
    if KERNELS and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):  # numba only loads for training
        from ddspbench.suite.metrics import _mss_kernels as kern

        if kern.use_kernel(b, a):  # the metric is symmetric: put the differentiable signal second
            a, b = b, a
        if kern.use_kernel(a, b):
            for s in scales:
                with torch.no_grad():
                    sa = _spec(a, s)
                total = total + kern.spectral_distance(sa, _spec(b, s))
            return total[0] if squeeze else total
    for s in scales:
        sa, sb = _mag(a, s), _mag(b, s)
        lin = (sa - sb).abs().mean(dim=(-2, -1))
        log = (torch.log(sa + EPS) - torch.log(sb + EPS)).abs().mean(dim=(-2, -1))
        total = total + lin + log
    return total[0] if squeeze else total


def mss(a: torch.Tensor, b: torch.Tensor, scales: tuple[int, ...] = DEFAULT_SCALES) -> torch.Tensor:
    """Batch MSS (a scalar): the mean of :func:`mss_per_clip`."""
    return mss_per_clip(a, b, scales).mean()


class MSSLoss(nn.Module):
    """Multi-scale spectral distance as a training loss (see module docstring).

    Args:
        scales: STFT sizes; hop is a quarter of each.
    """

    def __init__(self, scales: tuple[int, ...] = DEFAULT_SCALES) -> None:
        super().__init__()
        self.scales = tuple(int(s) for s in scales)

    def forward(self, target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        return mss(target, pred, self.scales)
