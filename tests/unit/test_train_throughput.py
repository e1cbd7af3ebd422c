"""Throughput changes of training (issue 21) give the numbers of the code they replace.

* the MSS training loss with cached target spectra and with one STFT of the prediction shared by several targets
  against :func:`suite.metrics.mss.mss` (the same loss and gradients);
* a teacher's controls without its synth (``fresh_controls``) against a full forward's;
* the plateau rule of early stopping (:func:`suite.train.plateau_stop`).
"""

from __future__ import annotations

import pytest
import torch

from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.metrics.mss import MSSLoss, TargetCache, mss
from ddspbench.suite.registry import SIZES

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def _catalog() -> None:
    load_catalog()


def _signals(seed: int, batch: int = 3, n: int = 4096) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000.0
    f = 200.0 + 400.0 * torch.rand(batch, 1, generator=g)
    return (0.3 * torch.sin(2 * torch.pi * f * t) + 0.05 * torch.randn(batch, n, generator=g)).float()


def _close(grad: torch.Tensor, ref: torch.Tensor, tol: float = 1e-6) -> None:
    """Float32 rounding: the gradient's error relative to its norm (summing two gradients before or after the STFT's
    backward moves single near-cancelling elements by more, relative to themselves)."""
    assert float((grad - ref).norm() / ref.norm()) < tol


