"""Structured pruning with real smaller layers, then fine-tuning (optionally distilled from the teacher).

Paper: Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023 (torch-pruning); magnitude
criterion after Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017.

For a pruning ratio ``r``, every prunable layer keeps ``floor((1 - r) C)`` of its ``C`` output
channels (hidden units), chosen per dependency group by the importance
``I_i = sum_{layers l in group} ||W_l[i]||_2^2`` (rows of the producing layers, the matching columns
of the consuming ones, LayerNorm scales, and for a GRU the gate rows/recurrent column of unit ``i``,
see :mod:`compressors._gru`). Output heads keep their outputs. For square layers the parameter count
falls roughly as ``(1 - r)^2`` (ratio 0.5: about 1/4 of the decoder). The pruned layers are really
smaller (``nn.Linear``/``nn.GRU``/``nn.Conv1d`` rebuilt at the new width), the model's ``config`` is
re-read from them, and the candidate is rebuilt from that config, so checkpoints reload it.

Fine-tuning: ``finetune_steps`` of the training recipe with ``L = MSS(x, s)``, or with
``kd_weight > 0``: ``L = w_target MSS(x, s) + w_kd MSS(t, s)`` from the unpruned teacher.

DSP-aware pruning (``n_harmonics``, ``n_bands``, ``n_wavetables``; :mod:`compressors._dsp_prune`)
shrinks the synthesizer's control heads before the structured pruning.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch_pruning as tp
from torch import nn

from ddspbench.compressors._base import TRAINING, CompressContext, Compressor, clone_model, frozen
from ddspbench.compressors._distill import audio_kd_loss, train_model
from ddspbench.compressors._dsp_prune import dsp_prune
from ddspbench.compressors._gru import GRUAwareImportance, GRUPruner, opaque_gru_tracing
from ddspbench.compressors._rebuild import rebuild, strip_weight_norm
from ddspbench.compressors._stats import random_features
from ddspbench.suite.bounds import STEPS_OR_NONE, WEIGHT, WIDTH, Bound, Choice
from ddspbench.suite.candidate import ParamSpec
from ddspbench.suite.errors import UserError
from ddspbench.suite.recipe import PRUNING
from ddspbench.suite.registry import COMPRESSORS

__all__ = ["Prune", "structured_prune", "output_heads", "rebuild"]


def output_heads(model: nn.Module) -> list[nn.Module]:
    """The layers whose outputs must keep their size (the decoder's control heads)."""
    dec = getattr(model, "decoder", None)
    if dec is None:
        raise UserError(f"{type(model).__name__} has no decoder to prune")
    heads = getattr(dec, "heads", None)
    if isinstance(heads, nn.ModuleDict):
        return list(heads.values())
    head = getattr(dec, "head", None)
    if isinstance(head, nn.Module):
        # DDX7: the last TCN block; only its layers that write the operator levels keep their width
        outs = [m for m in (getattr(head, "conv2", None), getattr(head, "residual", None)) if isinstance(m, nn.Module)]
        return outs or [head]
    raise UserError(f"cannot find the output head(s) of the {getattr(model, 'family', '?')} decoder")


def structured_prune(
    model: Any,
    ratio: float,
    *,
    importance: str = "magnitude",
    frames: int = 16,
    keep: Sequence[str] = (),
) -> nn.Module:
    """Prune ``model`` in place to ``1 - ratio`` of its channels per layer; returns the rebuilt model.

    Args:
        model: a ddspbench model (modified in place; pass a copy to keep the original).
        ratio: fraction of channels removed from every prunable layer, in ``[0, 1)``.
        importance: ``"magnitude"`` (:class:`GRUAwareImportance`) or ``"random"`` (an ablation).
        frames: frames of the random input used to trace the dependency graph.
        keep: names of further modules whose outputs keep their width (relative to the model,
            e.g. ``["decoder.f0_mlp.0"]``); the output heads always do.
    """
    if not 0.0 <= float(ratio) < 1.0:
        raise UserError(f"pruning ratio must be in [0, 1), got {ratio}")
    if ratio == 0:
        return model
    if importance == "magnitude":
        imp: Any = GRUAwareImportance(p=2)
    elif importance == "random":
        imp = tp.importance.RandomImportance()
    else:
        raise UserError(f"unknown importance {importance!r}; known: magnitude, random")
    strip_weight_norm(model)
    decoder = model.decoder
    modules = dict(model.named_modules())
    unknown = sorted(set(keep) - set(modules))
    if unknown:
        raise UserError(f"keep names unknown module(s): {', '.join(unknown)}")
    ignored = output_heads(model) + [modules[k] for k in keep]
    f0, loud = random_features(1, frames)

    def forward_fn(_dec: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]) -> Any:
        return model(*inputs)

    def controls(out: dict[str, Any]) -> list[torch.Tensor]:
        return list(out["controls"].values())

    model.eval()
    # torch-pruning builds its dependency graph from autograd: a frozen decoder (a KD teacher, say)
    # would trace to nothing and come back unpruned. Trace with gradients on, then restore the flags.
    frozen_names = {n for n, p in decoder.named_parameters() if not p.requires_grad}
    for p in decoder.parameters():
        p.requires_grad_(True)
    with warnings.catch_warnings(), opaque_gru_tracing(decoder):
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(
            decoder,
            (f0, loud),
            importance=imp,
            pruning_ratio=float(ratio),
            ignored_layers=ignored,
            customized_pruners={nn.GRU: GRUPruner()},
            root_module_types=[nn.Linear, nn.GRU, nn.Conv1d],
            forward_fn=forward_fn,
            output_transform=controls,
        )
    pruner.step()
    for n, p in decoder.named_parameters():
        p.requires_grad_(n not in frozen_names)
    return rebuild(model)


