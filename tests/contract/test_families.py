"""Contract tests over every registered family size (docs/CONTRACTS.md, "Model families")."""

from __future__ import annotations

import math

import pytest
import torch

from ddspbench import baselines  # noqa: F401  (registers the families)
from ddspbench.suite.checkpoint import load_checkpoint, save_checkpoint
from ddspbench.suite.registry import FAMILIES, SIZES

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

ALL_SIZES = SIZES.list()
FRAMES = 48  # short inputs: full-size models are slow on 2 cores
STREAM_TOL = 1e-4  # max abs difference streaming vs offline, relative to the peak of the offline audio

# Exact totals of REFERENCE §2 (reverb included) and trainable counts where they differ.
REFERENCE_PARAMS: dict[str, tuple[int, int]] = {
    "hpn/full": (4_314_408, 4_314_408),
    "hpn/reduced": (23_512, 23_512),
    "wavetable/full": (4_283_608, 4_281_560),
    "wavetable/reduced": (32_392, 30_344),
    "ddx7/full": (415_764, 415_764),
    "ddx7/reduced": (67_924, 67_924),
}

_MODELS: dict[str, torch.nn.Module] = {}


def _model(name: str) -> torch.nn.Module:
    """One instance per size for the module (building the full sizes costs time); eval mode, fixed init."""
    if name not in _MODELS:
        torch.manual_seed(0)
        _MODELS[name] = SIZES.get(name)().eval()
    return _MODELS[name]