def _grad(loss_of: object, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = pred.clone().requires_grad_(True)
    loss = loss_of(p)  # type: ignore[operator]
    loss.backward()
    return loss.detach(), p.grad.detach()


def test_cached_target_loss_matches_plain_mss_and_hits_the_cache() -> None:
    target, pred = _signals(0), _signals(1)
    crit = MSSLoss(cache_targets=True)
    ref_loss, ref_grad = _grad(lambda p: mss(target, p), pred)
    for _ in range(2):  # the second call takes every target spectrum from the cache
        loss, grad = _grad(lambda p: crit(target, p), pred)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
        _close(grad, ref_grad)
    assert crit.cache is not None and crit.cache.hits == 3 * 6 and crit.cache.misses == 3 * 6


def test_cache_keys_on_the_samples_and_stays_bounded() -> None:
    a, b = _signals(0), _signals(2)
    cache = TargetCache(max_bytes=1)
    crit = MSSLoss(cache_targets=True)
    crit.cache = cache
    pred = _signals(1).requires_grad_(True)
    crit(a, pred)
    loss_b = crit(b, pred)  # different clips: misses, and the right values
    torch.testing.assert_close(loss_b, mss(b, pred), rtol=1e-6, atol=0)
    assert cache.hits == 0 and len(cache._entries) <= 3  # bounded: only the last batch's rows are kept
    b2 = b.clone()
    b2[1, 100] += 1e-3
    assert TargetCache.digests(b2)[1] != TargetCache.digests(b)[1] and TargetCache.digests(b2)[0] == TargetCache.digests(b)[0]


def test_shared_prediction_stft_for_two_targets_matches_two_losses() -> None:
    target, teacher, pred = _signals(0), _signals(3), _signals(1)
    crit = MSSLoss(cache_targets=True)

    def separate(p: torch.Tensor) -> torch.Tensor:
        return 0.5 * mss(target, p) + 0.5 * mss(teacher, p)

    def shared(p: torch.Tensor) -> torch.Tensor:
        t, k = crit.terms(p, [(target, True), (teacher, False)])
        return 0.5 * t + 0.5 * k

    ref_loss, ref_grad = _grad(separate, pred)
    loss, grad = _grad(shared, pred)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
    _close(grad, ref_grad)


def test_terms_without_gradient_fall_back_to_plain_mss() -> None:
    target, pred = _signals(0), _signals(1)
    with torch.no_grad():
        (loss,) = MSSLoss(cache_targets=True).terms(pred, [(target, True)])
    assert float(loss) == float(mss(target, pred))


@pytest.mark.parametrize("size", ["hpn/reduced", "wavetable/reduced", "ddx7/reduced"])
def test_fresh_controls_equal_a_full_forward(size: str) -> None:
    torch.manual_seed(0)
    model = SIZES.get(size)().eval()
    g = torch.Generator().manual_seed(1)
    f0 = 200.0 + 300.0 * torch.rand(2, 40, generator=g)
    loud = -60.0 + 40.0 * torch.rand(2, 40, generator=g)
    with torch.no_grad():
        full = model(f0, loud)["controls"]
        fresh = model.fresh_controls(f0, loud)
    assert set(full) == set(fresh)
    for k in full:
        assert torch.equal(full[k], fresh[k]), k


def test_teacher_kernels_without_grad_agree_with_the_tensor_path() -> None:
    from ddspbench.baselines import dsp
    from ddspbench.baselines._train_kernels import harmonic_bank_f64

    g = torch.Generator().manual_seed(0)
    phase = (torch.rand(2, 20 * 64, generator=g) * 6.28).float()
    amps = torch.rand(2, 20, 100, generator=g) / 100
    with torch.no_grad():
        tensor = dsp.harmonic_bank(phase, amps)
        with dsp.kernels_without_grad():
            kern = dsp.harmonic_bank(phase, amps)
        exact = harmonic_bank_f64(phase, amps)
    assert not torch.equal(kern, tensor)  # the kernels did run
    # the kernels sit at float32 rounding of the exact sum; the tensor path within its own k * phase rounding of it
    assert float((kern - exact).abs().max()) < 1e-6 < float((tensor - exact).abs().max()) < 1e-4
    assert not dsp._BANK_KERNELS_NO_GRAD


def test_plateau_stop_rule() -> None:
    from ddspbench.suite.convergence import plateau_stop

    falling = [[i, 10.0 / i] for i in range(1, 12)]
    assert plateau_stop(falling, 3, 0.01) is None
    flat = [[i, 10.0 / i] for i in range(1, 6)] + [[i, 2.0] for i in range(6, 10)]
    assert plateau_stop(flat[:6], 3, 0.01) is None  # too few validations after the fall for a verdict
    stop = plateau_stop(flat, 3, 0.01)
    assert stop is not None and stop["step"] == 9 and "best-validation" in stop["rule"]
    # one lucky validation alone is smoothed away and does not count as progress either way
    lucky = [*flat[:-1], [9, 0.5]]
    assert plateau_stop(lucky, 3, 0.01) is not None
    assert plateau_stop(flat, 0, 0.01) is None


def test_training_stops_on_a_plateau_with_the_weights_of_a_shorter_run(tmp_path: object) -> None:
    from pathlib import Path

    from ddspbench.suite.train import TrainConfig, train, train_summary
    from tests.unit.test_train import _model, _same_weights, make_clips

    clips, valid = make_clips(), make_clips(4, seed=1, prefix="v")
    base = {"batch_size": 4, "lr": 1e-7, "valid_every": 1, "checkpoint_every": 100, "log_every": 1, "curve_points": 0,
            "checkpoint": "last"}
    out = Path(str(tmp_path)) / "run"
    res = train(_model(), clips, valid, TrainConfig(steps=30, early_stop_patience=2, early_stop_delta=0.01, **base),
                out_dir=out, progress=False)
    assert res.stopped is not None and res.steps == res.stopped["step"] < 30
    summary = train_summary(res)
    assert summary["steps"] == res.steps and summary["stopped_early"]["step"] == res.steps
    short = train(_model(), clips, valid, TrainConfig(steps=res.steps, **base), progress=False)
    assert _same_weights(res.model, short.model)  # stopping changes nothing about the steps that ran
    again = train(_model(), clips, valid, TrainConfig(steps=30, early_stop_patience=2, early_stop_delta=0.01, **base),
                  out_dir=out, resume=True, progress=False)
    assert again.steps == res.steps and again.stopped == res.stopped  # a stopped run stays stopped on resume


@pytest.mark.parametrize("hidden,inputs", [(16, 32), (5, 3)])
def test_gru_kernel_matches_torch_gru_values_and_gradients(hidden: int, inputs: int) -> None:
    from ddspbench.baselines._train_kernels import gru_cpu

    torch.manual_seed(0)
    gru = torch.nn.GRU(inputs, hidden, batch_first=True)
    x = torch.randn(3, 40, inputs)
    h0 = 0.5 * torch.randn(1, 3, hidden)
    dy, dh = torch.randn(3, 40, hidden), torch.randn(1, 3, hidden)

    def run(fn: object) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        gru.zero_grad()
        xx, hh = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
        y, hn = fn(xx, hh)  # type: ignore[operator]
        ((y * dy).sum() + (hn * dh).sum()).backward()
        return [y.detach(), hn.detach()], [xx.grad, hh.grad, *(p.grad.clone() for p in gru.parameters())]

    ref_out, ref_grads = run(gru)
    out, grads = run(lambda a, b: gru_cpu(gru, a, b))
    for o, r in zip(out, ref_out):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        _close(g, r, 1e-5)


def test_decoder_trains_through_the_gru_kernel_only_when_allowed() -> None:
    from ddspbench.baselines import dsp

    torch.manual_seed(0)
    model = SIZES.get("hpn/reduced")()
    g = torch.Generator().manual_seed(1)
    f0 = 200.0 + 300.0 * torch.rand(2, 30, generator=g)
    loud = -60.0 + 40.0 * torch.rand(2, 30, generator=g)
    assert dsp.use_gru_kernels(model.decoder.gru, torch.zeros(2, 30, 32))
    with torch.no_grad():
        assert not dsp.use_gru_kernels(model.decoder.gru, torch.zeros(2, 30, 32))  # evaluation keeps torch's GRU
        with dsp.kernels_without_grad():
            assert dsp.use_gru_kernels(model.decoder.gru, torch.zeros(2, 30, 32))
    model.train()
    k = model.fresh_controls(f0, loud)
    dsp.GRU_KERNELS = False
    try:
        t = model.fresh_controls(f0, loud)
    finally:
        dsp.GRU_KERNELS = True
    for name in k:
        torch.testing.assert_close(k[name], t[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", ["hpn/reduced", "ddx7/reduced"])
def test_a_training_step_gives_the_old_loss_and_gradients(size: str) -> None:
    """The whole step on fixed weights and batch: new path (GRU kernel, cached target spectra, second step a cache hit)
    against the old one (torch's GRU, the MSS computed afresh), per-parameter gradient error relative to its norm."""
    from ddspbench.baselines import dsp
    from ddspbench.suite.train import forward_batch

    torch.manual_seed(0)
    model = SIZES.get(size)().train()
    g = torch.Generator().manual_seed(2)
    t = torch.arange(60) / 250.0
    f0 = (200.0 + 300.0 * torch.rand(2, 1, generator=g)) * (1 + 0.01 * torch.sin(30 * t))
    loud = -50.0 + 30.0 * torch.sin(torch.pi * t / t[-1])[None].repeat(2, 1)
    batch = {"f0_hz": f0, "loudness_db": loud, "audio": _signals(4, batch=2, n=60 * 64)}

    def step(new: bool, crit: MSSLoss) -> tuple[torch.Tensor, list[torch.Tensor]]:
        dsp.GRU_KERNELS = new
        try:
            model.zero_grad(set_to_none=True)
            torch.manual_seed(7)  # DDX7's dropout
            out = forward_batch(model, batch, 1234)
            loss = crit(batch["audio"], out["audio"]) if new else mss(batch["audio"], out["audio"])
            loss.backward()
        finally:
            dsp.GRU_KERNELS = True
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    ref_loss, ref_grads = step(False, MSSLoss())
    crit = MSSLoss(cache_targets=True)
    for _ in range(2):
        loss, grads = step(True, crit)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0)
        # the log-magnitude term amplifies float32 rounding in a few parameters' gradients (bench_train.py measured
        # 3e-1 between two float32 paths of the harmonic bank); measured here: up to 1.2e-4
        for gr, r in zip(grads, ref_grads):
            _close(gr, r, 1e-3)


def test_torch_paths_turn_the_new_kernels_off_for_flop_counting() -> None:
    from ddspbench.baselines import dsp

    gru = torch.nn.GRU(4, 3, batch_first=True)
    x = torch.zeros(2, 5, 4)
    with dsp.torch_paths():
        assert not dsp.use_gru_kernels(gru, x)
        with torch.no_grad(), dsp.kernels_without_grad():
            assert not dsp.use_gru_kernels(gru, x)
            assert not dsp._use_bank_kernels(torch.zeros(1, 64), torch.zeros(1, 1, 3))
    assert dsp.use_gru_kernels(gru, x)


def test_step_flops_count_the_gru_as_torch_runs_it() -> None:
    from ddspbench.baselines import dsp
    from ddspbench.suite.compute import step_flops
    from ddspbench.suite.train import TrainConfig
    from tests.unit.test_train import make_clips

    torch.manual_seed(0)
    model = SIZES.get("hpn/reduced")()
    cfg = TrainConfig(steps=1, batch_size=2)
    counted = step_flops(model, make_clips(n=2, frames=48), cfg)
    dsp.GRU_KERNELS = False
    try:
        plain = step_flops(model, make_clips(n=2, frames=48), cfg)
    finally:
        dsp.GRU_KERNELS = True
    assert counted == plain > 0


@pytest.mark.parametrize("n_fft", [2048, 256, 64])
def test_training_stft_equals_torch_stft_with_the_same_gradient(n_fft: int) -> None:
    from ddspbench.suite.metrics import mss as mss_mod

    x = _signals(5, n=4096)
    g = torch.Generator().manual_seed(6)
    ref_in, new_in = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    mss_mod.KERNELS = False
    try:
        ref = mss_mod._spec(ref_in, n_fft)  # torch.stft
    finally:
        mss_mod.KERNELS = True
    new = mss_mod._spec(new_in, n_fft)
    assert torch.equal(new, ref) and new.stride() == ref.stride()
    w = torch.randn(ref.shape, dtype=torch.complex64, generator=g)
    (ref * w).real.sum().backward()
    (new * w).real.sum().backward()
    _close(new_in.grad, ref_in.grad, 1e-6)