@COMPRESSORS.register("prune")
class Prune(Compressor):
    """Structured pruning with real smaller layers (torch-pruning + a GRU pruner), then fine-tuning.

    Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023; magnitude criterion after Li et
    al., ICLR 2017. Each prunable layer keeps ``floor((1 - ratio) C)`` channels ranked per dependency
    group by ``I_i = sum_l ||W_l[i]||_2^2`` (GRU units scored on their own gate rows and recurrent
    column); fine-tuning minimises ``MSS(x, s)``, or with ``kd_weight > 0``
    ``w_target MSS(x, s) + w_kd MSS(t, s)`` against the unpruned teacher. ``n_harmonics``,
    ``n_bands``, ``n_wavetables`` shrink the synth first (DSP-aware pruning).
    """

    name: ClassVar[str] = "prune"
    tags: ClassVar[frozenset[str]] = frozenset({PRUNING})
    defaults: ClassVar[Mapping[str, Any]] = {
        "ratio": 0.5,
        "importance": "magnitude",
        "finetune_steps": None,
        "kd_weight": 0.0,
        "target_weight": 0.5,
        "n_harmonics": None,
        "n_bands": None,
        "n_wavetables": None,
    }
    bounds: ClassVar[Mapping[str, Any]] = {
        "ratio": Bound(float, 0.0, 0.99), "importance": Choice(("magnitude", "random")), "finetune_steps": STEPS_OR_NONE,
        "kd_weight": WEIGHT, "target_weight": WEIGHT, "n_harmonics": WIDTH, "n_bands": WIDTH, "n_wavetables": WIDTH,
    }
    search_space: ClassVar[Mapping[str, ParamSpec]] = {
        "ratio": ParamSpec(low=0.25, high=0.75),
        "finetune_steps": ParamSpec(choices=[0, 200]),
        "kd_weight": ParamSpec(choices=[0.0, 0.5]),  # 0: plain fine-tune; > 0: audio KD from the unpruned teacher
    }

    @classmethod
    def size_label(cls, start: str) -> str:
        """A pruned model keeps its input's label with ``:pruned`` (its real widths are in its config)."""
        return f"{start}:pruned"

    @classmethod
    def uses_seed(cls, params: Mapping[str, Any], steps: int) -> bool:
        """Only fine-tuning and the ``random`` importance use the seed; magnitude pruning of a given model is fixed."""
        values = {**cls.defaults, **dict(params)}
        finetune = steps if values["finetune_steps"] is None else int(values["finetune_steps"])
        return finetune > 0 or values["importance"] == "random"

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        start = ctx.candidate if ctx.candidate is not None else teacher
        if getattr(start, "ddsp_transforms", None):
            raise UserError("prune: the model is already quantized/transformed; prune before quantizing")
        model: Any = clone_model(start)
        report: dict[str, Any] = {}
        dsp = {k: params[k] for k in ("n_harmonics", "n_bands", "n_wavetables") if params[k] is not None}
        if dsp:
            model, report["dsp"] = dsp_prune(model, ctx, **dsp)
        torch.manual_seed(ctx.seed)  # the "random" importance draws from torch's global generator
        model = structured_prune(model, float(params["ratio"]), importance=str(params["importance"]))
        model.size_name = self.size_label(getattr(start, 'size_name', 'custom'))
        report["config"] = dict(model.config)
        steps = ctx.steps if params["finetune_steps"] is None else int(params["finetune_steps"])
        if steps > 0:
            kd_w = float(params["kd_weight"])
            if kd_w > 0:
                report["variant"] = "KD fine-tune"  # inherited weights and the KD target, separated from plain prune
                with frozen(teacher):
                    loss = audio_kd_loss(teacher, kd_w, float(params["target_weight"]))
                    report[TRAINING] = train_model(model, ctx, steps, loss, self.name)
            else:
                report[TRAINING] = train_model(model, ctx, steps, None, self.name)
        else:
            report[TRAINING] = None
        return model, report
