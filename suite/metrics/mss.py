"""Multi-scale spectral distance (MSS), exactly as REFERENCE §5 defines it.

For each scale ``s`` in ``scales`` (default 2048, 1024, 512, 256, 128, 64)::

    S = |STFT(x; n_fft = win = s, hop = s / 4, Hann, centred, normalized=True)|
    loss += mean|S_a - S_b| + mean|log(S_a + eps) - log(S_b + eps)|      (eps = 1e-7)

summed over the scales. ``MSSLoss`` is the training loss (mean over the batch);
:func:`mss_per_clip` gives one value per clip (the mean over a clip's own bins), so the mean of
``mss_per_clip`` over equal-length clips equals the batch loss.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["DEFAULT_SCALES", "MSSLoss", "TargetCache", "mss", "mss_per_clip", "TARGET_CACHE_BYTES"]

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


class _RFFTOrtho(torch.autograd.Function):
    """``torch.fft.rfft(x, norm="ortho")`` over the last axis with the adjoint as one inverse real FFT: torch's own
    backward of a real-to-complex FFT is a complex FFT of the full length, twice the work. For a real ``x`` of
    length ``n``, ``dL/dx = irfft(G', n, "ortho")`` with ``G'`` the incoming gradient with its bins ``1 .. (n-1)//2``
    halved (``irfft`` counts each of those twice, and ignores the imaginary parts of bins 0 and n/2 as the adjoint
    does)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.n = x.shape[-1]
        return torch.fft.rfft(x, norm="ortho")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n = ctx.n
        g = grad.clone()
        g[..., 1: (n + 1) // 2] *= 0.5
        return torch.fft.irfft(g, n=n, norm="ortho")


def _stft_train(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """:func:`torch.stft` as :func:`_spec` calls it (centred by reflection, Hann, hop n/4, normalized, onesided) for a
    ``(B, N)`` signal that needs a gradient: the same values bit for bit (frames x window, then the same real FFT) and
    the same layout, with :class:`_RFFTOrtho`'s cheaper backward."""
    padded = torch.nn.functional.pad(x[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]
    frames = padded.unfold(-1, n_fft, n_fft // 4) * _window(n_fft, x.device, x.dtype)
    return _RFFTOrtho.apply(frames).transpose(-1, -2)  # type: ignore[no-any-return]


def _spec(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    if KERNELS and x.dim() == 2 and x.requires_grad and torch.is_grad_enabled() and x.device.type == "cpu":
        return _stft_train(x, n_fft)
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


TARGET_CACHE_BYTES = 512 * 2**20
"""Default bound of a :class:`TargetCache` (about 1.5 MB per 1 s clip for the six default scales)."""


class TargetCache:
    """Per-clip magnitude and log-magnitude spectra of training targets, keyed by the clip's exact samples and the
    scale: a run whose crops repeat (``random_crop`` off, or whole clips) computes each target's STFTs once instead
    of every step. A hit returns exactly what the computation would (the key is a digest of the float32 bytes);
    least recently used entries go beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = TARGET_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int, bytes], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    @staticmethod
    def digests(target: torch.Tensor) -> list[bytes]:
        """One digest per clip of ``target`` ``(B, N)``: its shape, dtype and samples."""
        rows = target.detach().contiguous().numpy()
        return [hashlib.blake2b(r.tobytes(), digest_size=16, person=f"{r.size}{r.dtype}"[:16].encode()).digest()
                for r in rows]

    def stats(self, target: torch.Tensor, scale: int, digests: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Magnitude and log-magnitude ``(B, R, C)`` of ``target``'s spectra at ``scale`` (the kernels' layout)."""
        from ddspbench.suite.metrics import _mss_kernels as kern

        keys = [(scale, d) for d in digests]
        missing = [i for i, k in enumerate(keys) if k not in self._entries]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            with torch.no_grad():
                mag, logm = kern.target_stats(_spec(target.detach()[missing], scale))
            for j, i in enumerate(missing):
                if keys[i] not in self._entries:
                    entry = (mag[j].copy(), logm[j].copy())
                    self._entries[keys[i]] = entry
                    self.bytes += entry[0].nbytes + entry[1].nbytes
        for k in keys:
            self._entries.move_to_end(k)
        out = ([self._entries[k][0] for k in keys], [self._entries[k][1] for k in keys])
        while self.bytes > self.max_bytes and len(self._entries) > len(keys):
            _, (m, lg) = self._entries.popitem(last=False)
            self.bytes -= m.nbytes + lg.nbytes
        return np.stack(out[0]), np.stack(out[1])


class MSSLoss(nn.Module):
    """Multi-scale spectral distance as a training loss (see module docstring).

    Args:
        scales: STFT sizes; hop is a quarter of each.
        cache_targets: keep the targets' spectra (:class:`TargetCache`) for the training kernel path: the same values
            when a target recurs (a clip cropped the same way), its STFTs skipped. Pass the target first.
    """

    def __init__(self, scales: tuple[int, ...] = DEFAULT_SCALES, cache_targets: bool = False) -> None:
        super().__init__()
        self.scales = tuple(int(s) for s in scales)
        self.cache = TargetCache() if cache_targets else None

    def forward(self, target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        return self.terms(pred, [(target, True)])[0]

    def terms(self, pred: torch.Tensor, targets: Sequence[tuple[torch.Tensor, bool]]) -> list[torch.Tensor]:
        """``[MSS(target_i, pred)]`` (batch means) for several targets of one prediction: on the training kernel path
        the prediction's STFT (and its backward) is done once per scale for all of them, and a target marked
        cacheable (``(target, True)``) comes from :attr:`cache` when it has one. Otherwise :func:`mss` per target."""
        if not (KERNELS and targets and all(_kernel_pair(t, pred) for t, _ in targets)):
            return [mss(t, pred, self.scales) for t, _ in targets]
        from ddspbench.suite.metrics import _mss_kernels as kern

        squeeze = pred.dim() == 1
        if squeeze:
            pred, targets = pred[None], [(t[None], c) for t, c in targets]
        digests: list[Any] = [TargetCache.digests(t) if (c and self.cache is not None) else None for t, c in targets]
        totals = [torch.zeros(pred.shape[0], dtype=pred.dtype) for _ in targets]
        for s in self.scales:
            ps = _spec(pred, s)
            for i, (t, _) in enumerate(targets):
                if digests[i] is not None and self.cache is not None:
                    stats = self.cache.stats(t, s, digests[i])
                else:
                    with torch.no_grad():
                        stats = kern.target_stats(_spec(t.detach(), s))
                totals[i] = totals[i] + kern.spectral_distance_stats(stats, ps)
        return [tot.mean() for tot in totals]


def _kernel_pair(target: torch.Tensor, pred: torch.Tensor) -> bool:
    """The training kernel serves ``MSS(target, pred)``: equal shapes, and :func:`_mss_kernels.use_kernel`."""
    if target.shape != pred.shape or not (torch.is_grad_enabled() and pred.requires_grad):
        return False
    from ddspbench.suite.metrics import _mss_kernels as kern

    return kern.use_kernel(target, pred)
