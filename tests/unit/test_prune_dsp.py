"""DSP-aware pruning: band resampling, kept harmonics/wavetables, and control KD on the kept components."""

from __future__ import annotations

import pytest
import torch

from ddspbench.compressors import get_compressor
from ddspbench.compressors._distill import control_kd_loss
from ddspbench.compressors._dsp_prune import band_resampler, dsp_prune
from ddspbench.compressors._prune import rebuild
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.errors import UserError
from tests.contract.test_compressors import tiny_clips, tiny_context, tiny_teacher

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def _catalog() -> None:
    load_catalog()


def test_band_resampler_interpolates_an_even_grid() -> None:
    assert torch.equal(band_resampler(5, 5), torch.eye(5))
    m = band_resampler(65, 33)
    assert m.shape == (33, 65)
    torch.testing.assert_close(m.sum(1), torch.ones(33))
    ramp = torch.linspace(0, 1, 65)
    torch.testing.assert_close(m @ ramp, torch.linspace(0, 1, 33))  # a linear spectrum stays linear


def test_fewer_harmonics_keeps_the_lowest_and_reports_their_energy() -> None:
    teacher = tiny_teacher(seed=0)
    model, report = dsp_prune(rebuild(teacher), tiny_context(), n_harmonics=30)
    assert model.config["n_harmonics"] == 30
    assert model.kept_controls["harmonic_distribution"] == list(range(30))
    torch.testing.assert_close(model.decoder.heads["harmonic_distribution"].weight,
                               teacher.decoder.heads["harmonic_distribution"].weight[:30])
    assert 0.0 < report["harmonics"]["energy_kept"] <= 1.0


def test_fewer_wavetables_keep_the_fixed_sines_and_the_most_attended() -> None:
    teacher = tiny_teacher("wavetable", seed=0)
    model, report = dsp_prune(rebuild(teacher), tiny_context(), n_wavetables=8)
    kept = report["wavetables"]["kept"]
    assert kept[:4] == [0, 1, 2, 3] and len(kept) == 8
    torch.testing.assert_close(model.wavetables, teacher.wavetables[[k - 4 for k in kept[4:]]])
    assert model.config["n_wavetables"] == 8


def test_control_kd_compares_the_kept_components() -> None:
    teacher = tiny_teacher(seed=0)
    student = get_compressor("prune").compress(teacher, tiny_context(), ratio=0.25, n_harmonics=40, n_bands=33,
                                               finetune_steps=0).model
    c = tiny_clips(n=2, frames=32)
    batch = {k: torch.as_tensor(getattr(c, k)) for k in ("audio", "f0_hz", "loudness_db")}
    out = student(batch["f0_hz"], batch["loudness_db"])
    loss, logs = control_kd_loss(teacher, student)(out, batch)
    assert torch.isfinite(loss) and logs["kd_harmonic_distribution"] > 0
    res = get_compressor("prune+kd_control").compress(
        teacher, tiny_context(steps=1), **{"prune.n_harmonics": 40, "prune.ratio": 0.25, "kd_control.steps": 1})
    assert res.model.config["n_harmonics"] == 40


def test_dsp_options_are_checked() -> None:
    with pytest.raises(UserError, match="hpn family"):
        dsp_prune(rebuild(tiny_teacher("wavetable")), tiny_context(), n_harmonics=10)
    with pytest.raises(UserError, match="n_bands"):
        dsp_prune(rebuild(tiny_teacher()), tiny_context(), n_bands=1)
    with pytest.raises(UserError, match="hpn and wavetable"):
        dsp_prune(rebuild(tiny_teacher("ddx7", n_blocks=2, hidden=8)), tiny_context(), n_bands=10)
