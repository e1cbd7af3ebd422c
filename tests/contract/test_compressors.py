"""Contract every compressor honours, and one subclass per registered compressor.

``CompressorContract`` checks that a candidate runs forward on the family's inputs without NaN, does
not grow (parameters and serialized bytes), is deterministic under a seed, round-trips through
save/load, reports what it did, and leaves the teacher untouched. Subclasses set ``method``,
``params`` and, if needed, the teacher factory. Models are tiny and training is a few steps on a few
frames, so every check runs in about a second.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from ddspbench.compressors import CompressContext, count_params, get_compressor, serialized_bytes
from ddspbench.suite.checkpoint import load_checkpoint, save_checkpoint
from ddspbench.suite.data.store import ClipSet
from ddspbench.suite.registry import COMPRESSORS, FAMILIES

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

FRAMES = 32


def tiny_clips(n: int = 6, frames: int = 250, seed: int = 0) -> ClipSet:
    """Harmonic tones with known f0 (1/k partials, gentle vibrato): a stand-in for the synthetic dataset."""
    rng = np.random.default_rng(seed)
    sr, hop = 16_000, 64
    t = np.arange(frames * hop) / sr
    audio, f0s, louds = [], [], []
    for _ in range(n):
        base = rng.uniform(180.0, 520.0)
        f0 = base * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 9) if k * base < sr / 2)
        x = 0.3 * x / np.abs(x).max()
        audio.append(x.astype(np.float32))
        f0s.append(f0[::hop].astype(np.float32))
        louds.append(np.full(frames, -20.0, dtype=np.float32))
    ids = np.array([f"clip{i}" for i in range(n)])
    return ClipSet(
        audio=np.stack(audio),
        f0_hz=np.stack(f0s),
        loudness_db=np.stack(louds),
        clip_ids=ids,
        recording_ids=ids,
        instruments=np.array(["tone"] * n),
    )


def tiny_teacher(family: str = "hpn", seed: int = 0, **config: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    defaults: dict[str, Any] = {"hpn": {"hidden": 32}, "wavetable": {"hidden": 32}, "ddx7": {}}[family]
    model = FAMILIES.get(family)(**{**defaults, **config})
    return model.eval()


def tiny_context(steps: int = 2, seed: int = 0) -> CompressContext:
    clips = tiny_clips()
    return CompressContext(
        train_set=clips.subset(slice(0, 4)),
        valid_set=None,
        steps=steps,
        batch_size=2,
        frames=FRAMES,
        seed=seed,
        train_options={"log_every": 1},
    )


def render(model: torch.nn.Module, frames: int = FRAMES, seed: int = 0) -> torch.Tensor:
    clips = tiny_clips(n=2, frames=frames, seed=1)
    f0 = torch.as_tensor(clips.f0_hz)
    loud = torch.as_tensor(clips.loudness_db)
    with torch.no_grad():
        return model(f0, loud, state=model.init_state(2, seed=seed))["audio"]


class CompressorContract:
    """Shared checks; a subclass sets ``method`` and ``params`` (and optionally ``family``/``teacher_config``)."""

    method: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    family: ClassVar[str] = "hpn"
    teacher_config: ClassVar[dict[str, Any]] = {}
    grows_allowed: ClassVar[bool] = False

    @pytest.fixture(scope="class")
    def teacher(self) -> torch.nn.Module:
        from ddspbench.suite.catalog import load_catalog

        load_catalog()
        return tiny_teacher(self.family, **self.teacher_config)

    @pytest.fixture(scope="class")
    def teacher_state(self, teacher: torch.nn.Module) -> dict[str, torch.Tensor]:
        return copy.deepcopy(teacher.state_dict())

    @pytest.fixture(scope="class")
    def teacher_flags(self, teacher: torch.nn.Module) -> list[bool]:
        return [p.requires_grad for p in teacher.parameters()]

    @pytest.fixture(scope="class")
    def result(self, teacher: torch.nn.Module, teacher_state: dict[str, torch.Tensor], teacher_flags: list[bool]) -> Any:
        return get_compressor(self.method).compress(teacher, tiny_context(), **self.params)

    def test_registered(self) -> None:
        head = self.method.split("+")[0]
        assert head in COMPRESSORS

    def test_forward_no_nan(self, result: Any) -> None:
        audio = render(result.model)
        assert audio.shape == (2, FRAMES * 64)
        assert torch.isfinite(audio).all()
        assert float(audio.abs().max()) > 0

    def test_does_not_grow(self, result: Any, teacher: torch.nn.Module) -> None:
        assert count_params(result.model) <= count_params(teacher)
        assert serialized_bytes(result.model) <= serialized_bytes(teacher)

    def test_deterministic_under_seed(self, result: Any, teacher: torch.nn.Module) -> None:
        again = get_compressor(self.method).compress(teacher, tiny_context(), **self.params)
        torch.testing.assert_close(render(again.model), render(result.model), rtol=0, atol=0)

    def test_round_trip(self, result: Any, tmp_path: Path) -> None:
        path = save_checkpoint(result.model, tmp_path / "cand.pt", {"description": result.description})
        loaded, meta = load_checkpoint(path)
        torch.testing.assert_close(render(loaded), render(result.model), rtol=0, atol=0)
        assert count_params(loaded) == count_params(result.model)
        assert meta["description"]["method"] == self.method

    def test_reports_what_it_did(self, result: Any) -> None:
        d = result.description
        assert d["method"] == self.method
        for key, value in self.params.items():
            assert d["params"][key] == value
        assert d["after"]["params"] == count_params(result.model)
        assert d["after"]["bytes"] == serialized_bytes(result.model)
        assert d["before"]["params"] > 0

    def test_teacher_untouched(
        self, result: Any, teacher: torch.nn.Module, teacher_state: dict[str, torch.Tensor], teacher_flags: list[bool]
    ) -> None:
        for k, v in teacher.state_dict().items():
            assert torch.equal(v, teacher_state[k]), k
        assert [p.requires_grad for p in teacher.parameters()] == teacher_flags


class TestScratchContract(CompressorContract):
    method = "scratch"
    params = {"hidden": 8}


class TestKDAudioContract(CompressorContract):
    method = "kd_audio"
    params = {"size": "reduced", "kd_weight": 0.5}


class TestKDControlContract(CompressorContract):
    method = "kd_control"
    params = {"hidden": 8}


class TestKDFeatureContract(CompressorContract):
    method = "kd_feature"
    params = {"hidden": 8}


class TestPruneContract(CompressorContract):
    method = "prune"
    params = {"ratio": 0.5, "finetune_steps": 2}


class TestPruneKDContract(CompressorContract):
    method = "prune"
    params = {"ratio": 0.25, "finetune_steps": 2, "kd_weight": 0.5}


class TestQuantizeInt8Contract(CompressorContract):
    method = "quantize"
    params = {"method": "int8", "measure_frames": 16, "measure_repeats": 1}


class TestQuantizeBF16Contract(CompressorContract):
    method = "quantize"
    params = {"method": "bf16", "measure_frames": 16, "measure_repeats": 1}


class TestChainContract(CompressorContract):
    method = "prune+kd_audio+quantize"
    params = {"prune.ratio": 0.5, "kd_audio.steps": 2, "quantize.measure_frames": 16, "quantize.measure_repeats": 1}


class TestWavetableKDControlContract(CompressorContract):
    method = "kd_control"
    family = "wavetable"
    params = {"hidden": 8, "copy_wavetables": True}


class TestWavetablePruneDSPContract(CompressorContract):
    method = "prune"
    family = "wavetable"
    params = {"ratio": 0.25, "n_wavetables": 10, "n_bands": 33, "finetune_steps": 1}


class TestHpnPruneDSPContract(CompressorContract):
    method = "prune"
    params = {"ratio": 0.25, "n_harmonics": 40, "n_bands": 33, "finetune_steps": 1}


class TestDDX7KDControlContract(CompressorContract):
    method = "kd_control"
    family = "ddx7"
    teacher_config = {"n_blocks": 3, "hidden": 16}
    params = {"hidden": 8}


class TestDDX7PruneContract(CompressorContract):
    method = "prune"
    family = "ddx7"
    teacher_config = {"n_blocks": 3, "hidden": 16}
    params = {"ratio": 0.5, "finetune_steps": 1}


class TestDDX7BF16Contract(CompressorContract):
    method = "quantize"
    family = "ddx7"
    teacher_config = {"n_blocks": 3, "hidden": 16}
    params = {"method": "bf16", "measure_frames": 16, "measure_repeats": 1}


class TestDDX7Int8Contract(CompressorContract):
    method = "quantize"
    family = "ddx7"
    teacher_config = {"n_blocks": 3, "hidden": 16}
    params = {"method": "int8", "measure_frames": 16, "measure_repeats": 1}


class TestQuantizeOnnxContract(CompressorContract):
    method = "quantize"
    params = {"method": "onnx_int8", "measure_frames": 16, "measure_repeats": 1}

    @pytest.fixture(scope="class", autouse=True)
    def _needs_onnxruntime(self) -> None:
        from ddspbench.compressors import onnx_available
        from tests.conftest import require_system

        require_system("onnx + onnxruntime (pip install 'ddspbench[onnx]')", onnx_available())
