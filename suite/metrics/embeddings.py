"""FAD embedding back-ends and the on-disk embedding cache.

An :class:`Embedding` turns one mono 16 kHz clip into a matrix of embedding frames (n, dim).
Back-ends are registered in :data:`suite.registry.EMBEDDINGS` as factories
``factory(ckpt_dir=None, device="cpu") -> Embedding``, with ``sample_rate``, ``dim`` and ``version``
in the entry's metadata; ``metric_defs`` carry ``"<name>/<version>"`` so rows measured with
different embeddings are never compared.

Built in here:

- ``logmel``: no weights, deterministic, fast (the smoke default). Per 1 s window (hop 0.5 s) of
  the 16 kHz clip: mean and standard deviation of 64 log-mel bands (1024-point FFT, hop 256), plus
  mean and std of log RMS and of the spectral centroid (in kHz): 132 dimensions.
- ``aisfx``: the pretrained sound-effects CNN whose weights ship inside the ``aisfx`` 0.1.2 wheel
  (REFERENCE §6): 512 dimensions per ~2.3 s block (100 spectrogram frames, hop 50) at 44.1 kHz,
  the clip resampled from 16 kHz and peak-normalised, the package's librosa mel front end.
  The default for real data.

The ``frechet_audio_distance`` back-ends (``vggish``, ``pann``, ``encodec``, ``clap``) are in
:mod:`suite.metrics.pretrained`.

Embeddings are cached under ``$DDSPBENCH_CACHE`` (default ``~/.cache/ddspbench``) in
``embeddings/<name>-<version>/<sha256 of the 16 kHz float32 samples>.npy``.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ddspbench.suite.features import SAMPLE_RATE
from ddspbench.suite.registry import EMBEDDINGS

__all__ = [
    "Embedding",
    "LogMelEmbedding",
    "AisfxEmbedding",
    "cache_dir",
    "mel_filterbank",
    "get_embedding",
    "embedding_def",
    "embed_clips",
]


def cache_dir() -> Path:
    """The ddspbench cache directory: ``$DDSPBENCH_CACHE`` or ``~/.cache/ddspbench``."""
    env = os.environ.get("DDSPBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ddspbench"


class Embedding(abc.ABC):
    """One clip (mono float32 at 16 kHz) -> embedding frames (n, dim)."""

    name: ClassVar[str]
    sample_rate: ClassVar[int]
    dim: ClassVar[int]
    version: ClassVar[str]

    @abc.abstractmethod
    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Embedding frames (n >= 1, dim) of one 16 kHz mono clip."""

    @property
    def definition(self) -> str:
        """``"<name>/<version>"``, what ``metric_defs`` records."""
        return f"{self.name}/{self.version}"


_instances: dict[tuple[str, str | None, str], Embedding] = {}


def get_embedding(name: str, *, ckpt_dir: str | os.PathLike[str] | None = None, device: str = "cpu") -> Embedding:
    """The registered embedding back-end ``name`` (unknown names list the known ones).

    Built once per (name, checkpoint dir, device) and kept for the process: a sweep evaluates many
    candidates and the pretrained back-ends take seconds to load. Embeddings hold no per-call state.
    """
    key = (name, None if ckpt_dir is None else str(ckpt_dir), device)
    emb = _instances.get(key)
    if emb is None:
        emb = EMBEDDINGS.get(name)(ckpt_dir=ckpt_dir, device=device)
        _instances[key] = emb
    return emb


def embedding_def(name: str) -> str:
    """``"<name>/<version>"`` of a registered back-end, without building it."""
    entry = EMBEDDINGS.entry(name)
    return f"{name}/{entry.meta.get('version', '?')}"


