"""Post-training quantization of the decoder: dynamic int8 and bf16 (the synth stays in float32).

Papers: Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
Only Inference", CVPR 2018 (affine int8); Kalamkar et al., "A Study of BFLOAT16 for Deep Learning
Training", 2019.

* ``int8`` (dynamic): every ``nn.Linear`` and ``nn.GRU`` weight of the decoder is stored as
  ``q = clamp(round(w / s) + z, -128, 127)`` with one scale ``s = max|w| / 127.5``-style per tensor
  (``torch.ao.quantization.quantize_dynamic``, qint8); activations are quantized on the fly per batch
  and the products accumulated in int32. LayerNorms, the synthesizer and the reverb stay float32.
* ``bf16``: the decoder's weights and activations in bfloat16 (8-bit mantissa), its inputs cast down
  and its outputs cast back to float32 before the synthesizer (phase accumulation in bf16 would
  detune the oscillators).
* ``onnx_int8`` (:mod:`compressors._onnx`, where onnxruntime is installed): the decoder exported to
  ONNX and quantized by ONNX Runtime; the synth stays in torch.

Each is a structural transform registered in :data:`suite.checkpoint.TRANSFORMS`, so
``save_checkpoint``/``load_checkpoint`` rebuild the quantized model (``weights_only=True``: packed
int8 GRU weights are not plain tensors, so the int8 transform stores int8 tensors + scales through
``checkpoint_state``/``load_checkpoint_state``). Quantization comes after all training: a chain with a
step after ``quantize`` is refused.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn

from compressors._base import CompressContext, Compressor, clone_model
from compressors._onnx import quantize_onnx_int8
from compressors._stats import measure_rtf
from suite.candidate import ParamSpec
from suite.checkpoint import TRANSFORMS, apply_transform
from suite.errors import UserError
from suite.registry import COMPRESSORS

__all__ = ["Quantize", "quantize_int8", "quantize_bf16", "QUANT_METHODS"]

QUANT_METHODS: dict[str, str] = {
    "int8": "quantize_dynamic_int8",
    "bf16": "bf16_decoder",
    "onnx_int8": "onnx_int8_decoder",
}
"""``method`` parameter -> checkpoint transform name."""


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao's eager quantization is deprecated in torch 2.13 but works; silence its warnings here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*")
        warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
        yield


def _is_qlinear(m: nn.Module) -> bool:
    return isinstance(m, torch.ao.nn.quantized.dynamic.Linear)


def _is_qgru(m: nn.Module) -> bool:
    return isinstance(m, torch.ao.nn.quantized.dynamic.GRU)


def _q_to_plain(prefix: str, q: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    """A quantized tensor as plain tensors: int8 values plus its scale(s) and zero point(s)."""
    out[prefix + ".int8"] = q.int_repr().clone()
    if q.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        out[prefix + ".scales"] = q.q_per_channel_scales().clone()
        out[prefix + ".zero_points"] = q.q_per_channel_zero_points().clone()
        out[prefix + ".axis"] = torch.tensor(q.q_per_channel_axis())
    else:
        out[prefix + ".scale"] = torch.tensor(q.q_scale(), dtype=torch.float64)
        out[prefix + ".zero_point"] = torch.tensor(q.q_zero_point(), dtype=torch.int64)


def _plain_to_q(prefix: str, sd: Mapping[str, torch.Tensor]) -> torch.Tensor:
    ints = sd[prefix + ".int8"]
    if prefix + ".scales" in sd:
        return torch._make_per_channel_quantized_tensor(
            ints, sd[prefix + ".scales"], sd[prefix + ".zero_points"], int(sd[prefix + ".axis"])
        )
    return torch._make_per_tensor_quantized_tensor(ints, float(sd[prefix + ".scale"]), int(sd[prefix + ".zero_point"]))


def _int8_state(self: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state with every packed int8 weight as plain tensors (loads with weights_only=True)."""
    out: dict[str, torch.Tensor] = {}
    packed_prefixes: list[str] = []
    for name, m in self.named_modules():
        if _is_qlinear(m):
            w, b = m._weight_bias()
            _q_to_plain(f"{name}.__q.weight", w, out)
            if b is not None:
                out[f"{name}.__q.bias"] = b.detach().clone()
            packed_prefixes.append(name + ".")
        elif _is_qgru(m):
            wb = m._weight_bias()
            for k, w in wb["weight"].items():
                _q_to_plain(f"{name}.__q.{k}", w, out)
            for k, b in wb["bias"].items():
                out[f"{name}.__q.{k}"] = b.detach().clone()
            packed_prefixes.append(name + ".")
    for k, v in self.state_dict().items():
        if any(k.startswith(p) for p in packed_prefixes):
            continue  # packed params / scale / zero_point are rebuilt from the plain tensors above
        out[k] = v
    return out


