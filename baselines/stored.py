"""Decoder layers whose weight matrices are *stored* in int8 or bfloat16 and computed in float32.

This is the one definition of the quantized models the suite measures: the ``quantize`` compressor
(:mod:`compressors._quantize`) swaps a decoder's layers for these, eager PyTorch runs them as written
here, and the native engine (:mod:`baselines.native`) reads the stored arrays directly in its kernels.
So the quality measured in eager mode is the quality of what the engine times.

* ``int8``: weight-only, symmetric, per output channel (one row of a Linear/GRU matrix, one output
  channel of a conv): ``s_o = max_i |w_oi| / 127`` (1 for an all-zero row), ``q_oi = round(w_oi / s_o)``
  clamped to [-127, 127]; the layer computes ``y_o = s_o * sum_i q_oi x_i + b_o`` with float32
  activations (eager: ``x @ (q * s)^T + b``; the engine: the int8 dot product times ``s_o``).
* ``bf16``: the weights rounded to bfloat16 (8-bit mantissa), everything else float32.

Biases, LayerNorms, the synthesizer and the reverb stay float32. The stored weights are parameters
with ``requires_grad=False`` (counted, serialized at their stored size, loaded with
``weights_only=True``); the int8 scales are float32 buffers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["STORAGES", "StoredLinear", "StoredConv1d", "StoredGRU", "quantize_rows", "store_decoder",
           "stored_weights", "storage_of"]

STORAGES = ("int8", "bf16")


def quantize_rows(w: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-output-channel int8 of ``w`` (first axis = output channel): ``(q int8, scale float32)``."""
    w2 = w.detach().to(torch.float32).reshape(w.shape[0], -1)
    amax = w2.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(w2 / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(w.shape).contiguous(), scale.contiguous()


class _Stored(nn.Module):
    """Holds named weights in a storage format and serves their float32 values (cached while unchanged)."""

    storage: str

    def _store(self, name: str, w: Tensor, storage: str) -> None:
        if storage == "int8":
            q, scale = quantize_rows(w)
            self.register_parameter(name + "_q", nn.Parameter(q, requires_grad=False))
            self.register_buffer(name + "_scale", scale)
        elif storage == "bf16":
            self.register_parameter(name + "_q", nn.Parameter(w.detach().to(torch.bfloat16).contiguous(),
                                                              requires_grad=False))
            self.register_buffer(name + "_scale", None)
        else:
            raise ValueError(f"unknown weight storage {storage!r}; known: {', '.join(STORAGES)}")
        self.storage = storage

    def stored(self, name: str) -> tuple[Tensor, Tensor | None]:
        """The weight as stored and its per-output-channel scales (None for bf16)."""
        return getattr(self, name + "_q"), getattr(self, name + "_scale")

    def dequantized(self, name: str) -> Tensor:
        """The float32 weight this layer computes with (``q * s`` or the bf16 values widened)."""
        q, scale = self.stored(name)
        key = (q.data_ptr(), q._version, q.device, None if scale is None else (scale.data_ptr(), scale._version))
        cache: dict[str, Any] = self.__dict__.setdefault("_dequant_cache", {})
        hit = cache.get(name)
        if hit is None or hit[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                w = q.to(torch.float32)
                if scale is not None:
                    w = w * scale.reshape(-1, *([1] * (q.dim() - 1)))
            hit = (key, w)
            cache[name] = hit
        return hit[1]

    def __getstate__(self) -> dict[str, Any]:  # deepcopy / pickle without the cache
        state = dict(self.__dict__)
        state.pop("_dequant_cache", None)
        return state


class StoredLinear(_Stored):
    """``nn.Linear`` with a stored weight (``weight_q`` and, for int8, ``weight_scale``)."""

    def __init__(self, lin: nn.Linear, storage: str) -> None:
        super().__init__()
        self.in_features, self.out_features = int(lin.in_features), int(lin.out_features)
        self.bias = None if lin.bias is None else nn.Parameter(lin.bias.detach().to(torch.float32).clone())
        self._store("weight", lin.weight, storage)

    @property
    def weight(self) -> Tensor:
        return self.dequantized("weight")

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, storage={self.storage}"


class StoredConv1d(_Stored):
    """A (weight-normed or plain) ``nn.Conv1d`` with its effective weight stored; stride 1, no padding."""

    def __init__(self, conv: nn.Conv1d, storage: str) -> None:
        super().__init__()
        if conv.stride != (1,) or conv.padding != (0,) or conv.groups != 1:
            raise ValueError("StoredConv1d covers stride-1, unpadded, ungrouped convolutions")
        self.in_channels, self.out_channels = int(conv.in_channels), int(conv.out_channels)
        self.kernel_size = tuple(conv.kernel_size)
        self.dilation = tuple(conv.dilation)
        with torch.no_grad():
            w = conv.weight.detach().to(torch.float32).clone()  # weight norm applied
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().to(torch.float32).clone())
        self._store("weight", w, storage)

    @property
    def weight(self) -> Tensor:
        return self.dequantized("weight")

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, dilation=self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, storage={self.storage}")


class StoredGRU(_Stored):
    """A one-layer, batch-first, unidirectional ``nn.GRU`` with both weight matrices stored."""

    def __init__(self, gru: nn.GRU, storage: str) -> None:
        super().__init__()
        if gru.num_layers != 1 or gru.bidirectional or not gru.batch_first or not gru.bias:
            raise ValueError("StoredGRU covers one-layer, batch-first, unidirectional GRUs with biases")
        self.input_size, self.hidden_size = int(gru.input_size), int(gru.hidden_size)
        self.num_layers, self.bidirectional, self.batch_first, self.bias = 1, False, True, True
        self.bias_ih_l0 = nn.Parameter(gru.bias_ih_l0.detach().to(torch.float32).clone())
        self.bias_hh_l0 = nn.Parameter(gru.bias_hh_l0.detach().to(torch.float32).clone())
        self._store("weight_ih_l0", gru.weight_ih_l0, storage)
        self._store("weight_hh_l0", gru.weight_hh_l0, storage)

    @property
    def weight_ih_l0(self) -> Tensor:
        return self.dequantized("weight_ih_l0")

    @property
    def weight_hh_l0(self) -> Tensor:
        return self.dequantized("weight_hh_l0")

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if h0 is None:
            h0 = torch.zeros(1, x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        weights = [self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0]
        out, h = torch._VF.gru(x, h0, weights, True, 1, 0.0, self.training, False, True)  # type: ignore[attr-defined]
        return out, h

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, batch_first=True, storage={self.storage}"


def store_decoder(model: Any, storage: str) -> Any:
    """Swap every Linear, GRU and Conv1d of ``model.decoder`` for its stored version (in place).

    Raises ``ValueError`` when the decoder has none of them or a layer the stored versions do not cover.
    """
    if storage not in STORAGES:
        raise ValueError(f"unknown weight storage {storage!r}; known: {', '.join(STORAGES)}")
    swapped = 0
    for parent in list(model.decoder.modules()):
        for name, child in list(parent.named_children()):
            new: nn.Module | None = None
            if type(child) is nn.Linear:
                new = StoredLinear(child, storage)
            elif type(child) is nn.GRU:
                new = StoredGRU(child, storage)
            elif isinstance(child, nn.Conv1d):  # weight-normed convs are parametrized Conv1d subclasses
                new = StoredConv1d(child, storage)
            if new is not None:
                setattr(parent, name, new)
                swapped += 1
    if not swapped:
        raise ValueError(f"the {getattr(model, 'family', '?')} decoder has no Linear, GRU or Conv1d layer to store")
    return model


def storage_of(module: nn.Module) -> str:
    """``"int8"``, ``"bf16"`` or ``"float32"`` (plain float layers) for a decoder layer."""
    return module.storage if isinstance(module, _Stored) else "float32"


def stored_weights(module: nn.Module, name: str = "weight") -> tuple[Tensor, Tensor | None]:
    """A layer's weight as stored (int8, bf16 or float32 with weight norm applied) and its scales (or None)."""
    if isinstance(module, _Stored):
        return module.stored(name)
    return getattr(module, name).detach(), None