def _clip_key(emb: Embedding, audio: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{emb.name}/{emb.version}/{audio.shape[-1]}/".encode())
    h.update(np.ascontiguousarray(audio, dtype="<f4").tobytes())
    return h.hexdigest()


def embed_clips(emb: Embedding, clips: Sequence[np.ndarray], *, use_cache: bool = True) -> list[np.ndarray]:
    """Embed each clip (cached on disk by back-end, version and audio hash); one (n_i, dim) array per clip."""
    folder = cache_dir() / "embeddings" / f"{emb.name}-{emb.version}"
    out: list[np.ndarray] = []
    for clip in clips:
        audio = np.asarray(clip, dtype=np.float32)
        path = folder / f"{_clip_key(emb, audio)}.npy" if use_cache else None
        if path is not None and path.is_file():
            try:
                out.append(np.load(path, allow_pickle=False))
                continue
            except (OSError, ValueError):
                pass  # a damaged cache file: recompute and overwrite it
        e = np.asarray(emb.embed(audio), dtype=np.float32)
        if e.ndim != 2 or e.shape[1] != emb.dim or e.shape[0] < 1:
            raise RuntimeError(f"embedding {emb.name} returned shape {e.shape}, expected (n, {emb.dim})")
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
                np.save(tmp, e)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only cache is not an error
        out.append(e)
    return out


def _frames(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    """Frames (count, n) of ``x`` with hop ``hop``; zero-pads so at least one frame exists."""
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    count = 1 + (x.size - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(count)[:, None]
    return x[idx]


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular filters (n_mels, n_fft // 2 + 1) evenly spaced on the HTK mel scale, each of unit area."""
    fmax = sr / 2.0 if fmax is None else fmax

    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(np.array(fmin)), to_mel(np.array(fmax)), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    return fb * (2.0 / (hi - lo))  # unit area per filter (Slaney-style normalisation)


class LogMelEmbedding(Embedding):
    """Log-mel statistics per 1 s window: no weights, deterministic (see module docstring)."""

    name = "logmel"
    sample_rate = SAMPLE_RATE
    dim = 132
    version = "1"
    n_fft = 1024
    hop = 256
    n_mels = 64
    window_s = 1.0
    window_hop_s = 0.5

    def __init__(self) -> None:
        self._mel = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels)
        self._hann = np.hanning(self.n_fft + 1)[:-1]
        self._freqs_khz = np.fft.rfftfreq(self.n_fft, 1.0 / self.sample_rate) / 1000.0

    def embed(self, audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio, dtype=np.float64)
        frames = _frames(np.pad(x, (self.n_fft // 2, self.n_fft // 2)), self.n_fft, self.hop) * self._hann
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (T, F)
        logmel = np.log(power @ self._mel.T + 1e-10)  # (T, 64)
        log_rms = 0.5 * np.log(np.mean(frames**2, axis=1) + 1e-10)
        centroid = (power @ self._freqs_khz) / (power.sum(axis=1) + 1e-10)
        per_frame = np.concatenate([logmel, log_rms[:, None], centroid[:, None]], axis=1)  # (T, 66)
        win = max(1, int(round(self.window_s * self.sample_rate / self.hop)))
        whop = max(1, int(round(self.window_hop_s * self.sample_rate / self.hop)))
        starts = range(0, max(1, per_frame.shape[0] - win + 1), whop)
        rows = []
        for s in starts:
            block = per_frame[s : s + win]
            rows.append(np.concatenate([block.mean(0)[:64], block.std(0)[:64], block.mean(0)[64:], block.std(0)[64:]]))
        return np.asarray(rows, dtype=np.float32)


class AisfxEmbedding(Embedding):
    """aisfx 0.1.2 pretrained CNN embedding, 512-d per ~2.3 s at 44.1 kHz (see module docstring)."""

    name = "aisfx"
    sample_rate = 44_100
    dim = 512
    version = "0.1.2-librosa-1"

    def __init__(self, device: str = "cpu") -> None:
        try:
            import aisfx.inference as inf
            import aisfx.preprocessing as pre
            from aisfx.models.cnn2d import CrossNet, EmbeddingNet
        except ImportError:
            from ddspbench.suite.errors import UserError

            raise UserError(
                "embedding 'aisfx' needs the aisfx package: pip install --no-deps aisfx==0.1.2"
            ) from None
        import torch

        self._inf, self._pre, self._device = inf, pre, device
        # NOTE(metrics): weights_only=False is needed because this pickle holds numpy scalars.
        # It is acceptable ONLY because the file ships inside the installed aisfx wheel (a package we
        # depend on, not user input); never load a user-supplied file this way.
        weights, ds_dict = torch.load(inf.get_path_modelWeights(), map_location="cpu", weights_only=False)
        model = CrossNet(EmbeddingNet("max", 3, 1, 64), ds_dict, "cpu")
        model.load_state_dict(weights)
        self._net = model.embedding_net.to(device).eval()

    def spectrogram(self, audio: np.ndarray) -> np.ndarray:
        """The package's librosa mel front end on a 16 kHz clip: (frames, 96), normalised as the package does."""
        import librosa

        from ddspbench.suite.audio_io import resample

        y = resample(np.asarray(audio, dtype=np.float32), SAMPLE_RATE, self.sample_rate).astype(np.float64)
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        y = y / (peak if peak > 0 else 1.0)
        inf = self._inf
        spec = librosa.feature.melspectrogram(
            y=y, sr=self.sample_rate, n_fft=inf.SPEC_BLOCK_LENGTH, win_length=inf.SPEC_BLOCK_LENGTH,
            hop_length=inf.SPEC_HOP_LENGTH, n_mels=inf.MEL_BINS, fmin=inf.F_MIN, fmax=inf.F_MAX,
            norm=1.0, htk=True, power=2.0,
        )
        spec = np.log10(spec * 10000.0 + 1.0).T  # (frames, mels): the layout the network expects
        return np.asarray(self._pre.spectrogram_normalize(spec, spec_norm="original"))

    def embed(self, audio: np.ndarray) -> np.ndarray:
        import torch

        spec = self.spectrogram(audio)
        block = self._inf.EMB_BLOCK_LENGTH
        hop = max(1, block // 2)
        blocks = self._pre.blocking(spec, block_size=block, hop_size=hop, drop_partial_block=True)
        with torch.inference_mode():
            out = self._net(torch.as_tensor(blocks, dtype=torch.float32, device=self._device))
        return out.cpu().numpy().astype(np.float32)


def _logmel_factory(ckpt_dir: Any = None, device: str = "cpu") -> Embedding:
    return LogMelEmbedding()


def _aisfx_factory(ckpt_dir: Any = None, device: str = "cpu") -> Embedding:
    return AisfxEmbedding(device=device)


EMBEDDINGS.register(
    "logmel", _logmel_factory, description="log-mel band statistics per 1 s window; no weights (smoke default)",
    sample_rate=LogMelEmbedding.sample_rate, dim=LogMelEmbedding.dim, version=LogMelEmbedding.version,
)
EMBEDDINGS.register(
    "aisfx", _aisfx_factory, description="aisfx 0.1.2 pretrained sound-effects CNN, weights in the wheel (real-data default)",
    sample_rate=AisfxEmbedding.sample_rate, dim=AisfxEmbedding.dim, version=AisfxEmbedding.version,
)
