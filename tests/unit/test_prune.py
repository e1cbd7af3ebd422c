"""Structured pruning: the GRU pruning function, exactness on dead units, real size and speed drops."""

from __future__ import annotations

import statistics
import time

import pytest
import torch
from torch import nn

from ddspbench.compressors import count_params, structured_prune
from ddspbench.compressors._base import clone_model
from ddspbench.compressors._gru import GRUAwareImportance, GRUPruner, gru_unit_importance, opaque_gru_tracing
from ddspbench.suite.catalog import load_catalog
from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import FAMILIES, SIZES

# One intra-op thread: tiny models are fastest so, and parallel runs do not oversubscribe the CPU.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def _catalog() -> None:
    load_catalog()


def _kill_gru_units(gru: nn.GRU, units: list[int]) -> None:
    """Zero every weight of the given hidden units: their output stays exactly 0 from a zero state."""
    h = gru.hidden_size
    rows = [u + g * h for u in units for g in range(3)]
    with torch.no_grad():
        gru.weight_ih_l0[rows] = 0
        gru.weight_hh_l0[rows] = 0
        gru.weight_hh_l0[:, units] = 0
        gru.bias_ih_l0[rows] = 0
        gru.bias_hh_l0[rows] = 0


def test_gru_pruner_slices_gates_and_recurrence_exactly() -> None:
    torch.manual_seed(0)
    gru = nn.GRU(6, 8, batch_first=True)
    dead = [1, 4, 6]
    _kill_gru_units(gru, dead)
    x = torch.randn(2, 20, 6)
    full_out, _ = gru(x)
    GRUPruner().prune_out_channels(gru, dead)
    keep = [i for i in range(8) if i not in dead]
    assert gru.hidden_size == 5 and gru.weight_hh_l0.shape == (15, 5) and gru.weight_ih_l0.shape == (15, 6)
    out, h = gru(x)
    torch.testing.assert_close(out, full_out[..., keep], atol=1e-6, rtol=1e-6)
    assert torch.all(full_out[..., dead] == 0)


def test_gru_pruner_input_side_drops_columns() -> None:
    torch.manual_seed(0)
    gru = nn.GRU(6, 4, batch_first=True)
    x = torch.randn(1, 5, 6)
    x[..., [0, 3]] = 0  # inputs that carry nothing
    ref, _ = gru(x)
    GRUPruner().prune_in_channels(gru, [0, 3])
    assert gru.input_size == 4
    out, _ = gru(x[..., [1, 2, 4, 5]])
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_gru_unit_importance_is_zero_for_dead_units() -> None:
    torch.manual_seed(0)
    gru = nn.GRU(4, 6)
    _kill_gru_units(gru, [2])
    score = gru_unit_importance(gru)
    assert score[2] == 0 and bool((score[[0, 1, 3, 4, 5]] > 0).all())


def test_opaque_tracing_restores_the_real_gru() -> None:
    gru = nn.GRU(3, 2, batch_first=True)
    x = torch.randn(1, 4, 3)
    ref, _ = gru(x)
    with opaque_gru_tracing(gru):
        fake, _ = gru(x)
    assert not torch.allclose(fake, ref)
    torch.testing.assert_close(gru(x)[0], ref)


def test_pruning_dead_gru_units_leaves_the_output_unchanged() -> None:
    """Zero 8 of 32 GRU units (and the output MLP's columns that read them), prune only the GRU by
    25% (every Linear kept): the importance picks exactly those units and the audio is unchanged
    (max abs diff < 1e-5)."""
    torch.manual_seed(0)
    model = FAMILIES.get("hpn")(hidden=32).eval()
    dead = list(range(0, 32, 4))
    _kill_gru_units(model.decoder.gru, dead)
    with torch.no_grad():
        model.decoder.out_mlp[0].weight[:, dead] = 0
    f0 = torch.linspace(200, 400, 40)[None]
    loud = torch.full((1, 40), -25.0)
    ref = model(f0, loud, state=model.init_state(1, seed=3))["audio"]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".heads." not in n]
    pruned = structured_prune(clone_model(model), 0.25, keep=linears)
    assert pruned.config["widths"]["gru"] == 24
    assert pruned.config["widths"]["f0_mlp"] == [32, 32, 32]  # nothing else pruned
    out = pruned(f0, loud, state=pruned.init_state(1, seed=3))["audio"]
    assert (out - ref).abs().max().item() < 1e-5