def _load_int8_state(self: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Inverse of :func:`_int8_state`: re-pack the int8 weights, load everything else strictly."""
    sd = dict(sd)
    packed_prefixes: list[str] = []
    for name, m in self.named_modules():
        if _is_qlinear(m):
            w = _plain_to_q(f"{name}.__q.weight", sd)
            b = sd.get(f"{name}.__q.bias")
            m.set_weight_bias(w, b)
            packed_prefixes.append(name + ".")
        elif _is_qgru(m):
            names = ("weight_ih_l0", "weight_hh_l0")
            wb = {k: _plain_to_q(f"{name}.__q.{k}", sd) for k in names}
            wb.update({k: sd[f"{name}.__q.{k}"] for k in ("bias_ih_l0", "bias_hh_l0")})
            m.set_weight_bias(wb)
            packed_prefixes.append(name + ".")
    rest = {k: v for k, v in sd.items() if not any(k.startswith(p) for p in packed_prefixes)}
    own = {k: t for k, t in self.state_dict(keep_vars=True).items() if not any(k.startswith(p) for p in packed_prefixes)}
    missing, unexpected = sorted(set(own) - set(rest)), sorted(set(rest) - set(own))
    if missing or unexpected:
        raise RuntimeError(f"int8 checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    with torch.no_grad():
        for k, t in own.items():  # quantized modules refuse a partial load_state_dict: copy tensor by tensor
            if t.shape != rest[k].shape:
                raise RuntimeError(f"int8 checkpoint: {k} has shape {tuple(rest[k].shape)}, model {tuple(t.shape)}")
            t.copy_(rest[k])


def _t_int8(model: Any) -> nn.Module:
    """Checkpoint transform: dynamic int8 on the decoder's Linear and GRU layers (in place)."""
    if not any(isinstance(m, nn.Linear | nn.GRU) for m in model.decoder.modules()):
        raise UserError(
            f"int8 dynamic quantization covers Linear and GRU layers; the {getattr(model, 'family', '?')} decoder has none "
            "(use method=bf16)"
        )
    with _quiet():
        torch.ao.quantization.quantize_dynamic(model.decoder, {nn.Linear, nn.GRU}, dtype=torch.qint8, inplace=True)
    model.checkpoint_state = types.MethodType(_int8_state, model)
    model.load_checkpoint_state = types.MethodType(_load_int8_state, model)
    return model


class _BF16Decoder(nn.Module):
    """Runs a decoder in bfloat16: floating inputs cast down, floating outputs cast back to float32."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.to(torch.bfloat16)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)  # heads, gru, widths(): the family reads them

    def forward(self, *args: Any) -> Any:
        return _cast(self.inner(*_cast(args, torch.bfloat16)), torch.float32)


def _cast(x: Any, dtype: torch.dtype) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, dict):
        return {k: _cast(v, dtype) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(_cast(v, dtype) for v in x)
    return x


def _t_bf16(model: Any) -> nn.Module:
    """Checkpoint transform: the decoder in bfloat16 (in place); the synth keeps float32.

    The decoder is moved to the end of the model's children so that the family's "reference
    parameter" (the first one, which sets the dtype of the streaming state) stays float32.
    """
    dec = model._modules.pop("decoder")
    model._modules["decoder"] = _BF16Decoder(dec)
    return model


TRANSFORMS.register(QUANT_METHODS["int8"], obj=_t_int8, description="dynamic int8 (qint8) Linear+GRU of the decoder")
TRANSFORMS.register(QUANT_METHODS["bf16"], obj=_t_bf16, description="decoder weights and activations in bfloat16")


def quantize_int8(model: nn.Module) -> nn.Module:
    """A dynamically int8-quantized copy of ``model`` (decoder Linear + GRU)."""
    return apply_transform(clone_model(model), QUANT_METHODS["int8"])


def quantize_bf16(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose decoder runs in bfloat16."""
    return apply_transform(clone_model(model), QUANT_METHODS["bf16"])


@COMPRESSORS.register("quantize")
class Quantize(Compressor):
    """Post-training quantization of the decoder: int8 (dynamic), bf16 or onnx_int8.

    Jacob et al., CVPR 2018 (affine int8): weights ``q = round(w / s) + z`` in int8 with per-tensor
    scale ``s``, activations quantized per call, int32 accumulation (torch.ao ``quantize_dynamic`` on
    Linear + GRU, or ONNX Runtime on the exported decoder); bf16 after Kalamkar et al. 2019 (decoder
    weights/activations in bfloat16). The synth stays float32. Reports serialized bytes and RTF
    measured before/after (one thread, median of repeats).
    """

    name: ClassVar[str] = "quantize"
    defaults: ClassVar[Mapping[str, Any]] = {"method": "int8", "measure_frames": 250, "measure_repeats": 5}
    post_training: ClassVar[bool] = True
    search_space: ClassVar[Mapping[str, ParamSpec]] = {"method": ParamSpec(choices=["int8", "bf16"])}
    unsupported: ClassVar[Mapping[str, Mapping[str, tuple[Any, ...]]]] = {
        # DDX7's decoder is a TCN (Conv1d): dynamic int8 covers Linear/GRU only, onnx_int8 the GRU decoders.
        "ddx7": {"method": ("int8", "onnx_int8")},
    }

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        method = str(params["method"])
        if method not in QUANT_METHODS:
            raise UserError(f"quantize: unknown method {method!r}; known: {', '.join(QUANT_METHODS)}")
        start = ctx.candidate if ctx.candidate is not None else teacher
        if getattr(start, "ddsp_transforms", None):
            raise UserError("quantize: the model is already quantized")
        if method == "onnx_int8":
            model = quantize_onnx_int8(start)
        else:
            model = apply_transform(clone_model(start), QUANT_METHODS[method])
        model.eval()
        report: dict[str, Any] = {"transform": QUANT_METHODS[method]}
        frames, repeats = int(params["measure_frames"]), int(params["measure_repeats"])
        if frames > 0 and repeats > 0:
            with _quiet():
                before = measure_rtf(start, frames, repeats)
                after = measure_rtf(model, frames, repeats)
            report["rtf"] = {"before": before, "after": after, "speedup": before / after if after > 0 else None,
                             "frames": frames, "threads": 1}
        return model, report
