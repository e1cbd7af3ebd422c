"""Post-training quantization of the decoder: weight-only int8 and bf16 storage (the synth stays in float32).

Papers: Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
Only Inference", CVPR 2018 (symmetric int8 weights); Kalamkar et al., "A Study of BFLOAT16 for Deep
Learning Training", 2019.

* ``int8``: every Linear and both GRU matrices of an HpN/Wavetable decoder, every Conv1d of a DDX7
  TCN (weight norm applied first) stored as symmetric per-output-channel int8 with float32 scales,
  computed in float32 (:mod:`baselines.stored`). Weight-only: a 64-sample buffer runs one frame,
  so the cost is reading the weights, and int8 storage reads 4x fewer bytes; quantizing the
  activations too would add per-call work and error for no saving in that regime.
* ``bf16``: the same layers with their weights rounded to bfloat16, float32 compute.
* ``onnx_int8`` (:mod:`compressors._onnx`, where onnxruntime is installed): the decoder exported to
  ONNX and quantized by ONNX Runtime (dynamic activations); eager only, the native engine refuses it.

The native engine (:mod:`baselines.native`) runs ``int8`` and ``bf16`` models reading the stored
weights directly, and its audio equals the eager model's: what is timed is what is scored. Each
method is a structural transform registered in :data:`suite.checkpoint.TRANSFORMS`, so checkpoints
rebuild the quantized model (plain int8/bf16 tensors, ``weights_only=True``). Quantization comes
after all training: a chain with a step after ``quantize`` is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from ddspbench.baselines.stored import store_decoder
from ddspbench.compressors._base import CompressContext, Compressor, clone_model
from ddspbench.compressors._onnx import quantize_onnx_int8
from ddspbench.compressors._stats import measure_rtf
from ddspbench.suite.bounds import Bound, Choice
from ddspbench.suite.candidate import ParamSpec
from ddspbench.suite.checkpoint import TRANSFORMS, apply_transform
from ddspbench.suite.errors import UserError
from ddspbench.suite.recipe import QUANTIZATION
from ddspbench.suite.registry import COMPRESSORS

__all__ = ["Quantize", "quantize_int8", "quantize_bf16", "QUANT_METHODS", "ENGINE_METHODS"]

QUANT_METHODS: dict[str, str] = {
    "int8": "int8_weights",
    "bf16": "bf16_weights",
    "onnx_int8": "onnx_int8_decoder",
}
"""``method`` parameter -> checkpoint transform name."""

ENGINE_METHODS: tuple[str, ...] = ("int8", "bf16")
"""Methods whose models the native engine runs (``onnx_int8`` is eager only)."""


def _storage_transform(storage: str) -> Any:
    def transform(model: Any) -> nn.Module:
        try:
            return store_decoder(model, storage)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise UserError(f"quantize {storage}: {exc}") from None

    transform.__doc__ = f"Checkpoint transform: decoder weights stored in {storage}, float32 compute (in place)."
    return transform


TRANSFORMS.register(QUANT_METHODS["int8"], obj=_storage_transform("int8"),
                    description="decoder Linear/GRU/Conv1d weights in symmetric per-channel int8, float32 compute")
TRANSFORMS.register(QUANT_METHODS["bf16"], obj=_storage_transform("bf16"),
                    description="decoder Linear/GRU/Conv1d weights in bfloat16, float32 compute")


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with int8-stored decoder weights (per output channel)."""
    return apply_transform(clone_model(model), QUANT_METHODS["int8"])


def quantize_bf16(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with bfloat16-stored decoder weights."""
    return apply_transform(clone_model(model), QUANT_METHODS["bf16"])


@COMPRESSORS.register("quantize")
class Quantize(Compressor):
    """Post-training quantization of the decoder: int8 (weight-only), bf16 (weights) or onnx_int8.

    Jacob et al., CVPR 2018: weights ``q = round(w / s)`` in int8 with one symmetric scale ``s`` per
    output channel, float32 activations (:mod:`baselines.stored`; the native engine runs exactly this),
    or ONNX Runtime's dynamic int8 on the exported decoder; bf16 after Kalamkar et al. 2019 (weights
    rounded to bfloat16). The synth stays float32. Reports serialized bytes and the RTF measured
    before/after on the native engine at 64-sample buffers (eager offline where the engine cannot run
    the model), one thread, median.
    """

    name: ClassVar[str] = "quantize"
    tags: ClassVar[frozenset[str]] = frozenset({QUANTIZATION})
    defaults: ClassVar[Mapping[str, Any]] = {"method": "int8", "measure_frames": 250, "measure_repeats": 5}
    bounds: ClassVar[Mapping[str, Any]] = {"method": Choice(tuple(QUANT_METHODS)), "measure_frames": Bound(int, 0, 15_000),
                                           "measure_repeats": Bound(int, 1, 1000)}
    post_training: ClassVar[bool] = True
    search_space: ClassVar[Mapping[str, ParamSpec]] = {"method": ParamSpec(choices=["int8", "bf16"])}
    unsupported: ClassVar[Mapping[str, Mapping[str, tuple[Any, ...]]]] = {
        # int8/bf16 weight storage covers DDX7's Conv1d TCN too; the ONNX Runtime path exports GRU decoders only.
        "ddx7": {"method": ("onnx_int8",)},
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
            report["rtf"] = _speed_report(start, model, frames, repeats)
        return model, report


def _speed_report(start: nn.Module, model: nn.Module, frames: int, repeats: int) -> dict[str, Any]:
    """RTF before/after as deployed: the native engine at 64-sample buffers (median buffer time / its duration),
    or the eager offline forward where the engine cannot run one of the two (e.g. onnx_int8)."""
    from ddspbench.suite.metrics.speed import measure_speed

    try:
        before, after = (measure_speed(m, buffers=(64,), offline=False, frames=frames, backend="native",
                                       min_buffers=frames * repeats, budget_s=10.0)["stream"][64]["rtf"]
                         for m in (start, model))
        how: dict[str, Any] = {"backend": "native", "buffer": 64}
    except UserError:
        before, after = measure_rtf(start, frames, repeats), measure_rtf(model, frames, repeats)
        how = {"backend": "eager", "buffer": "offline"}
    return {"before": before, "after": after, "speedup": before / after if after > 0 else None,
            "frames": frames, "threads": 1, **how}
