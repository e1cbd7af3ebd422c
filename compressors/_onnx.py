"""ONNX Runtime int8: the GRU decoder exported to ONNX and dynamically quantized by ONNX Runtime.

Only the decoder (input MLPs, GRU, output MLP, heads) runs in ONNX Runtime; the synthesizer and the
reverb stay in torch (they are FFTs and cumulative sums that the legacy exporter handles poorly and
that int8 would not speed up). Export: ``torch.onnx.export(..., dynamo=False)`` (the legacy
TorchScript exporter) with dynamic batch and frame axes and the GRU state as an input/output, so
streaming works. Quantization: ``onnxruntime.quantization.quantize_dynamic`` with int8 weights
(``QuantType.QInt8``): MatMul and GRU weights stored as int8 with per-tensor scales, activations
quantized on the fly. ONNX Runtime 1.x quantizes MatMul/Gemm but leaves the GRU op in float32, so
the size drop is smaller than torch's int8 (which packs the GRU too). Like any dynamic quantization,
activation scales are taken per call, so buffer-by-buffer streaming matches one offline call only
approximately.

The candidate keeps the quantized ONNX model as a ``uint8`` buffer of its decoder, so the checkpoint
holds plain tensors (``weights_only=True``); the transform ``onnx_int8_decoder`` rebuilds the empty
shell on load and the session is created from the bytes at the first call. Sessions use as many
intra-op threads as torch has when they are created. HpN and Wavetable only (DDX7's TCN carries a
per-block history that this wrapper does not export).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ddspbench.compressors._base import clone_model
from ddspbench.suite.checkpoint import TRANSFORMS, apply_transform
from ddspbench.suite.errors import UserError

__all__ = ["OrtDecoder", "quantize_onnx_int8", "onnx_available"]

TRANSFORM = "onnx_int8_decoder"


def onnx_available() -> bool:
    """Whether onnx and onnxruntime (with its quantization tools) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return True


class _GRUShape:
    """What the family reads of ``decoder.gru`` to build a streaming state."""

    def __init__(self, hidden_size: int) -> None:
        self.hidden_size = hidden_size


class OrtDecoder(nn.Module):
    """A decoder run by an ONNX Runtime session built from the ONNX bytes in ``onnx_model``.

    Args:
        nbytes: size of the ONNX model (the buffer is filled by ``load_state_dict`` or by the exporter).
        heads: control names, in the order of the ONNX outputs.
        hidden_size: GRU width (the streaming state's size).
    """

    def __init__(self, nbytes: int, heads: list[str], hidden_size: int) -> None:
        super().__init__()
        self.register_buffer("onnx_model", torch.zeros(int(nbytes), dtype=torch.uint8))
        self.head_names = list(heads)
        self.gru = _GRUShape(int(hidden_size))
        self._session: Any = None

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._session = None  # new bytes: rebuild the session at the next call

    def session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            opts.inter_op_num_threads = 1
            data = self.get_buffer("onnx_model").numpy().tobytes()
            self._session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        return self._session

    def extra_param_count(self) -> int:
        """Elements of the ONNX model's initializers except quantization scales/zero points.

        About the decoder's parameter count (the exporter may fold or split a few constants).
        """
        import onnx
        from onnx import numpy_helper

        m = onnx.load_from_string(self.get_buffer("onnx_model").numpy().tobytes())
        n = 0
        for init in m.graph.initializer:
            if init.name.endswith(("_scale", "_zero_point")):
                continue
            n += int(numpy_helper.to_array(init).size)
        return n

    def forward(self, f0_scaled: torch.Tensor, loudness_scaled: torch.Tensor, h0: torch.Tensor | None
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        if h0 is None:
            h0 = torch.zeros(1, f0_scaled.shape[0], self.gru.hidden_size)
        feeds = {"f0_scaled": f0_scaled.detach().cpu().float().numpy(), "loudness_scaled": loudness_scaled.detach().cpu().float().numpy(),
                 "h0": h0.detach().cpu().float().numpy()}
        outs = [torch.from_numpy(np.ascontiguousarray(o)) for o in self.session().run(None, feeds)]
        controls = dict(zip(self.head_names, outs[: len(self.head_names)]))
        return controls, outs[-2], outs[-1]


class _Flat(nn.Module):
    """The family's decoder with a flat tuple of outputs (what the exporter needs)."""

    def __init__(self, decoder: nn.Module, heads: list[str]) -> None:
        super().__init__()
        self.decoder = decoder
        self.heads = heads

    def forward(self, f0_scaled: torch.Tensor, loudness_scaled: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        controls, hidden, h = self.decoder(f0_scaled, loudness_scaled, h0)
        return (*[controls[n] for n in self.heads], hidden, h)


def _t_onnx(model: Any, nbytes: int, heads: list[str], hidden_size: int) -> nn.Module:
    """Checkpoint transform: replace the decoder by an (empty) :class:`OrtDecoder` shell."""
    model.decoder = OrtDecoder(nbytes, heads, hidden_size)
    return model


TRANSFORMS.register(TRANSFORM, obj=_t_onnx, description="decoder as an ONNX Runtime int8 model (synth in torch)")


def _export_int8(decoder: nn.Module, heads: list[str], hidden_size: int) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    flat = _Flat(decoder, heads).eval()
    ex = (torch.rand(1, 8, 1), torch.rand(1, 8, 1), torch.zeros(1, 1, hidden_size))
    names_out = [*heads, "hidden", "h"]
    axes: dict[str, dict[int, str]] = {"f0_scaled": {0: "batch", 1: "frames"}, "loudness_scaled": {0: "batch", 1: "frames"},
                                       "h0": {1: "batch"}, "h": {1: "batch"}}
    for n in [*heads, "hidden"]:
        axes[n] = {0: "batch", 1: "frames"}
    with tempfile.TemporaryDirectory(prefix="ddspbench-onnx-") as tmp:
        fp32, int8 = os.path.join(tmp, "decoder.onnx"), os.path.join(tmp, "decoder.int8.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(flat, ex, fp32, dynamo=False, input_names=["f0_scaled", "loudness_scaled", "h0"],
                              output_names=names_out, dynamic_axes=axes, opset_version=17)
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
        with open(int8, "rb") as f:
            return f.read()


def quantize_onnx_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose decoder runs as an int8 ONNX Runtime model."""
    if not onnx_available():
        raise UserError("onnx_int8 needs onnx and onnxruntime (pip install 'ddspbench[onnx]')")
    dec: Any = getattr(model, "decoder", None)
    heads_mod = getattr(dec, "heads", None)
    gru = getattr(dec, "gru", None)
    if not isinstance(heads_mod, nn.ModuleDict) or not isinstance(gru, nn.GRU):
        raise UserError(f"onnx_int8 handles the GRU decoders (hpn, wavetable), not {getattr(model, 'family', '?')}")
    heads = list(heads_mod.keys())
    data = _export_int8(dec, heads, int(gru.hidden_size))
    out: Any = apply_transform(clone_model(model), TRANSFORM, nbytes=len(data), heads=heads, hidden_size=int(gru.hidden_size))
    with torch.no_grad():
        out.decoder.onnx_model.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    return out.eval()
