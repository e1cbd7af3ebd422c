"""Pretrained FAD back-ends of the optional ``frechet_audio_distance`` package (VGGish, PANN, EnCodec, CLAP).

These need the extra ``fad-pretrained`` (``pip install 'ddspbench[fad-pretrained]'``, best in a
separate environment: the package pulls torchaudio/torchvision and an older torch) **and** a local
checkpoint directory (``--ckpt-dir``) that already holds the model weights: nothing is downloaded
at run time. Without either, building the back-end raises a one-line :class:`UserError` that says
what is missing.

The package's ``FrechetAudioDistance(ckpt_dir=..., model_name=..., sample_rate=..., use_pca=False,
use_activation=False)`` is built once; each clip (resampled from 16 kHz to the model's rate) is
passed alone to ``get_embeddings([clip], sr)`` so embeddings stay grouped by clip. Its PANN back-end
returns one flattened vector per clip: any 1-D result is reshaped to (-1, dim); older EnCodec
results come as (dim, frames) and are transposed to (frames, dim).
As the reference did for VGGish: no PCA, no final activation.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ddspbench.suite.errors import UserError
from ddspbench.suite.features import SAMPLE_RATE
from ddspbench.suite.metrics.embeddings import Embedding
from ddspbench.suite.registry import EMBEDDINGS

__all__ = ["PretrainedFADEmbedding", "PRETRAINED", "EXTRA"]

EXTRA = "fad-pretrained"
PACKAGE = "frechet_audio_distance"

# name -> (model sample rate, embedding dim)
PRETRAINED: dict[str, tuple[int, int]] = {
    "vggish": (16_000, 128),
    "pann": (16_000, 2048),
    "encodec": (24_000, 128),
    "clap": (48_000, 512),
}


class PretrainedFADEmbedding(Embedding):
    """One ``frechet_audio_distance`` back-end, built from a local checkpoint directory."""

    name: ClassVar[str] = "pretrained"
    sample_rate: ClassVar[int] = SAMPLE_RATE
    dim: ClassVar[int] = 0
    version: ClassVar[str] = "fad-0.3"

    def __init__(self, model_name: str, ckpt_dir: str | os.PathLike[str] | None, device: str = "cpu") -> None:
        sr, dim = PRETRAINED[model_name]
        try:
            pkg = importlib.import_module(PACKAGE)
        except ImportError:
            raise UserError(
                f"embedding {model_name!r} needs the optional {PACKAGE} package: "
                f"pip install 'ddspbench[{EXTRA}]' (in a separate environment)"
            ) from None
        if ckpt_dir is None:
            raise UserError(f"embedding {model_name!r} needs --ckpt-dir DIR holding its weights (no downloads at run time)")
        ckpt = Path(ckpt_dir)
        if not ckpt.is_dir() or not any(ckpt.iterdir()):
            raise UserError(f"--ckpt-dir {ckpt}: missing or empty; put the {model_name} weights there first")
        self.name = model_name  # type: ignore[misc]
        self.sample_rate = sr  # type: ignore[misc]
        self.dim = dim  # type: ignore[misc]
        self.version = f"fad-{getattr(pkg, '__version__', 'unknown')}"  # type: ignore[misc]
        kwargs: dict[str, Any] = dict(
            ckpt_dir=str(ckpt), model_name=model_name, sample_rate=sr, use_pca=False, use_activation=False, verbose=False
        )
        try:
            self._fad = pkg.FrechetAudioDistance(**kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            raise UserError(f"{model_name}: could not load weights from {ckpt} ({str(exc).splitlines()[0][:160]})") from None

    def embed(self, audio: np.ndarray) -> np.ndarray:
        from ddspbench.suite.audio_io import resample

        clip = resample(np.asarray(audio, dtype=np.float32), SAMPLE_RATE, self.sample_rate)
        out = np.asarray(self._fad.get_embeddings([clip], sr=self.sample_rate), dtype=np.float32)
        if out.ndim == 1:  # PANN: one flattened vector per clip
            if out.size % self.dim:
                raise RuntimeError(f"{self.name}: embedding of {out.size} values is not a multiple of {self.dim}")
            out = out.reshape(-1, self.dim)
        elif out.ndim > 2:
            out = out.reshape(-1, out.shape[-1])
        if out.shape[-1] != self.dim and out.shape[0] == self.dim:  # EnCodec before the package's fix: (dim, frames)
            out = out.T
        return np.ascontiguousarray(out)


def _factory(model_name: str) -> Any:
    def factory(ckpt_dir: str | os.PathLike[str] | None = None, device: str = "cpu") -> Embedding:
        return PretrainedFADEmbedding(model_name, ckpt_dir, device)

    factory.__name__ = f"{model_name}_factory"
    return factory


for _name, (_sr, _dim) in PRETRAINED.items():
    EMBEDDINGS.register(
        _name, _factory(_name),
        description=f"{_name} via the optional frechet_audio_distance package (extra {EXTRA}, needs --ckpt-dir)",
        sample_rate=_sr, dim=_dim, version="fad-<package version>", extra=EXTRA,
    )
