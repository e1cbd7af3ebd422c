"""Training compute of a candidate: what it spent itself, and what it inherited from its teacher.

A race between compression methods is only fair when each arm's cost is on the table. Scratch trains
from nothing; KD trains a student of the same size but needs a trained teacher (and runs it on every
step); pruning fine-tunes weights the teacher's training paid for; int8 is the trained teacher with
no training of its own. Every record therefore carries ``compute``:

* ``own``: the candidate's training and fine-tuning: optimizer ``steps``, ``examples`` (steps x batch
  size), wall ``seconds`` (the whole compression, measured), and ``flops`` (steps x the FLOPs of one
  training step, measured below; a KD step counts its teacher's forward pass);
* ``inherited``: the training of the teacher whose weights or outputs the method used (``None`` for
  methods that use no teacher, e.g. scratch), with ``teacher`` naming it;
* ``total``: ``own`` plus ``inherited`` ("including the teacher"); ``own`` alone is the marginal cost
  of one more candidate from a teacher that exists anyway.

**FLOPs of a step** are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass,
loss and backward pass on the recipe's first batch: matrix products and convolutions (the GRU's and
TCN's included), in the student and, for KD, the teacher's forward. Not counted (:data:`FLOPS_SCOPE`):
FFTs (reverb convolution, the MSS loss's STFTs), element-wise operations and the optimizer. The
figure ranks arms of one family by their network work; it is not the machine's whole arithmetic, and
the wall seconds beside it are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["FLOPS_SCOPE", "step_flops", "training_compute", "candidate_compute", "uses_teacher_training",
           "matches_teacher_compute", "ZERO"]

FLOPS_SCOPE = ("FlopCounterMode over one training step (forward, loss, backward; a KD step includes its teacher's "
               "forward) x steps: matrix products and convolutions; not counted: FFTs (reverb, MSS STFTs), "
               "element-wise ops, the optimizer")

_KEYS = ("steps", "examples", "seconds", "flops")
ZERO: dict[str, float] = {k: 0 for k in _KEYS}


def step_flops(model: nn.Module, train_set: Any, cfg: Any, loss_fn: Any | None = None) -> int:
    """FLOPs of one training step of ``model`` under ``cfg`` (a :class:`suite.train.TrainConfig`) with ``loss_fn``
    (None: the default MSS loss), counted on the recipe's first batch. Gradients are left as they were."""
    from ddspbench.suite.train import (
        batch_to_tensors,
        first_batch,
        forward_batch,
        mss_loss_fn,
        resolve_device,
    )

    device = resolve_device(cfg.device)
    loss_fn = loss_fn or mss_loss_fn()
    batch = batch_to_tensors(first_batch(train_set, cfg), device)
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    was_training = model.training
    model.train()
    counter = FlopCounterMode(display=False)
    from ddspbench.baselines import dsp

    try:
        # the GRU recurrence and a KD teacher's bank as torch ops, where the counter sees their matrix products (the
        # training kernels of baselines._train_kernels would hide them; the counted work is the same)
        with counter, dsp.torch_paths():
            out = forward_batch(model, batch, cfg.seed)
            loss, _ = loss_fn(out, batch)
            if loss.requires_grad:
                loss.backward()
    finally:
        for p, g in zip(params, saved, strict=True):
            p.grad = g
        model.train(was_training)
    return int(counter.get_total_flops())


def training_compute(model: nn.Module, train_set: Any, cfg: Any, loss_fn: Any | None, steps: int,
                     seconds: float) -> dict[str, Any]:
    """The ``compute`` of one training run (``steps`` done in ``seconds``), FLOPs measured with :func:`step_flops`."""
    t0 = time.perf_counter()
    per_step = step_flops(model, train_set, cfg, loss_fn)
    batch = min(int(cfg.batch_size), len(train_set))
    return {"steps": int(steps), "examples": int(steps) * batch, "seconds": float(seconds),
            "flops": int(steps) * per_step, "flops_per_step": per_step,
            "counting_seconds": round(time.perf_counter() - t0, 3)}


