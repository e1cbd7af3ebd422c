"""Knowledge distillation: loss formulas, frozen teacher, trained projector, students, and (slow) KD vs scratch."""

from __future__ import annotations

import copy

import pytest
import torch

from ddspbench.compressors import CompressContext, build_student, frozen, get_compressor
from ddspbench.compressors._distill import audio_kd_loss, control_kd_loss, feature_kd_loss
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics.mss import mss
from ddspbench.suite.registry import FAMILIES
from tests.contract.test_compressors import tiny_clips, tiny_context, tiny_teacher

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def _catalog() -> None:
    load_catalog()


def _batch(frames: int = 32) -> dict[str, torch.Tensor]:
    c = tiny_clips(n=2, frames=frames)
    return {k: torch.as_tensor(getattr(c, k)) for k in ("audio", "f0_hz", "loudness_db")}


def test_audio_kd_loss_is_the_reference_formula() -> None:
    teacher, student = tiny_teacher(seed=0), tiny_teacher(seed=1)
    b = _batch()
    torch.manual_seed(5)
    out = student(b["f0_hz"], b["loudness_db"], state=student.init_state(2, seed=1))
    torch.manual_seed(9)
    loss, logs = audio_kd_loss(teacher, kd_weight=0.5, target_weight=0.5)(out, b)
    torch.manual_seed(9)
    t_audio = teacher(b["f0_hz"], b["loudness_db"])["audio"]
    expected = 0.5 * mss(b["audio"], out["audio"]) + 0.5 * mss(t_audio, out["audio"])
    torch.testing.assert_close(loss, expected)
    assert set(logs) == {"mss", "kd_audio"}


def test_control_kd_is_zero_against_itself_and_sums_heads() -> None:
    teacher = tiny_teacher(seed=0)
    twin = copy.deepcopy(teacher)
    b = _batch()
    out = twin(b["f0_hz"], b["loudness_db"])
    loss, logs = control_kd_loss(teacher, twin, kd_weight=1.0, target_weight=0.0)(out, b)
    assert float(loss) == 0.0
    other = tiny_teacher(seed=3)
    out = other(b["f0_hz"], b["loudness_db"])
    loss, logs = control_kd_loss(teacher, other, kd_weight=1.0, target_weight=0.0)(out, b)
    heads = [logs[f"kd_{n}"] for n in other.control_names]
    assert float(loss) == pytest.approx(sum(heads), rel=1e-5) and all(h > 0 for h in heads)


def test_feature_kd_trains_the_projector() -> None:
    teacher = tiny_teacher(seed=0)
    proj = torch.nn.Linear(8, 32)
    student = FAMILIES.get("hpn")(hidden=8)
    b = _batch()
    out = student(b["f0_hz"], b["loudness_db"])
    loss, _ = feature_kd_loss(teacher, proj, kd_weight=1.0, target_weight=0.5)(out, b)
    loss.backward()
    assert proj.weight.grad is not None and float(proj.weight.grad.abs().sum()) > 0


def test_kd_feature_candidate_has_no_projector() -> None:
    res = get_compressor("kd_feature").compress(tiny_teacher(), tiny_context(steps=1), hidden=8)
    assert not any("kd_projector" in k for k in res.model.state_dict())
    assert res.description["projector_params"] > 0


@pytest.mark.parametrize("method", ["kd_audio", "kd_control"])
def test_teacher_is_bit_identical_after_kd(method: str) -> None:
    teacher = tiny_teacher(seed=0)
    before = copy.deepcopy(teacher.state_dict())
    teacher.train()
    res = get_compressor(method).compress(teacher, tiny_context(steps=2), hidden=8)
    assert res.description["train"]["steps"] == 2
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())  # restored after


def test_frozen_blocks_gradients() -> None:
    teacher = tiny_teacher(seed=0)
    with frozen(teacher):
        assert not teacher.training
        assert not any(p.requires_grad for p in teacher.parameters())
    assert all(p.requires_grad for p in teacher.parameters())


def test_student_sizes() -> None:
    teacher = tiny_teacher(seed=0)
    assert build_student(teacher, "reduced").config["hidden"] == 16
    assert build_student(teacher, widths={"hidden": 12}).config["widths"]["gru"] == 12
    with pytest.raises(UserError, match="unknown size"):
        build_student(teacher, "huge")
    with pytest.raises(UserError, match="unknown parameter"):
        get_compressor("kd_audio").compress(teacher, tiny_context(), temperature=2.0)


def test_student_keeps_non_width_settings() -> None:
    teacher = tiny_teacher(seed=0, n_harmonics=40)
    assert build_student(teacher, "reduced").config["n_harmonics"] == 40


@pytest.mark.slow
def test_kd_audio_student_ends_closer_to_the_teacher_than_scratch() -> None:
    """On synthetic tones: a teacher (hidden 32, 100 steps), then reduced students trained 80 steps
    with the same seed, from scratch and with audio KD. The KD student's audio is closer (MSS) to the
    teacher's on held-out clips (2-core CPU, 2026-11-24: kd_audio 25.2 vs scratch 27.0, about 90 s)."""
    from ddspbench.suite.train import TrainConfig, train

    clips = tiny_clips(n=12, frames=250, seed=0)
    train_set, test_set = clips.subset(slice(0, 10)), clips.subset(slice(10, 12))
    torch.manual_seed(0)
    teacher = FAMILIES.get("hpn")(hidden=32)
    train(teacher, train_set, None, TrainConfig(steps=100, batch_size=4, frames=64, seed=0, lr=3e-3), progress=False)
    teacher.eval()
    ctx = CompressContext(train_set=train_set, steps=80, batch_size=4, frames=64, seed=0, lr=3e-3)
    scratch = get_compressor("scratch").compress(teacher, ctx, size="reduced").model
    kd = get_compressor("kd_audio").compress(teacher, ctx, size="reduced").model
    f0, loud = torch.as_tensor(test_set.f0_hz), torch.as_tensor(test_set.loudness_db)

    def audio(m: torch.nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return m(f0, loud, state=m.init_state(2, seed=11))["audio"]

    t = audio(teacher)
    d_scratch, d_kd = float(mss(t, audio(scratch))), float(mss(t, audio(kd)))
    assert d_kd < d_scratch, f"MSS to teacher: kd_audio {d_kd:.3f} vs scratch {d_scratch:.3f}"


def test_copied_wavetables_stay_the_teachers() -> None:
    teacher = tiny_teacher("wavetable", seed=0)
    with torch.no_grad():
        teacher.wavetables.normal_()  # distinguishable from a fresh student's tables
    res = get_compressor("kd_audio").compress(teacher, tiny_context(steps=2), hidden=8, copy_wavetables=True)
    student = res.model
    assert res.description["wavetables_copied"] == teacher.config["n_wavetables"]
    assert torch.equal(student.wavetables, teacher.wavetables) and not student.wavetables.requires_grad
    assert torch.equal(student.wavetables_fixed, teacher.wavetables_fixed)
    with pytest.raises(UserError, match="wavetable family"):
        get_compressor("kd_audio").compress(tiny_teacher(), tiny_context(steps=1), hidden=8, copy_wavetables=True)