def _inputs(batch: int = 2, frames: int = FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(frames, dtype=torch.float32)
    f0 = torch.stack([220.0 + 30.0 * torch.sin(t / 7.0), 440.0 + 0.0 * t])[:batch]
    f0[:, frames // 3: frames // 3 + 3] = 0.0  # unvoiced frames
    loud = torch.stack([-40.0 + 10.0 * torch.cos(t / 5.0), -25.0 + 0.0 * t])[:batch]
    return f0, loud


def test_every_family_has_full_and_reduced() -> None:
    assert set(FAMILIES.list()) >= {"hpn", "wavetable", "ddx7"}
    for fam in FAMILIES.list():
        assert f"{fam}/full" in ALL_SIZES and f"{fam}/reduced" in ALL_SIZES


@pytest.mark.parametrize("name", ALL_SIZES)
def test_forward_shapes_and_finite(name: str) -> None:
    model = _model(name)
    f0, loud = _inputs()
    with torch.no_grad():
        out = model(f0, loud, model.init_state(2, seed=1))
    assert out["audio"].shape == (2, 64 * FRAMES)
    assert torch.isfinite(out["audio"]).all()
    assert out["audio"].abs().max() > 0
    assert set(out["controls"]) == set(model.control_names)
    for ctrl in out["controls"].values():
        assert ctrl.shape[:2] == (2, FRAMES) and torch.isfinite(ctrl).all()
    assert out["hidden"].shape[:2] == (2, FRAMES)
    assert model.family == name.split("/")[0]
    assert model.size_name == name.split("/")[1]


@pytest.mark.parametrize("name", ALL_SIZES)
def test_exact_parameter_counts(name: str) -> None:
    if name not in REFERENCE_PARAMS:
        pytest.skip("not a reference size")
    total, trainable = REFERENCE_PARAMS[name]
    params = list(_model(name).parameters())
    assert sum(p.numel() for p in params) == total
    assert sum(p.numel() for p in params if p.requires_grad) == trainable


@pytest.mark.parametrize("buffer", [64, 256, 512, 1024])
@pytest.mark.parametrize("name", ALL_SIZES)
def test_streaming_equals_offline(name: str, buffer: int) -> None:
    model = _model(name)
    frames = 64  # a multiple of every buffer's frame count (1, 4, 8, 16)
    f0, loud = _inputs(frames=frames)
    step = buffer // 64
    with torch.no_grad():
        offline = model(f0, loud, model.init_state(2, seed=7))["audio"]
        state = model.init_state(2, seed=7)
        parts = []
        for i in range(0, frames, step):
            out = model(f0[:, i: i + step], loud[:, i: i + step], state)
            state = out["state"]
            parts.append(out["audio"])
    streamed = torch.cat(parts, dim=1)
    assert streamed.shape == offline.shape
    peak = offline.abs().max().item()
    assert (streamed - offline).abs().max().item() <= STREAM_TOL * max(peak, 1.0)


@pytest.mark.parametrize("name", ALL_SIZES)
def test_same_seed_same_audio_other_seed_differs(name: str) -> None:
    model = _model(name)
    f0, loud = _inputs()
    with torch.no_grad():
        a = model(f0, loud, model.init_state(2, seed=3))["audio"]
        b = model(f0, loud, model.init_state(2, seed=3))["audio"]
        c = model(f0, loud, model.init_state(2, seed=4))["audio"]
    assert torch.equal(a, b)
    if any("noise" in n for n in model.control_names):
        assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", ALL_SIZES)
def test_checkpoint_round_trip(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = _model(name)
    path = save_checkpoint(model, tmp_path / "m.pt", {"note": "test"})
    loaded, meta = load_checkpoint(path)
    assert meta == {"note": "test"}
    assert type(loaded) is type(model) and loaded.config == model.config
    assert loaded.size_name == model.size_name
    f0, loud = _inputs()
    with torch.no_grad():
        a = model(f0, loud, model.init_state(2, seed=5))["audio"]
        b = loaded(f0, loud, loaded.init_state(2, seed=5))["audio"]
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ALL_SIZES)
def test_config_rebuilds_same_structure(name: str) -> None:
    model = _model(name)
    rebuilt = FAMILIES.get(model.family)(**model.config)
    assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == [(n, p.shape) for n, p in model.named_parameters()]
    assert rebuilt.sync_config() == model.config


@pytest.mark.parametrize("name", ALL_SIZES)
def test_gradients_reach_every_trainable_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = SIZES.get(name)() if name.endswith("reduced") else _model(name)
    model.train()
    try:
        f0, loud = _inputs(frames=16)
        out = model(f0, loud, model.init_state(2, seed=1))
        loss = out["audio"].pow(2).mean() + sum(c.pow(2).mean() for c in out["controls"].values())
        model.zero_grad(set_to_none=True)
        loss.backward()
        missing = [n for n, p in model.named_parameters()
                   if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
        assert not missing
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        assert all(dict(model.named_parameters())[n].grad is None for n in frozen)
    finally:
        model.eval()
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", ALL_SIZES)
def test_synth_controls_keys(name: str) -> None:
    model = _model(name)
    f0, loud = _inputs()
    with torch.no_grad():
        out = model(f0, loud)
        sc = model.synth_controls(out["controls"])
    assert tuple(sc) == tuple(model.control_names)
    for key, val in sc.items():
        assert val.shape == out["controls"][key].shape and (val > 0).all()


@pytest.mark.parametrize("name", ALL_SIZES)
def test_fresh_state_draws_noise_from_global_rng(name: str) -> None:
    model = _model(name)
    f0, loud = _inputs(batch=1)
    with torch.no_grad():
        torch.manual_seed(11)
        a = model(f0, loud)["audio"]
        torch.manual_seed(11)
        b = model(f0, loud)["audio"]
    assert torch.equal(a, b)


def test_hidden_width_option_builds_intermediate_size() -> None:
    for fam in FAMILIES.list():
        kwargs = {"channels": [32, 32]} if fam == "ddx7" else {"hidden": 64}
        model = FAMILIES.get(fam)(**kwargs)
        assert model.size_name == "custom"
        n = sum(p.numel() for p in model.parameters())
        assert REFERENCE_PARAMS[f"{fam}/reduced"][0] < n < REFERENCE_PARAMS[f"{fam}/full"][0] or fam == "ddx7"
        f0, loud = _inputs(frames=8)
        with torch.no_grad():
            assert model(f0, loud)["audio"].shape == (2, 512)


def test_unknown_argument_or_bad_value_is_a_user_error() -> None:
    from ddspbench.suite.errors import UserError

    for fam in FAMILIES.list():
        with pytest.raises(UserError, match="bogus"):
            FAMILIES.get(fam)(bogus=1)
    with pytest.raises(UserError, match="guitar"):
        FAMILIES.get("ddx7")(instrument="guitar")
    with pytest.raises(UserError):
        FAMILIES.get("hpn")(n_bands=1)


@pytest.mark.parametrize("instrument", ["flute", "trumpet", "violin", "piano"])
def test_ddx7_instruments_keep_the_named_size(instrument: str) -> None:
    model = FAMILIES.get("ddx7")(instrument=instrument, hidden=64, n_blocks=3)
    assert model.size_name == "reduced" and model.config["instrument"] == instrument
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_PARAMS["ddx7/reduced"][0]
    f0, loud = _inputs(frames=8)
    with torch.no_grad():
        audio = model.eval()(f0, loud)["audio"]
    assert torch.isfinite(audio).all() and audio.abs().max() > 0


def test_sample_rate_constants() -> None:
    for fam in FAMILIES.list():
        cls = FAMILIES.get(fam)
        assert cls.sample_rate == 16_000 and cls.block_size == 64
        assert math.isclose(cls.sample_rate / cls.block_size, 250.0)


@pytest.mark.parametrize("name", [n for n in ALL_SIZES if n.endswith("/reduced")])
def test_low_precision_and_dynamic_int8_models_still_render(name: str) -> None:
    """bfloat16 weights (the synth runs in float32) and dynamic int8 Linear/GRU keep the interface."""
    import copy
    import warnings

    model = _model(name)
    f0, loud = _inputs(frames=16)
    with torch.no_grad():
        ref = model(f0, loud, model.init_state(2, seed=2))["audio"]
        half = copy.deepcopy(model).to(torch.bfloat16)
        out = half(f0, loud, half.init_state(2, seed=2))["audio"]
        assert out.shape == ref.shape and torch.isfinite(out).all()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear, torch.nn.GRU}, torch.qint8)
        qout = q(f0, loud, q.init_state(2, seed=2))["audio"]
        assert qout.shape == ref.shape and torch.isfinite(qout).all()
        assert (qout - ref).abs().max() < 0.5 * ref.abs().max()


@pytest.mark.parametrize("family", ["hpn", "wavetable"])
def test_heads_resized_in_place_then_synced_rebuild_from_checkpoint(family: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """DSP-aware pruning shrinks heads in place; the model keeps rendering and its checkpoint rebuilds it."""
    torch.manual_seed(0)
    model = FAMILIES.get(family)(hidden=8).eval()
    tonal = "harmonic_distribution" if family == "hpn" else "wave_attention"
    k = 30 if family == "hpn" else 20
    model.decoder.heads["noise_bands"] = torch.nn.Linear(8, 17)
    model.decoder.heads[tonal] = torch.nn.Linear(8, k)
    config = model.sync_config()
    assert config["n_bands"] == 17 and config["n_harmonics" if family == "hpn" else "n_wavetables"] == k
    f0, loud = _inputs(frames=8)
    with torch.no_grad():
        a = model(f0, loud, model.init_state(2, seed=1))["audio"]
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "p.pt"))
    with torch.no_grad():
        b = loaded(f0, loud, loaded.init_state(2, seed=1))["audio"]
    assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", ALL_SIZES)
