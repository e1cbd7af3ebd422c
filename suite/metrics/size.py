"""Model size and compute: parameter counts and decoder FLOPs per second of audio.

**Parameters** are counted over ``named_parameters`` plus the weights held inside dynamically
quantized modules (``torch.ao.nn.quantized.dynamic.Linear``/``GRU`` keep their int8 weights in
packed form, not as parameters): a quantized model reports the same count as its float original.

**FLOPs** are counted over the decoder (``model.decoder``; the whole model when it has none) for a
clip of ``frames`` frames and divided by its duration, with ``torch.utils.flop_counter.FlopCounterMode``
(matrix products and convolutions, 2 FLOPs per multiply-accumulate). What that counter cannot see is
added by formula, per frame and layer:

- GRU, where the counter saw none of its work (dynamically quantized GRU; a fused kernel):
  ``2 * 3 * H * (I + H)`` for the input and hidden matrix products.
  (In torch 2.x the counter does see a float GRU's matrix products; adding the formula on top, as
  REFERENCE §5's "2.1 GFLOP in Linear + 1.2 in the GRU" for HpN full seems to, would count it twice:
  HpN full is 0.96 GFLOP/s in Linear layers + 1.18 in the GRU = 2.14 GFLOP/s here);
- dynamically quantized Linear: ``2 * in * out``, i.e. int8 layers are counted as their float
  equivalents. Bias additions are not counted (the counter's convention for ``addmm``).

Not counted: element-wise operations (activations, LayerNorm, GRU gate non-linearities), and the
whole DSP synthesizer (oscillators, noise filtering, FFT reverb), which is outside the decoder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ddspbench.suite.checkpoint import save_checkpoint
from ddspbench.suite.features import BLOCK_SIZE, SAMPLE_RATE
from ddspbench.suite.metrics.speed import example_inputs

__all__ = ["quantized_tensors", "count_params", "total_params", "serialized_bytes", "decoder_flops", "FLOPS_NOT_COUNTED"]

FLOPS_NOT_COUNTED = (
    "element-wise ops (activations, LayerNorm, GRU gate non-linearities) and the DSP synth "
    "(oscillators, noise filter, reverb); GRU and int8 Linear layers added by formula"
)


def _qmods() -> tuple[type[nn.Module], type[nn.Module]]:
    qd = torch.ao.nn.quantized.dynamic
    return qd.Linear, qd.GRU


def quantized_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for the weights and biases packed inside dynamically quantized modules."""
    qlinear, qrnn_base = _qmods()
    rnn_base = torch.ao.nn.quantized.dynamic.RNNBase if hasattr(torch.ao.nn.quantized.dynamic, "RNNBase") else qrnn_base
    for name, m in model.named_modules():
        mod = cast(Any, m)  # quantized modules expose weight()/bias()/get_weight() as methods
        if isinstance(m, qlinear):
            yield f"{name}.weight", mod.weight()
            b = mod.bias()
            if b is not None:
                yield f"{name}.bias", b
        elif isinstance(m, rnn_base):
            for k, w in mod.get_weight().items():
                yield f"{name}.{k}", w
            for k, b in mod.get_bias().items():
                if b is not None:
                    yield f"{name}.{k}", b


def count_params(model: nn.Module) -> dict[str, int]:
    """``{"params", "params_trainable"}``; quantized weights counted as parameters (not trainable).

    The one parameter count of the project (the ``params`` metric and every compressor's before/after
    report). A module holding weights outside torch (``extra_param_count()``, e.g. a decoder inside an
    ONNX Runtime session) adds them to the total.
    """
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total += sum(t.numel() for _, t in quantized_tensors(model))
    for m in model.modules():
        extra = getattr(m, "extra_param_count", None)
        if callable(extra):
            total += int(extra())
    return {"params": int(total), "params_trainable": int(trainable)}


def total_params(model: nn.Module) -> int:
    """``count_params(model)["params"]``."""
    return count_params(model)["params"]


def serialized_bytes(model: nn.Module) -> int:
    """Size in bytes of the model's real checkpoint file (:func:`suite.checkpoint.save_checkpoint`),
    written to a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="ddspbench-size-") as tmp:
        path = save_checkpoint(model, Path(tmp) / "model.pt")
        return int(os.path.getsize(path))


def _gru_flops(mod: Any, steps: int, batch: int) -> int:
    """Matrix-product FLOPs of a (possibly quantized) GRU over ``steps`` frames."""
    layers = int(getattr(mod, "num_layers", 1))
    dirs = 2 if getattr(mod, "bidirectional", False) else 1
    h = int(mod.hidden_size)
    total = 0
    for layer in range(layers):
        i = int(mod.input_size) if layer == 0 else h * dirs
        total += dirs * 2 * 3 * h * (i + h)
    return total * steps * batch


def decoder_flops(model: nn.Module, frames: int = 250, *, inputs: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """Decoder FLOPs for ``frames`` frames of input, scaled to one second of audio.

    Returns:
        ``{"flops_per_s", "counted_by_counter", "added_by_formula", "scope", "not_counted"}``
        (FLOP counts per second of audio).
    """
    target = getattr(model, "decoder", None)
    scope = "decoder" if isinstance(target, nn.Module) else "model"
    target = target if isinstance(target, nn.Module) else model
    qlinear, _ = _qmods()
    rnn_types: tuple[type[nn.Module], ...] = (nn.GRU, torch.ao.nn.quantized.dynamic.GRU)
    formula = {"n": 0}
    counter = FlopCounterMode(display=False)
    hooks = []

    before: dict[int, int] = {}

    def gru_pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
        before[id(mod)] = counter.get_total_flops()

    def gru_hook(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        # FlopCounterMode sees a float GRU's matrix products in torch 2.x (it decomposes into addmm);
        # add the formula only where it saw nothing (quantized GRU, or a fused kernel).
        if counter.get_total_flops() > before.get(id(mod), 0):
            return
        x = args[0]
        batch_first = getattr(mod, "batch_first", False)
        steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
        formula["n"] += _gru_flops(mod, int(steps), int(batch))

    def qlinear_hook(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        rows = args[0].numel() // args[0].shape[-1]
        formula["n"] += rows * 2 * mod.in_features * mod.out_features

    for mod in target.modules():
        if isinstance(mod, rnn_types):
            hooks.append(mod.register_forward_pre_hook(gru_pre))
            hooks.append(mod.register_forward_hook(gru_hook))
        elif isinstance(mod, qlinear):
            hooks.append(mod.register_forward_hook(qlinear_hook))
    def enter(mod: nn.Module, args: tuple[Any, ...]) -> None:  # a hook's return value would replace args/output
        counter.__enter__()

    def leave(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        counter.__exit__(None, None, None)

    hooks.append(target.register_forward_pre_hook(enter))
    hooks.append(target.register_forward_hook(leave))
    f0, loud = inputs if inputs is not None else example_inputs(frames)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():  # not inference_mode: FlopCounterMode breaks weight_norm parametrizations there
            model(f0.to(device), loud.to(device))
    finally:
        for h in hooks:
            h.remove()
    seconds = f0.shape[-1] * BLOCK_SIZE / SAMPLE_RATE
    counted = counter.get_total_flops() / seconds
    added = formula["n"] / seconds
    return {
        "flops_per_s": float(counted + added),
        "counted_by_counter": float(counted),
        "added_by_formula": float(added),
        "scope": scope,
        "not_counted": FLOPS_NOT_COUNTED,
    }