def test_pruned_model_rebuilds_from_its_config() -> None:
    torch.manual_seed(0)
    model = FAMILIES.get("hpn")(hidden=32).eval()
    pruned = structured_prune(clone_model(model), 0.5)
    w = pruned.config["widths"]
    assert w == {"f0_mlp": [16, 16, 16], "loudness_mlp": [16, 16, 16], "gru": 16, "out_mlp": [16, 16, 16]}
    assert pruned.decoder.gru.input_size == 32
    assert [h.in_features for h in pruned.decoder.heads.values()] == [16, 16, 16]
    assert [h.out_features for h in pruned.decoder.heads.values()] == [1, 100, 65]
    again = FAMILIES.get("hpn")(**pruned.config)
    again.load_state_dict(pruned.state_dict())
    assert count_params(again) == count_params(pruned) < count_params(model)


def test_importance_ranks_gru_units_by_their_own_weights() -> None:
    import torch_pruning as tp

    torch.manual_seed(0)
    model = FAMILIES.get("hpn")(hidden=16).eval()
    with torch.no_grad():
        model.decoder.gru.weight_hh_l0[:, 5] *= 100  # unit 5 is read strongly by the recurrence
    f0, loud = torch.full((1, 8), 220.0), torch.full((1, 8), -20.0)
    with opaque_gru_tracing(model.decoder):
        dg = tp.DependencyGraph().build_dependency(
            model.decoder, (f0, loud), forward_fn=lambda _d, x: model(*x),
            output_transform=lambda o: list(o["controls"].values()),
            customized_pruners={nn.GRU: GRUPruner()}, verbose=False,
        )
    pruner = dg.get_pruner_of_module(model.decoder.gru)
    group = dg.get_pruning_group(model.decoder.gru, pruner.prune_out_channels, list(range(16)))
    score = GRUAwareImportance()(group)
    assert score is not None and int(score.argmax()) == 5


def test_bad_ratio_is_a_user_error() -> None:
    model = FAMILIES.get("hpn")(hidden=8)
    with pytest.raises(UserError, match="ratio"):
        structured_prune(model, 1.0)


def _median_time(model: nn.Module, f0: torch.Tensor, loud: torch.Tensor) -> float:
    t0 = time.perf_counter()
    model(f0, loud)
    return time.perf_counter() - t0


def test_pruned_hpn_full_is_smaller_and_faster() -> None:
    """HpN full pruned at ratio 0.5: fewer parameters and faster offline inference.

    One process, one thread, 100 frames, the two models timed alternately (7 rounds after a warm-up);
    the pruned model's median must be under 0.8x the full one's (measured about 0.3x).
    """
    torch.manual_seed(0)
    full = SIZES.get("hpn/full")().eval()
    pruned = structured_prune(clone_model(full), 0.5).eval()
    assert count_params(pruned) < 0.35 * count_params(full)
    f0, loud = torch.full((1, 100), 220.0), torch.full((1, 100), -20.0)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            _median_time(full, f0, loud), _median_time(pruned, f0, loud)
            t_full, t_pruned = [], []
            for _ in range(7):
                t_full.append(_median_time(full, f0, loud))
                t_pruned.append(_median_time(pruned, f0, loud))
    finally:
        torch.set_num_threads(old)
    ratio = statistics.median(t_pruned) / statistics.median(t_full)
    assert ratio < 0.8, f"pruned/full time ratio {ratio:.2f}"


def test_pruning_a_weight_normed_ddx7_leaves_the_original_working() -> None:
    """DDX7's weight-normed convs are folded for pruning on a rebuilt copy, never on the original."""
    from ddspbench.compressors import get_compressor
    from ddspbench.compressors._base import CompressContext

    torch.manual_seed(0)
    teacher = FAMILIES.get("ddx7")(n_blocks=3, hidden=16).eval()
    f0, loud = torch.full((1, 20), 330.0), torch.full((1, 20), -20.0)
    ref = teacher(f0, loud, state=teacher.init_state(1, seed=0))["audio"]
    res = get_compressor("prune").compress(teacher, CompressContext(), ratio=0.5, finetune_steps=0)
    assert res.model.config["channels"] == [8, 8, 8] and res.model.config["trunk"] == 8
    again = teacher(f0, loud, state=teacher.init_state(1, seed=0))["audio"]
    torch.testing.assert_close(again, ref, rtol=0, atol=0)


@pytest.mark.parametrize("family", ["hpn", "ddx7"])
def test_a_frozen_model_is_still_pruned(family: str) -> None:
    """torch-pruning traces autograd: a frozen teacher must still be pruned (into a new, trainable candidate)."""
    torch.manual_seed(0)
    model = FAMILIES.get(family)(**({"hidden": 32} if family == "hpn" else {})).eval()
    frozen = clone_model(model)
    for p in frozen.parameters():
        p.requires_grad_(False)
    pruned = structured_prune(frozen, 0.5)
    assert count_params(pruned) < count_params(model)
    assert all(p.requires_grad for p in pruned.decoder.parameters())  # the candidate is fine-tuned next
