"""Slow: every registered family learns the synthetic data, and HpN reduced learns the real recordings.

Short runs (200 steps, batch 4, random 0.5 s crops, one thread) on purpose: the check is that the loop
trains each family (held-out MSS falls well below the untrained model's), not a converged model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.checkpoint import load_checkpoint
from ddspbench.suite.cli import main
from ddspbench.suite.data.api import prepare
from ddspbench.suite.data.store import ClipSet, load_split
from ddspbench.suite.registry import FAMILIES, SIZES
from ddspbench.suite.train import BEST_CKPT, TrainConfig, train, validation_mss

load_catalog()
FAMILY_NAMES = FAMILIES.list()
STEPS = 200
RATIO = 0.8  # trained held-out MSS must be below this fraction of the untrained model's

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # one thread: tiny models train fastest so


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    return prepare("synthetic", out / "data", recordings=5, clips_per_recording=2, timbres="flute-like", use_cache=False)


def _cfg(seed: int = 0) -> TrainConfig:
    return TrainConfig(steps=STEPS, batch_size=4, lr=3e-3, frames=125, random_crop=True, valid_every=100,
                       checkpoint_every=STEPS, log_every=50, seed=seed, threads=1)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_learns_synthetic_data(family: str, synthetic: Path, tmp_path: Path) -> None:
    train_set, valid_set, test_set = (load_split(synthetic, s) for s in ("train", "valid", "test"))
    torch.manual_seed(0)
    model = SIZES.get(f"{family}/reduced")()
    before = validation_mss(model, test_set)
    res = train(model, train_set, valid_set, _cfg(), out_dir=tmp_path, progress=False)
    after = validation_mss(res.model, test_set)
    print(f"{family}/reduced synthetic held-out MSS {before:.2f} -> {after:.2f} (ratio {after / before:.3f})")
    assert after < RATIO * before
    best, meta = load_checkpoint(tmp_path / BEST_CKPT)
    assert meta["train"]["valid"] == pytest.approx(res.best_valid)
    assert validation_mss(best, valid_set, frames=125) == pytest.approx(res.best_valid, rel=1e-4)


def _concat(sets: list[ClipSet]) -> ClipSet:
    sets = [s for s in sets if len(s)]
    return ClipSet(
        audio=np.concatenate([s.audio for s in sets]),
        f0_hz=np.concatenate([s.f0_hz for s in sets]),
        loudness_db=np.concatenate([s.loudness_db for s in sets]),
        clip_ids=np.concatenate([s.clip_ids for s in sets]),
        recording_ids=np.concatenate([s.recording_ids for s in sets]),
        instruments=np.concatenate([s.instruments for s in sets]),
    )


def test_hpn_reduced_learns_real_recordings(real_recordings: Path, tmp_path: Path) -> None:
    data = prepare("folder", tmp_path / "real", path=real_recordings, f0="yin", split="chunk", use_cache=False)
    clips = _concat([load_split(data, s) for s in ("train", "valid", "test")])
    assert len(clips) >= 2
    torch.manual_seed(0)
    model = SIZES.get("hpn/reduced")()
    before = validation_mss(model, clips)
    res = train(model, clips, None, _cfg(), progress=False)
    after = validation_mss(res.model, clips)
    print(f"hpn/reduced real recordings MSS {before:.2f} -> {after:.2f} (ratio {after / before:.3f})")
    assert after < RATIO * before


def test_cli_train_then_synth_real_family(synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--family", "hpn", "--size", "reduced", "--set", "hidden=8", "--data", str(synthetic),
            "--steps", "5", "--out", str(out), "--batch-size", "2", "--frames", "125", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    assert "final valid MSS: " in capsys.readouterr().out
    model, _ = load_checkpoint(out / "last.pt")
    assert model.config["hidden"] == 8 and model.size_name == "custom"
    wavs = tmp_path / "wavs"
    assert main(["synth", "--model", str(out / "last.pt"), "--data", str(synthetic), "--out", str(wavs)]) == 0
    test_ids = load_split(synthetic, "test").clip_ids
    assert sorted(p.stem for p in wavs.glob("*.wav")) == sorted(test_ids)
