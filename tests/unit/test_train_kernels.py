"""The compiled training kernels compute the same maths as the tensor code (issue 13, item 3).

References written here: the harmonic sum and its gradient straight from the definition in float64,
and the MSS by the plain tensor path (``suite.metrics.mss.KERNELS = False``), whose autograd
gradient is the reference for the fused kernel's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

import ddspbench.baselines.dsp as dsp
import ddspbench.suite.metrics.mss as mss_mod
from ddspbench.baselines.hpn import HarmonicPlusNoise
from ddspbench.suite.train import forward_batch


@pytest.fixture
def paths() -> Iterator[None]:
    saved = dsp.BANK_KERNELS, mss_mod.KERNELS
    yield
    dsp.BANK_KERNELS, mss_mod.KERNELS = saved


def _set(on: bool) -> None:
    dsp.BANK_KERNELS = on
    mss_mod.KERNELS = on


def _bank_f64(phase: torch.Tensor, amps: torch.Tensor) -> torch.Tensor:
    """``sum_k a_k[t] sin(k phase[n])`` in float64, amplitudes held per frame."""
    b, t, k = amps.shape
    ph = phase.double().view(b, t, -1, 1) * torch.arange(1, k + 1, dtype=torch.float64)
    return (torch.sin(ph) * amps.double().unsqueeze(2)).sum(-1).reshape(b, -1)


def _bank_inputs(b: int = 3, t: int = 20, k: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(b, t * 64, generator=g) * (2 * math.pi)
    amps = torch.rand(b, t, k, generator=g)
    up = torch.randn(b, t * 64, generator=g)
    return phase, amps, up


@pytest.mark.parametrize("k", [1, 2, 100])
def test_bank_kernel_matches_definition(paths: None, k: int) -> None:
    phase, amps, up = _bank_inputs(k=k)
    ref_amps = amps.double().requires_grad_()
    ref = _bank_f64(phase, ref_amps)
    ref.backward(up.double())
    results = {}
    for on in (False, True):
        _set(on)
        a = amps.clone().requires_grad_()
        y = dsp.harmonic_bank(phase, a, torch.arange(1, k + 1, dtype=torch.float32))
        y.backward(up)
        assert a.grad is not None
        results[on] = (y.detach().double(), a.grad.double())
    scale_y, scale_g = ref.detach().abs().max(), ref_amps.grad.abs().max()  # type: ignore[union-attr]
    err = {on: (float((y - ref.detach()).abs().max() / scale_y), float((g - ref_amps.grad).abs().max() / scale_g))
           for on, (y, g) in results.items()}
    assert err[True][0] < 1e-6 and err[True][1] < 1e-6  # the kernels: float64 inside, float32 out
    assert err[True][0] <= err[False][0] + 1e-7 and err[True][1] <= err[False][1] + 1e-7
    # and the two float32 paths agree to float32 tolerance
    assert torch.allclose(results[True][0], results[False][0], rtol=0, atol=1e-4 * float(scale_y))


def test_bank_kernel_only_for_training_on_cpu_float32(paths: None) -> None:
    _set(True)
    phase, amps, _ = _bank_inputs(t=4)
    assert dsp._use_bank_kernels(phase, amps.requires_grad_())
    assert not dsp._use_bank_kernels(phase, amps.detach())  # inference: the tensor path
    assert not dsp._use_bank_kernels(phase.double(), amps.double().requires_grad_())
    assert not dsp._use_bank_kernels(phase.requires_grad_(), amps)  # a phase gradient needs the tensor path
    with torch.no_grad():
        assert not dsp._use_bank_kernels(phase.detach(), amps)
    _set(False)
    assert not dsp._use_bank_kernels(phase.detach(), amps)


def _mss_grad(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, on: bool) -> tuple[torch.Tensor, torch.Tensor]:
    _set(on)
    bb = b.clone().requires_grad_()
    per = mss_mod.mss_per_clip(a, bb)
    (per * w).sum().backward()
    assert bb.grad is not None
    return per.detach(), bb.grad


def test_mss_kernel_equals_autograd(paths: None) -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 8000, generator=g) * 0.1
    b = torch.randn(3, 8000, generator=g) * 0.1
    b[1, 2000:4000] = 0.0  # silent stretches: bins of exactly zero magnitude (abs' subgradient is 0)
    w = torch.rand(3, generator=g)
    v0, g0 = _mss_grad(a, b, w, on=False)
    v1, g1 = _mss_grad(a, b, w, on=True)
    assert torch.allclose(v1, v0, rtol=1e-5, atol=0)
    assert float((g1 - g0).norm() / g0.norm()) < 1e-5
    # symmetric: with the differentiable signal first the kernel still serves, with the same values
    _set(True)
    bb = b.clone().requires_grad_()
    per = mss_mod.mss_per_clip(bb, a)
    (per * w).sum().backward()
    assert torch.allclose(per.detach(), v0, rtol=1e-5, atol=0)
    assert bb.grad is not None and float((bb.grad - g0).norm() / g0.norm()) < 1e-5
    # batch mean and MSSLoss take the kernel too
    assert torch.allclose(mss_mod.MSSLoss()(a, b.clone().requires_grad_()).detach(), v0.mean(), rtol=1e-5)


def _loss_grads(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = mss_mod.MSSLoss()(batch["audio"], forward_batch(model, batch, 7)["audio"])
    loss.backward()
    return float(loss.detach()), {n: p.grad.detach().double().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_training_step_loss_and_gradients_unchanged(paths: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole HpN step: the kernels' loss and gradients equal the reference's to float32 tolerance.

    The reference is the tensor path with the harmonic sum evaluated in float64 from the same float32
    phase (:func:`_bank_f64`). The MSS log term makes the gradient sensitive to the rounding of quiet
    bins: the float32 tensor path's own ``sin(float32(k * phase))`` moves it by about 1e-3, so the test
    also checks that the kernels sit much closer to the reference than that.
    """
    torch.manual_seed(0)
    model = HarmonicPlusNoise(hidden=16).train()
    g = torch.Generator().manual_seed(3)
    t = 200
    f0 = 220.0 * 2.0 ** torch.rand(2, 1, generator=g) * torch.ones(2, t)
    batch = {"f0_hz": f0, "loudness_db": -40.0 + 5.0 * torch.randn(2, t, generator=g),
             "audio": 0.1 * torch.randn(2, 64 * t, generator=g)}
    _set(False)
    loss_t, grads_t = _loss_grads(model, batch)
    _set(True)
    loss_k, grads_k = _loss_grads(model, batch)
    _set(False)
    monkeypatch.setattr(dsp, "harmonic_bank", lambda phase, amps, harmonics=None: _bank_f64(phase, amps).float())
    loss_r, grads_r = _loss_grads(model, batch)
    assert loss_k == pytest.approx(loss_r, rel=1e-6)
    assert loss_k == pytest.approx(loss_t, rel=1e-6)

    def rel(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        return max(float((a[n] - b[n]).norm() / b[n].norm()) for n in b)

    assert rel(grads_k, grads_r) < 1e-4
    assert rel(grads_k, grads_r) < 0.2 * rel(grads_t, grads_r)


def test_kernels_split_over_threads_and_survive_a_fork(paths: None) -> None:
    """Two threads give the same sums as one; a forked child (sweep workers) rebuilds the thread pool."""
    import multiprocessing as mp

    from ddspbench.baselines._train_kernels import bank_forward

    phase, amps, _ = _bank_inputs(b=4, t=3, k=10)
    ph, am = phase.view(4, 3, 64).numpy(), amps.numpy()
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = bank_forward(ph, am)
        torch.set_num_threads(2)
        two = bank_forward(ph, am)  # creates the pool in this process
    finally:
        torch.set_num_threads(prev)
    assert (one == two).all()
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        child = pool.apply_async(_child_bank, (ph, am)).get(timeout=60)
    assert (child == one).all()


def _child_bank(ph, am):  # type: ignore[no-untyped-def]
    from ddspbench.baselines._train_kernels import bank_forward

    torch.set_num_threads(2)
    return bank_forward(ph, am)