def _found(report: Any) -> Iterable[Mapping[str, Any]]:
    """Every training ``compute`` dict inside a compressor's (or chain's) report."""
    if isinstance(report, Mapping):
        c = report.get("compute")
        if isinstance(c, Mapping) and "steps" in c:
            yield c
        for k, v in report.items():
            if k != "compute":
                yield from _found(v)
    elif isinstance(report, (list, tuple)):
        for v in report:
            yield from _found(v)


def _add(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in _KEYS:
        x, y = a.get(k), b.get(k)
        out[k] = None if x is None or y is None else x + y
    return out


def candidate_compute(report: Any, seconds: float, teacher: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record's ``compute`` (module docstring) from its compressor report, the compression's wall ``seconds``
    and, where the method used a teacher, that teacher's cache info (``compute``, ``steps``, ``train_seconds``)."""
    own: dict[str, Any] = dict(ZERO)
    for c in _found(report):
        own = _add(own, c)
    own["seconds"] = float(seconds)  # the whole compression: training, pruning, calibration, copies
    inherited: dict[str, Any] | None = None
    if teacher is not None:
        tc = teacher.get("compute")
        if isinstance(tc, Mapping):
            inherited = {k: tc.get(k) for k in _KEYS}
        else:  # a teacher cached before compute was kept: steps and seconds are known, FLOPs are not
            steps = teacher.get("steps")
            inherited = {"steps": steps, "examples": None, "seconds": teacher.get("train_seconds"), "flops": None}
        inherited["teacher"] = teacher.get("label") or teacher.get("key")
    total = _add(own, inherited) if inherited is not None else dict(own)
    for part in (own, total):
        for k, v in part.items():
            if isinstance(v, float) and not math.isfinite(v):
                part[k] = None
    return {"own": own, "inherited": inherited, "total": total, "flops_scope": FLOPS_SCOPE}


def _tags(cls: Any, params: dict[str, Any] | None) -> frozenset[str]:
    """A compressor step's tags: for these params (its defaults filling the rest) when it tags per params and params
    are given, else its class tags."""
    step_tags = getattr(cls, "step_tags", None)
    if callable(step_tags) and params is not None:
        return frozenset(step_tags({**getattr(cls, "defaults", {}), **params}))
    return frozenset(getattr(cls, "tags", frozenset()))


def uses_teacher_training(steps: Iterable[Any]) -> bool:
    """Whether a chain's compressors use what the teacher's training paid for (weights or outputs).

    ``steps``: compressor classes in chain order, or ``(class, params)`` pairs. The first step decides whether the
    candidate starts from the teacher's weights (``uses_teacher``: scratch does not); a later step works on the
    candidate the steps before it made, so it uses the teacher only when it learns from the teacher's outputs (a step
    tagged ``distillation`` with these params): ``scratch+quantize`` uses no teacher, ``scratch+kd_audio`` does.
    """
    from ddspbench.suite.recipe import DISTILLATION

    for i, item in enumerate(steps):
        cls, params = item if isinstance(item, tuple) else (item, None)
        if i == 0:
            if bool(getattr(cls, "uses_teacher", True)):
                return True
            continue
        if DISTILLATION in _tags(cls, params):
            return True
    return False


def matches_teacher_compute(steps: Iterable[Any]) -> bool:
    """Whether a chain's first step trains for its teacher's steps as well as its own (tagged ``compute_matched``
    with these params: scratch at ``budget: teacher+student``), so which teacher it is matched to sets its budget
    although it never uses the teacher's weights or outputs.

    ``steps``: ``(class, params)`` pairs in chain order (params as chosen; the class's defaults fill the rest).
    """
    from ddspbench.suite.recipe import COMPUTE_MATCHED

    first = next(iter(steps), None)
    return first is not None and COMPUTE_MATCHED in _tags(first[0], dict(first[1] or {}))
