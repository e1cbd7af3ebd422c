"""Embedding back-ends and the embedding cache (suite.metrics.embeddings, suite.metrics.pretrained)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics import embeddings as E
from ddspbench.suite.registry import EMBEDDINGS


def _tone(freq: float, seconds: float = 2.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_registry_holds_every_backend_with_its_metadata() -> None:
    load_catalog()
    for name in ("logmel", "aisfx", "vggish", "pann", "encodec", "clap"):
        meta = EMBEDDINGS.entry(name).meta
        assert meta["sample_rate"] > 0 and meta["dim"] > 0 and meta["version"]
    assert E.embedding_def("logmel") == "logmel/1"


def test_logmel_is_deterministic_and_shaped() -> None:
    emb = E.get_embedding("logmel")
    assert E.get_embedding("logmel") is emb  # built once per process
    x = _tone(440.0)
    a, b = emb.embed(x), emb.embed(x.copy())
    assert a.shape == (3, emb.dim)  # 2 s, 1 s windows, 0.5 s hop
    assert np.array_equal(a, b)
    assert np.all(np.isfinite(a))
    short = emb.embed(_tone(440.0, seconds=0.2))
    assert short.shape == (1, emb.dim)
    # a different pitch moves the spectral centroid
    assert emb.embed(_tone(2000.0))[:, 129].mean() > a[:, 129].mean()


def test_cache_is_keyed_by_audio_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDSPBENCH_CACHE", str(tmp_path))
    calls: list[int] = []

    class Counting(E.LogMelEmbedding):
        def embed(self, audio: np.ndarray) -> np.ndarray:
            calls.append(audio.size)
            return super().embed(audio)

    emb = Counting()
    clips = [_tone(220.0), _tone(330.0)]
    first = E.embed_clips(emb, clips)
    second = E.embed_clips(emb, clips)
    assert len(calls) == 2  # the second pass came from the cache
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
    assert len(list((tmp_path / "embeddings" / "logmel-1").glob("*.npy"))) == 2
    E.embed_clips(emb, [_tone(220.0) * 0.5])  # different audio: a miss
    assert len(calls) == 3
    E.embed_clips(emb, clips, use_cache=False)
    assert len(calls) == 5


def test_missing_optional_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    load_catalog()
    monkeypatch.setattr(E, "_instances", {})
    monkeypatch.setitem(sys.modules, "frechet_audio_distance", None)  # import fails
    with pytest.raises(UserError, match=r"fad-pretrained") as exc:
        E.get_embedding("vggish", ckpt_dir="/nonexistent")
    assert "\n" not in str(exc.value)


class _FakeFAD:
    """Stand-in for frechet_audio_distance.FrechetAudioDistance: same constructor and get_embeddings API.

    Reads ``<ckpt_dir>/<model>.pt`` (a Linear layer's weights, written by the test) and embeds
    0.1 s frames with it; its PANN flattens the per-clip embedding and its EnCodec returns
    (dim, frames), as versions of the real package do.
    """

    dims = {"vggish": 128, "pann": 2048, "encodec": 128, "clap": 512}
    seen: list[dict[str, Any]] = []

    def __init__(self, ckpt_dir: str | None = None, model_name: str = "vggish", sample_rate: int = 16000,
                 use_pca: bool = False, use_activation: bool = False, verbose: bool = False, **kw: Any) -> None:
        state = torch.load(Path(ckpt_dir or "") / f"{model_name}.pt", weights_only=True)
        self.layer = torch.nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
        self.layer.load_state_dict(state)
        self.model_name, self.sample_rate = model_name, sample_rate
        _FakeFAD.seen.append({"model_name": model_name, "sample_rate": sample_rate, "use_pca": use_pca, "use_activation": use_activation})

    def get_embeddings(self, x: list[np.ndarray], sr: int) -> np.ndarray:
        out = []
        n_in = self.layer.in_features
        for clip in x:
            frames = torch.as_tensor(clip[: len(clip) // n_in * n_in], dtype=torch.float32).reshape(-1, n_in)
            e = self.layer(frames).detach().numpy()
            if self.model_name == "pann":
                e = e.mean(0)  # one flattened vector per clip, as the package's PANN gives
            elif self.model_name == "encodec":
                e = e.T  # (dim, frames), as the package's EnCodec gave before its fix
            out.append(e)
        return np.concatenate(out, axis=0)


@pytest.mark.parametrize("name", ["vggish", "pann", "encodec"])
def test_pretrained_backend_with_a_fake_package(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_catalog()
    monkeypatch.setattr(E, "_instances", {})  # build afresh against the fake package
    sr, dim = EMBEDDINGS.entry(name).meta["sample_rate"], EMBEDDINGS.entry(name).meta["dim"]
    frame = sr // 10
    torch.manual_seed(0)
    layer = torch.nn.Linear(frame, dim)
    torch.save(layer.state_dict(), tmp_path / f"{name}.pt")
    fake = types.ModuleType("frechet_audio_distance")
    fake.__version__ = "0.3.4"  # type: ignore[attr-defined]
    fake.FrechetAudioDistance = _FakeFAD  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "frechet_audio_distance", fake)

    with pytest.raises(UserError, match="--ckpt-dir"):
        E.get_embedding(name)
    emb = E.get_embedding(name, ckpt_dir=tmp_path)
    clip = _tone(440.0, seconds=2.0)
    out = emb.embed(clip)
    expected_rows = 1 if name == "pann" else 20
    assert out.shape == (expected_rows, dim)
    assert _FakeFAD.seen[-1] == {"model_name": name, "sample_rate": sr, "use_pca": False, "use_activation": False}
    assert emb.definition == f"{name}/fad-0.3.4"
    # the values come from the checkpoint the test wrote
    from ddspbench.suite.audio_io import resample

    x = torch.as_tensor(resample(clip, 16000, sr)[:frame])
    with torch.no_grad():
        first = layer(x).numpy()
    row = out[0] if name != "pann" else None
    if row is not None:
        assert np.allclose(row, first, atol=1e-4)
