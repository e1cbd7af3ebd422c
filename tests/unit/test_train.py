"""Unit tests of the training loop (suite/train.py) on a tiny contract-honouring test model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ddspbench.suite.checkpoint import load_checkpoint
from ddspbench.suite.data.store import ClipSet
from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import FAMILIES, SIZES, Entry
from ddspbench.suite.train import (
    BEST_CKPT,
    LAST_CKPT,
    TrainConfig,
    TrainingDiverged,
    mss_loss_fn,
    train,
    validation_mss,
)

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

SR, HOP = 16_000, 64
DOUBLE = "train_test_double"


class TinySynth(nn.Module):
    """TEST HELPER: a tiny additive synth that honours the family contract of docs/CONTRACTS.md.

    Decoder: frame features -> overall amplitude + harmonic distribution; synth: sum of harmonics
    plus seeded white noise (so fresh states seeded alike give identical audio).
    """

    family = DOUBLE
    control_names = ("amplitude", "harmonics")

    def __init__(self, hidden: int = 16, n_harmonics: int = 4) -> None:
        super().__init__()
        self.config = {"hidden": hidden, "n_harmonics": n_harmonics}
        self.size_name = "custom"
        self.inp = nn.Linear(2, hidden)
        self.out = nn.Linear(hidden, 1 + n_harmonics)
        self.noise_gain = nn.Parameter(torch.tensor(-2.0))
        self.n_harmonics = n_harmonics

    def init_state(self, batch_size: int, seed: int | None = None) -> dict[str, Any]:
        gen = torch.Generator()
        gen.manual_seed(0 if seed is None else int(seed))
        return {"phase": torch.zeros(batch_size, 1), "gen": gen}

    def synth_controls(self, controls: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"amplitude": torch.sigmoid(controls["amplitude"]), "harmonics": torch.softmax(controls["harmonics"], -1)}

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        if state is None:
            state = self.init_state(f0_hz.shape[0])
        x = torch.stack([f0_hz / 1000.0, loudness_db / 80.0 + 1.0], dim=-1)
        h = torch.tanh(self.inp(x))
        raw = self.out(h)
        controls = {"amplitude": raw[..., :1], "harmonics": raw[..., 1:]}
        c = self.synth_controls(controls)
        f0 = f0_hz.repeat_interleave(HOP, dim=1)
        amp = c["amplitude"][..., 0].repeat_interleave(HOP, dim=1)
        harm = c["harmonics"].repeat_interleave(HOP, dim=1)
        phase = state["phase"] + torch.cumsum(2 * math.pi * f0 / SR, dim=1)
        k = torch.arange(1, self.n_harmonics + 1, dtype=f0.dtype)
        tone = (harm * torch.sin(phase[..., None] * k)).sum(-1)
        noise = torch.rand(f0.shape, generator=state["gen"]) * 2 - 1
        audio = amp * tone + torch.exp(self.noise_gain) * 0.05 * noise
        new_state = {"phase": phase[:, -1:] % (2 * math.pi), "gen": state["gen"]}
        return {"audio": audio, "controls": controls, "state": new_state, "hidden": h}


def make_clips(n: int = 8, frames: int = 48, seed: int = 0, prefix: str = "c") -> ClipSet:
    """TEST HELPER: harmonic tones at random pitches/levels (so a model can learn them)."""
    rng = np.random.default_rng(seed)
    f0 = np.repeat(rng.uniform(200, 500, size=(n, 1)), frames, axis=1).astype(np.float32)
    loud = np.repeat(rng.uniform(-40, -10, size=(n, 1)), frames, axis=1).astype(np.float32)
    t = np.arange(frames * HOP) / SR
    amp = (10 ** (loud[:, :1] / 20)) * 2
    audio = (amp * (np.sin(2 * np.pi * f0[:, :1] * t) + 0.5 * np.sin(4 * np.pi * f0[:, :1] * t))).astype(np.float32)
    ids = np.array([f"{prefix}{i:03d}" for i in range(n)])
    return ClipSet(audio=audio, f0_hz=f0, loudness_db=loud, clip_ids=ids, recording_ids=ids, instruments=np.array(["tone"] * n))


@pytest.fixture
def double_family(monkeypatch: pytest.MonkeyPatch) -> type[TinySynth]:
    """Register the test double as a family (and size ``tiny``) for the duration of one test only."""
    monkeypatch.setitem(FAMILIES._entries, DOUBLE, Entry(DOUBLE, TinySynth, "test double"))
    monkeypatch.setitem(SIZES._entries, f"{DOUBLE}/tiny", Entry(f"{DOUBLE}/tiny", lambda: _named(TinySynth(8, 3)), "tiny"))
    return TinySynth


def _named(m: TinySynth) -> TinySynth:
    m.size_name = "tiny"
    return m


def _model(seed: int = 0) -> TinySynth:
    torch.manual_seed(seed)
    return TinySynth()


def _cfg(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"steps": 10, "batch_size": 4, "lr": 1e-2, "valid_every": 5, "checkpoint_every": 5, "log_every": 1}
    base.update(kw)
    return TrainConfig(**base)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_loss_decreases_on_a_fixed_batch() -> None:
    clips = make_clips(n=4)
    res = train(_model(), clips, None, _cfg(steps=30, batch_size=4, lr=0.1), progress=False)
    losses = [r["loss"] for r in res.history]
    assert len(losses) == 30
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_result_fields_and_validation(tmp_path: Path, double_family: type) -> None:
    res = train(_model(), make_clips(), make_clips(4, seed=1, prefix="v"), _cfg(curve_points=0), out_dir=tmp_path,
                progress=False)
    assert res.steps == 10 and res.start_step == 0 and res.seconds > 0
    valid_rows = [r for r in res.history if "valid" in r]
    assert [r["step"] for r in valid_rows] == [5, 10]
    # curve_points adds evenly spaced validations for the learning curve, whatever valid_every says
    curve = train(_model(), make_clips(), make_clips(4, seed=1, prefix="v"), _cfg(curve_points=5, valid_every=100),
                  progress=False)
    assert [r["step"] for r in curve.history if "valid" in r] == [2, 4, 6, 8, 10]
    assert res.best_valid == min(r["valid"] for r in valid_rows)
    assert res.last_valid == valid_rows[-1]["valid"]
    assert res.checkpoint == tmp_path / LAST_CKPT and res.best_checkpoint == tmp_path / BEST_CKPT
    assert not res.model.training


def test_checkpoint_round_trip(tmp_path: Path, double_family: type) -> None:
    res = train(_model(), make_clips(), make_clips(4, seed=1), _cfg(checkpoint="last"), out_dir=tmp_path, progress=False)
    loaded, meta = load_checkpoint(tmp_path / LAST_CKPT)
    assert isinstance(loaded, TinySynth) and loaded.config == res.model.config
    assert _same_weights(loaded, res.model)
    assert meta["train"]["step"] == 10 and meta["train"]["config"]["batch_size"] == 4
    assert meta["train"]["best_valid"] == res.best_valid
    assert len(meta["train"]["history"]) == len(res.history)
    best, bmeta = load_checkpoint(tmp_path / BEST_CKPT)
    assert bmeta["train"]["valid"] == res.best_valid
    # the optimizer file loads with weights_only=True
    assert meta["train"]["optim_file"] == "optim-00000010.pt"
    assert sorted(p.name for p in tmp_path.glob("optim-*.pt")) == ["optim-00000010.pt"]  # step 5's is gone
    opt = torch.load(tmp_path / "optim-00000010.pt", weights_only=True)
    assert opt["step"] == 10 and "state" in opt["optimizer"]


@pytest.mark.parametrize("random_crop", [False, True])
def test_resume_equals_uninterrupted(tmp_path: Path, double_family: type, random_crop: bool) -> None:
    train_set, valid_set = make_clips(n=10), make_clips(4, seed=1)
    kw: dict[str, Any] = {"frames": 32, "random_crop": random_crop, "decay_every": 3,  # decays cross the cut
                          "checkpoint": "last"}
    full = train(_model(), train_set, valid_set, _cfg(steps=20, **kw), out_dir=tmp_path / "a", progress=False)
    first = train(_model(), train_set, valid_set, _cfg(steps=10, **kw), out_dir=tmp_path / "b", progress=False)
    assert not _same_weights(first.model, full.model)
    resumed = train(_model(seed=123), train_set, valid_set, _cfg(steps=20, **kw), out_dir=tmp_path / "b", resume=True, progress=False)
    assert resumed.start_step == 10 and resumed.steps == 20
    assert _same_weights(resumed.model, full.model)
    assert resumed.history == full.history
    assert resumed.best_valid == full.best_valid


def test_best_checkpoint_is_what_the_run_returns(tmp_path: Path, double_family: type) -> None:
    valid = make_clips(6, seed=1, prefix="v")
    best = train(_model(), make_clips(n=10), valid, _cfg(steps=24, lr=3.0, valid_every=1, curve_points=0),
                 out_dir=tmp_path / "best", progress=False)
    curve = [(r["step"], r["valid"]) for r in best.history if "valid" in r]
    best_step = min(curve, key=lambda p: p[1])[0]
    assert best_step != 24, "the test needs a run whose best validation is not its last step"
    # default: the best validation weights, and the record says which step they are from
    assert best.selected == "best" and best.selected_step == best_step
    assert validation_mss(best.model, valid) == pytest.approx(best.best_valid, rel=1e-5)
    assert validation_mss(best.model, valid) < best.last_valid
    loaded, _ = load_checkpoint(tmp_path / "best" / BEST_CKPT)
    assert _same_weights(loaded, best.model)
    # checkpoint="last": the old behaviour, the last step's weights
    last = train(_model(), make_clips(n=10), valid, _cfg(steps=24, lr=3.0, valid_every=1, curve_points=0,
                                                         checkpoint="last"), progress=False)
    assert last.selected == "last" and last.selected_step == 24
    assert validation_mss(last.model, valid) == pytest.approx(last.last_valid, rel=1e-5)
    # a run resumed after its best step still returns the best weights (read back from best.pt)
    first = train(_model(), make_clips(n=10), valid, _cfg(steps=best_step + 2, lr=3.0, valid_every=1, curve_points=0),
                  out_dir=tmp_path / "resumed", progress=False)
    assert first.selected_step == best_step
    resumed = train(_model(seed=5), make_clips(n=10), valid, _cfg(steps=24, lr=3.0, valid_every=1, curve_points=0),
                    out_dir=tmp_path / "resumed", resume=True, progress=False)
    assert resumed.selected_step == best_step and _same_weights(resumed.model, best.model)
    with pytest.raises(UserError, match="checkpoint"):
        TrainConfig(steps=3, checkpoint="median")


def test_resume_with_missing_or_foreign_optimizer_state_is_a_user_error(tmp_path: Path, double_family: type) -> None:
    train(_model(), make_clips(), None, _cfg(steps=3), out_dir=tmp_path, progress=False)
    opt_file = tmp_path / "optim-00000003.pt"
    opt_file.rename(tmp_path / "moved.pt")
    with pytest.raises(UserError, match="optim-00000003.pt is missing"):
        train(_model(), make_clips(), None, _cfg(steps=6), out_dir=tmp_path, resume=True, progress=False)
    torch.save({"format": "ddspbench.optim/1", "step": 2}, opt_file)
    with pytest.raises(UserError, match="not the optimizer state of step 3"):
        train(_model(), make_clips(), None, _cfg(steps=6), out_dir=tmp_path, resume=True, progress=False)


def test_resume_without_checkpoint_starts_fresh_and_rejects_other_model(tmp_path: Path, double_family: type) -> None:
    res = train(_model(), make_clips(), None, _cfg(steps=3), out_dir=tmp_path, resume=True, progress=False)
    assert res.start_step == 0 and res.steps == 3
    with pytest.raises(UserError, match="not the train_test_double model"):
        train(TinySynth(hidden=7), make_clips(), None, _cfg(steps=6), out_dir=tmp_path, resume=True, progress=False)


def _nan_at(step: int, kind: str) -> Any:
    base = mss_loss_fn()
    calls = {"n": 0}

    def loss_fn(out: dict[str, Any], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        calls["n"] += 1
        loss, logs = base(out, batch)
        if calls["n"] == step:
            if kind == "loss":
                loss = loss * torch.tensor(float("nan"))
            else:  # finite loss, NaN gradient: d/dx [0 * sqrt(0 * x)] = 0 * inf
                loss = loss + 0.0 * torch.sqrt(out["audio"].abs().sum() * 0.0)
        return loss, logs

    return loss_fn


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path: Path, double_family: type, kind: str) -> None:
    clips = make_clips()
    with pytest.raises(TrainingDiverged, match="diverged at step 7") as info:
        train(_model(), clips, None, _cfg(steps=20), loss_fn=_nan_at(7, kind), out_dir=tmp_path / "x", progress=False)
    assert str(info.value).count("\n") == 0
    assert info.value.step == 7 and info.value.checkpoint_step == 5
    kept, meta = load_checkpoint(tmp_path / "x" / LAST_CKPT)
    assert meta["train"]["step"] == 5
    clean = train(_model(), clips, None, _cfg(steps=5), out_dir=tmp_path / "y", progress=False)
    assert _same_weights(kept, clean.model)


def test_frozen_parameters_are_untouched() -> None:
    model = _model()
    model.inp.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = train(model, make_clips(), None, _cfg(steps=5, weight_decay=0.5), progress=False)
    after = res.model.state_dict()
    assert torch.equal(after["inp.weight"], before["inp.weight"])
    assert torch.equal(after["inp.bias"], before["inp.bias"])
    assert not torch.equal(after["out.weight"], before["out.weight"])


def test_custom_loss_fn_logs_go_to_history() -> None:
    seen: list[set[str]] = []

    def loss_fn(out: dict[str, Any], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        seen.append(set(batch))
        loss = (out["audio"] - batch["audio"]).abs().mean()
        return loss, {"l1": float(loss.detach())}

    res = train(_model(), make_clips(), None, _cfg(steps=3), loss_fn=loss_fn, progress=False)
    assert seen[0] == {"audio", "f0_hz", "loudness_db"}
    assert all(r["l1"] == pytest.approx(r["loss"]) for r in res.history)


def test_validation_mss_is_deterministic_and_restores_mode() -> None:
    model, clips = _model(), make_clips(5)
    model.train()
    a = validation_mss(model, clips, batch_size=2)
    b = validation_mss(model, clips, batch_size=2)
    assert a == b and a > 0 and model.training


def test_frames_crop_and_lr_decay() -> None:
    res = train(_model(), make_clips(frames=48), None, _cfg(steps=4, frames=20, decay_every=2, gamma=0.5), progress=False)
    assert [r["lr"] for r in res.history] == pytest.approx([1e-2, 5e-3, 5e-3, 2.5e-3])


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="batch_size"):
        TrainConfig(steps=10, batch_size=0)
    with pytest.raises(UserError, match="unknown device"):
        train(_model(), make_clips(), None, _cfg(device="tpu"), progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            train(_model(), make_clips(), None, _cfg(device="cuda"), progress=False)
    with pytest.raises(UserError, match="too short for the MSS loss"):
        train(_model(), make_clips(), None, _cfg(frames=16), progress=False)
    with pytest.raises(UserError, match="resume needs"):
        train(_model(), make_clips(), None, _cfg(), resume=True, progress=False)
    frozen = _model().requires_grad_(False)
    with pytest.raises(UserError, match="no trainable parameters"):
        train(frozen, make_clips(), None, _cfg(), progress=False)


REAL_TINY = {
    "hpn": {"hidden": 8, "n_harmonics": 8, "n_bands": 8},
    "wavetable": {"hidden": 8, "n_bands": 8},
    "ddx7": {"hidden": 8, "n_blocks": 1},
}


@pytest.mark.parametrize("family", sorted(REAL_TINY))
def test_real_family_resume_and_round_trip(tmp_path: Path, family: str) -> None:
    """The registered families (tiny custom widths) through the loop: seeded noise makes resume exact."""
    from ddspbench.suite.catalog import load_catalog

    load_catalog()
    if family not in FAMILIES:
        pytest.skip(f"family {family} not registered yet")

    def build() -> nn.Module:
        torch.manual_seed(0)
        return FAMILIES.get(family)(**REAL_TINY[family])

    clips, valid = make_clips(n=6), make_clips(2, seed=1)
    kw: dict[str, Any] = {"checkpoint_every": 3, "valid_every": 3, "lr": 3e-3}
    full = train(build(), clips, valid, _cfg(steps=6, **kw), out_dir=tmp_path / "a", progress=False)
    train(build(), clips, valid, _cfg(steps=3, **kw), out_dir=tmp_path / "b", progress=False)
    resumed = train(build(), clips, valid, _cfg(steps=6, **kw), out_dir=tmp_path / "b", resume=True, progress=False)
    assert _same_weights(resumed.model, full.model)
    assert resumed.history == full.history
    loaded, meta = load_checkpoint(tmp_path / "a" / LAST_CKPT)
    assert type(loaded) is type(full.model) and loaded.config == full.model.config
    assert _same_weights(loaded, full.model) and meta["train"]["step"] == 6
    assert validation_mss(loaded, valid) == pytest.approx(full.last_valid, rel=1e-5)


def test_progress_bar_is_quiet_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    train(_model(), make_clips(), make_clips(2, seed=1), _cfg(steps=3, valid_every=2), progress=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_fresh_run_clears_stale_files_and_empty_valid_is_none(tmp_path: Path, double_family: type) -> None:
    train(_model(), make_clips(), make_clips(2, seed=1), _cfg(steps=2), out_dir=tmp_path, progress=False)
    assert (tmp_path / BEST_CKPT).is_file()
    res = train(_model(), make_clips(), make_clips(2).subset(slice(0, 0)), _cfg(steps=2), out_dir=tmp_path, progress=False)
    assert res.best_checkpoint is None and res.last_valid is None
    assert not (tmp_path / BEST_CKPT).exists() and (tmp_path / LAST_CKPT).is_file()