def test_light_inference_path_equals_module_path(name: str) -> None:
    """Without autograd the families take a lighter path; with autograd (eval mode) the module path: same audio."""
    model = _model(name)
    f0, loud = _inputs(frames=4)
    with torch.no_grad():
        light = [model(f0[:, i: i + 1], loud[:, i: i + 1], model.init_state(2, seed=1))["audio"] for i in range(2)]
    with torch.enable_grad():
        full = [model(f0[:, i: i + 1], loud[:, i: i + 1], model.init_state(2, seed=1))["audio"].detach() for i in range(2)]
    for a, b in zip(light, full):
        assert torch.allclose(a, b, atol=1e-5 * max(1.0, b.abs().max().item()))


@pytest.mark.parametrize("name", ALL_SIZES)
def test_streaming_with_changing_buffer_sizes_equals_offline(name: str) -> None:
    model = _model(name)
    f0, loud = _inputs(frames=64)
    with torch.no_grad():
        offline = model(f0, loud, model.init_state(2, seed=9))["audio"]
        state, parts, i = model.init_state(2, seed=9), [], 0
        for step in (1, 20, 4, 1, 30, 8):
            out = model(f0[:, i: i + step], loud[:, i: i + step], state)
            state, i = out["state"], i + step
            parts.append(out["audio"])
    peak = offline.abs().max().item()
    assert (torch.cat(parts, dim=1) - offline).abs().max().item() <= STREAM_TOL * max(peak, 1.0)
