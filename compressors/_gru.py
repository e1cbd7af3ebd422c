"""Structured pruning of ``nn.GRU`` with torch-pruning 1.6.1, which has no GRU support of its own.

Why torch-pruning fails on a GRU (REFERENCE §6: ``TypeError: unsupported operand type(s) for +: 'int'
and 'NoneType'``, even when the GRU is ignored): it builds its dependency graph by walking the autograd
graph, and on CPU a GRU's autograd graph is the recurrence unrolled into per-time-step split, sigmoid
and tanh nodes, whose channel counts it cannot infer. Three pieces fix it:

* :class:`GRUPruner`, a ``BasePruningFunc`` registered through ``customized_pruners={nn.GRU: ...}``,
  slices real weights: pruning hidden unit ``i`` removes rows ``i``, ``H+i`` and ``2H+i`` (the reset,
  update and new gates) of ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` and column ``i`` of
  ``weight_hh``; pruning input ``j`` removes column ``j`` of ``weight_ih``.
* :func:`opaque_gru_tracing` hides the recurrence while the graph is traced: each GRU temporarily
  computes ``x @ W^T`` with a detached ``(H, input)`` matrix, an op whose autograd node links the GRU's
  output straight to its input, so torch-pruning sees a layer ``input -> H`` exactly like a Linear and
  propagates the input side (the concatenated MLP outputs) and the output side (the next layer's
  input columns) through its own index mapping.
* :class:`GRUAwareImportance`: torch-pruning's magnitude importance scores only the layers it knows,
  so a GRU unit would be judged by the next layer's input column alone. This importance adds, for
  hidden unit ``i``, ``sum_g ||W_ih[gH+i,:]||^2 + ||W_hh[gH+i,:]||^2 + b_ih[gH+i]^2 + b_hh[gH+i]^2``
  over the three gates ``g`` plus ``||W_hh[:,i]||^2`` (how much the recurrence reads unit ``i``), and
  for input ``j`` of a GRU, ``||W_ih[:,j]||^2``; the group score is the sum over the group's layers,
  normalised by its mean (only the ranking inside a group matters for per-layer pruning).

Only single-layer, unidirectional GRUs are handled (the DDSP decoders' shape).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

__all__ = ["GRUPruner", "GRUAwareImportance", "opaque_gru_tracing", "gru_unit_importance"]


def _check(layer: Any) -> None:
    if not isinstance(layer, nn.GRU):
        raise TypeError(f"GRUPruner got a {type(layer).__name__}")
    if layer.num_layers != 1 or layer.bidirectional:
        raise NotImplementedError("GRU pruning handles single-layer unidirectional GRUs only")


def _keep(total: int, idxs: Sequence[int]) -> torch.Tensor:
    drop = set(int(i) for i in idxs)
    return torch.tensor([i for i in range(total) if i not in drop], dtype=torch.long)


def _param(t: torch.Tensor, like: Any) -> nn.Parameter:
    return nn.Parameter(t.contiguous().clone(), requires_grad=like.requires_grad)


class GRUPruner(tp.pruner.function.BasePruningFunc):
    """torch-pruning pruning function for ``nn.GRU`` (see the module docstring)."""

    TARGET_MODULES = nn.GRU

    def prune_out_channels(self, layer: Any, idxs: Sequence[int]) -> nn.Module:
        """Remove hidden units ``idxs``: their gate rows everywhere and their recurrent columns."""
        _check(layer)
        h = layer.hidden_size
        keep = _keep(h, idxs)
        rows = torch.cat([keep + g * h for g in range(3)])
        with torch.no_grad():
            layer.weight_ih_l0 = _param(layer.weight_ih_l0[rows], layer.weight_ih_l0)
            layer.weight_hh_l0 = _param(layer.weight_hh_l0[rows][:, keep], layer.weight_hh_l0)
            if layer.bias:
                layer.bias_ih_l0 = _param(layer.bias_ih_l0[rows], layer.bias_ih_l0)
                layer.bias_hh_l0 = _param(layer.bias_hh_l0[rows], layer.bias_hh_l0)
        layer.hidden_size = int(keep.numel())
        return layer

    def prune_in_channels(self, layer: Any, idxs: Sequence[int]) -> nn.Module:
        """Remove input features ``idxs`` (columns of ``weight_ih``)."""
        _check(layer)
        keep = _keep(layer.input_size, idxs)
        with torch.no_grad():
            layer.weight_ih_l0 = _param(layer.weight_ih_l0[:, keep], layer.weight_ih_l0)
        layer.input_size = int(keep.numel())
        return layer

    def get_out_channels(self, layer: Any) -> int:
        return int(layer.hidden_size)

    def get_in_channels(self, layer: Any) -> int:
        return int(layer.input_size)


@contextmanager
def opaque_gru_tracing(model: nn.Module) -> Iterator[None]:
    """While active, every ``nn.GRU`` in ``model`` runs a traceable stand-in (see module docstring).

    The stand-in returns ``(x @ W^T, zeros)`` with the GRU's output shapes; it is only for building
    torch-pruning's dependency graph, never for computing anything.
    """
    grus = [m for m in model.modules() if isinstance(m, nn.GRU)]

    def stand_in(gru: Any) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
        def forward(x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
            w = gru.weight_ih_l0[: gru.hidden_size].detach()
            y = F.linear(x, w)
            batch = x.shape[0] if gru.batch_first else x.shape[1]
            return y, torch.zeros(1, batch, gru.hidden_size, dtype=x.dtype, device=x.device)

        return forward

    for g in grus:
        _check(g)
        g.forward = stand_in(g)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for g in grus:
            del g.forward


def gru_unit_importance(layer: Any, p: int = 2) -> torch.Tensor:
    """Per hidden unit: ``sum`` over gates of its ih/hh rows and biases, plus its hh column (p-norm^p)."""
    h = layer.hidden_size
    w_ih = layer.weight_ih_l0.detach().abs().pow(p).sum(1).view(3, h).sum(0)
    w_hh_rows = layer.weight_hh_l0.detach().abs().pow(p).sum(1).view(3, h).sum(0)
    w_hh_cols = layer.weight_hh_l0.detach().abs().pow(p).sum(0)
    score = w_ih + w_hh_rows + w_hh_cols
    if layer.bias:
        score = score + layer.bias_ih_l0.detach().abs().pow(p).view(3, h).sum(0)
        score = score + layer.bias_hh_l0.detach().abs().pow(p).view(3, h).sum(0)
    return score


class GRUAwareImportance(tp.importance.Importance):
    """Group L2 magnitude importance that also scores GRU units (see the module docstring).

    Args:
        p: norm degree.
    """

    def __init__(self, p: int = 2) -> None:
        self.p = p
        self._base = tp.importance.GroupMagnitudeImportance(p=p, group_reduction="sum", normalizer=None)
        self._gru = GRUPruner()

    @torch.no_grad()
    def __call__(self, group: tp.dependency.Group) -> torch.Tensor | None:  # type: ignore[override]
        base = self._base(group)
        total = None if base is None else base.clone()
        for i, (dep, idxs) in enumerate(group):
            layer: Any = dep.layer
            if not isinstance(layer, nn.GRU):
                continue
            root_idxs = group[i].root_idxs
            if any(r is None for r in root_idxs):
                continue
            fn = dep.pruning_fn
            if getattr(fn, "__func__", None) is GRUPruner.prune_out_channels:
                local = gru_unit_importance(layer, self.p)[list(idxs)]
            elif getattr(fn, "__func__", None) is GRUPruner.prune_in_channels:
                local = layer.get_parameter("weight_ih_l0").detach().abs().pow(self.p).sum(0)[list(idxs)]
            else:
                continue
            if total is None:
                total = torch.zeros(len(group[0].idxs), dtype=torch.float32)
            total.scatter_add_(0, torch.tensor(root_idxs, dtype=torch.long), local.float())
        if total is None:
            return None
        mean = total.mean()
        return total / mean if float(mean) > 0 else total
