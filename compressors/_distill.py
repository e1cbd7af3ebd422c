"""Students trained from scratch and by knowledge distillation (REFERENCE §4).

Paper: Giudici et al., "Distilling DDSP: Exploring Real-Time Audio Generation on Embedded Systems",
JAES 2025 (audio and control distillation of DDSP synthesizers); knowledge distillation after
Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; feature (hint) distillation after
Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.

With ``x`` the target audio, ``s``/``t`` the student's/teacher's audio, ``c_p`` the raw control head
``p``, ``sigma(.)`` the family's synth-space squashing (``exp_sigmoid`` for HpN/Wavetable; for DDX7
``max_ol * sigmoid``, applied once: the reference's double squashing is a defect) and ``h`` the GRU
output:

* ``scratch``:    ``L = MSS(x, s)`` (the baseline every KD result is compared with); ``budget="teacher+student"``
  trains it for the student's steps plus the teacher's (KD's compute including its teacher)
* ``kd_audio``:   ``L = w_target MSS(x, s) + w_kd MSS(t, s)``, reference ``w_target = w_kd = 0.5``
* ``kd_control``: ``L = w_target MSS(x, s) + w_kd sum_p mean|sigma(c_p^t) - sigma(c_p^s)|``,
  reference ``w_target = 0.5, w_kd = 1.0``
* ``kd_feature``: ``L = w_target MSS(x, s) + w_kd mean(h^t - P(h^s))^2`` with ``P`` a two-layer MLP
  projector trained jointly with the student (the reference never trained it); ``P`` is dropped from
  the saved candidate.

The teacher is frozen for the whole run (eval mode, ``requires_grad=False``, no autograd graph) and
left exactly as it was. The student is a registered size (``size=reduced``) or a width
(``hidden=64``; DDX7 ``channels=[...]``/``n_blocks``); inside a chain after pruning, the incoming
candidate is fine-tuned instead.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ddspbench.baselines import dsp
from ddspbench.compressors._base import (
    SIZE_KEYS,
    CompressContext,
    Compressor,
    build_student,
    clone_model,
    frozen,
)
from ddspbench.suite.bounds import STEPS_OR_NONE, WEIGHT, WIDTH, Choice, Flag, ListOf, Text
from ddspbench.suite.candidate import ParamSpec
from ddspbench.suite.compute import training_compute
from ddspbench.suite.errors import UserError
from ddspbench.suite.metrics.mss import MSSLoss
from ddspbench.suite.recipe import COMPUTE_MATCHED, DISTILLATION, FROM_SCRATCH
from ddspbench.suite.registry import COMPRESSORS
from ddspbench.suite.train import train, train_summary

__all__ = [
    "Scratch",
    "KDAudio",
    "KDControl",
    "KDFeature",
    "audio_kd_loss",
    "control_kd_loss",
    "feature_kd_loss",
    "copy_wavetables",
]

LossOut = tuple[torch.Tensor, dict[str, float]]
LossFn = Callable[[dict[str, Any], dict[str, torch.Tensor]], LossOut]

_STUDENT_DEFAULTS: dict[str, Any] = {"size": None, "hidden": None, "channels": None, "n_blocks": None, "trunk": None, "steps": None}
_STUDENT_BOUNDS: dict[str, Any] = {"size": Text(), "hidden": WIDTH, "channels": ListOf(WIDTH), "n_blocks": WIDTH,
                                   "trunk": WIDTH, "steps": STEPS_OR_NONE}
_KD_BOUNDS: dict[str, Any] = {**_STUDENT_BOUNDS, "kd_weight": WEIGHT, "target_weight": WEIGHT}
BUDGETS: tuple[str, ...] = ("student", "teacher+student")
"""Scratch's training budget: the recipe's student steps, or those plus the teacher's (compute-matched to KD)."""


_MOVED: weakref.WeakKeyDictionary[nn.Module, dict[torch.device, nn.Module]] = weakref.WeakKeyDictionary()


def _teacher_on(teacher: nn.Module, device: torch.device) -> nn.Module:
    """The teacher on ``device``: itself when already there, else a frozen copy moved there once (the original
    stays where the caller keeps it, e.g. on CPU while students train on CUDA)."""
    ref = next(teacher.parameters(), None)
    if ref is None or ref.device == device:
        return teacher
    per = _MOVED.setdefault(teacher, {})
    if device not in per:
        per[device] = copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    return per[device]


def _teacher_out(teacher: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    # the harmonic bank by the compiled kernels (float64 sines; the tensor path rounds k * phase to float32): most of
    # an HpN teacher's forward on CPU
    with torch.no_grad(), dsp.kernels_without_grad():
        return _teacher_on(teacher, batch["f0_hz"].device)(batch["f0_hz"], batch["loudness_db"])


def _teacher_controls(teacher: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The teacher's raw controls for a batch: its decoder alone when it offers ``fresh_controls`` (the same values as
    a full forward's ``controls``; the synth, a third of an HpN teacher's forward or more, is skipped), else a full
    forward."""
    model = _teacher_on(teacher, batch["f0_hz"].device)
    with torch.no_grad(), dsp.kernels_without_grad():  # the GRU as the student's trains: the same kernel
        fresh = getattr(model, "fresh_controls", None)
        if callable(fresh):
            return fresh(batch["f0_hz"], batch["loudness_db"])  # type: ignore[no-any-return]
        return model(batch["f0_hz"], batch["loudness_db"])["controls"]  # type: ignore[no-any-return]


def audio_kd_loss(teacher: nn.Module, kd_weight: float = 0.5, target_weight: float = 0.5) -> LossFn:
    """``w_target MSS(target, student) + w_kd MSS(teacher audio, student)`` as a training ``loss_fn``."""
    crit = MSSLoss(cache_targets=True)  # the target's spectra repeat with the crops; the teacher's audio does not

    def loss_fn(out: dict[str, Any], batch: dict[str, torch.Tensor]) -> LossOut:
        t_audio = _teacher_out(teacher, batch)["audio"]
        # one STFT of the student's audio per scale for both terms (and one backward through it)
        target, kd = crit.terms(out["audio"], [(batch["audio"], True), (t_audio, False)])
        loss = target_weight * target + kd_weight * kd
        return loss, {"mss": float(target.detach()), "kd_audio": float(kd.detach())}

    return loss_fn


def _select(teacher_ctrl: torch.Tensor, kept: Any) -> torch.Tensor:
    """The teacher's control on the student's components: kept indices, or a resampling matrix."""
    if kept is None:
        return teacher_ctrl
    if isinstance(kept, torch.Tensor):
        return teacher_ctrl @ kept.to(teacher_ctrl).T
    return teacher_ctrl[..., list(kept)]


def control_kd_loss(teacher: Any, student: Any, kd_weight: float = 1.0, target_weight: float = 0.5) -> LossFn:
    """``w_target MSS(target, student) + w_kd sum_p L1(sigma(teacher_p), sigma(student_p))`` as a ``loss_fn``.

    ``sigma`` is each model's own :meth:`synth_controls`. When the student's controls are a subset of
    the teacher's (DSP-aware pruning records the kept indices in ``student.kept_controls``), the
    teacher's controls are indexed the same way.
    """
    crit = MSSLoss(cache_targets=True)
    kept = getattr(student, "kept_controls", {}) or {}

    def loss_fn(out: dict[str, Any], batch: dict[str, torch.Tensor]) -> LossOut:
        t_controls = _teacher_controls(teacher, batch)
        with torch.no_grad():
            t_sc = teacher.synth_controls(t_controls)
        s_sc = student.synth_controls(out["controls"])
        kd = out["audio"].new_zeros(())
        logs: dict[str, float] = {}
        for name in student.control_names:
            t_c = _select(t_sc[name], kept.get(name))
            if t_c.shape != s_sc[name].shape:
                raise UserError(f"kd_control: teacher control {name!r} {tuple(t_c.shape)} does not match the student's {tuple(s_sc[name].shape)}")
            term = (t_c - s_sc[name]).abs().mean()
            logs[f"kd_{name}"] = float(term.detach())
            kd = kd + term
        target = crit(batch["audio"], out["audio"])
        loss = target_weight * target + kd_weight * kd
        return loss, {"mss": float(target.detach()), "kd_control": float(kd.detach()), **logs}

    return loss_fn


def feature_kd_loss(teacher: nn.Module, projector: nn.Module, kd_weight: float = 1.0, target_weight: float = 0.5) -> LossFn:
    """``w_target MSS(target, student) + w_kd MSE(teacher hidden, projector(student hidden))`` as a ``loss_fn``."""
    crit = MSSLoss()

    def loss_fn(out: dict[str, Any], batch: dict[str, torch.Tensor]) -> LossOut:
        t_hidden = _teacher_out(teacher, batch)["hidden"]
        kd = torch.mean((t_hidden - projector(out["hidden"])) ** 2)
        target = crit(batch["audio"], out["audio"])
        loss = target_weight * target + kd_weight * kd
        return loss, {"mss": float(target.detach()), "kd_feature": float(kd.detach())}

    return loss_fn


def copy_wavetables(teacher: nn.Module, student: nn.Module) -> int:
    """Copy the teacher's learnable wavetables into the student and freeze them; returns tables copied.

    The reference's "fixed pre-trained wavetables" option for Wavetable students.
    """
    if getattr(teacher, "family", None) != "wavetable":
        raise UserError("copy_wavetables applies to the wavetable family only")
    t_params = dict(teacher.named_parameters())
    copied = 0
    for name, p in student.named_parameters():
        if "wavetable" not in name.split(".")[-1]:  # not a method name: a torch parameter path
            continue
        src = t_params.get(name)
        if src is None or src.shape != p.shape:
            raise UserError(f"copy_wavetables: teacher and student wavetables differ ({name})")
        with torch.no_grad():
            p.copy_(src)
        p.requires_grad_(False)
        copied += int(p.shape[0]) if p.dim() > 1 else 1
    if copied == 0:
        raise UserError("copy_wavetables: the student has no learnable wavetables")
    return copied


def train_model(model: nn.Module, ctx: CompressContext, steps: int | None, loss_fn: Any, tag: str) -> dict[str, Any]:
    """Train ``model`` in place on ``ctx``'s data for ``steps`` (None: ``ctx.steps``) with ``loss_fn``; a JSON-able report."""
    train_set = ctx.require_train_set(tag)
    cfg = ctx.train_config(steps)
    res = train(model, train_set, ctx.valid_set, cfg, loss_fn=loss_fn, out_dir=ctx.step_dir(tag), progress=ctx.progress)
    final = res.history[-1] if res.history else {}
    compute = training_compute(res.model, train_set, cfg, loss_fn, res.steps, res.seconds)
    return {**train_summary(res), "final_loss": final.get("loss"), "compute": compute}


class _Student(Compressor):
    """Shared student handling: build a fresh student, or take the chain's candidate."""

    def student(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        widths = {k: params[k] for k in SIZE_KEYS if params.get(k) is not None}
        if ctx.candidate is not None:
            if params.get("size") is not None or widths:
                raise UserError(f"{self.name}: a chain step after another one fine-tunes the previous model; do not set size/widths")
            model: Any = clone_model(ctx.candidate)
            return model, {"student": "previous chain step", "student_config": dict(model.config)}
        size = params.get("size")
        if size is None and not widths:
            size = "reduced"
        fresh: Any = build_student(teacher, size, widths, seed=ctx.seed)
        return fresh, {"student": size or "custom", "student_config": dict(fresh.config)}


@COMPRESSORS.register("scratch")
class Scratch(_Student):
    """A student of the given size trained from scratch: L = MSS(x, s).

    The baseline every KD result is compared with (same recipe, steps and seed); Giudici et al.,
    "Distilling DDSP", JAES 2025, REFERENCE §4 (MSS weight 1.0 without KD).
    """

    name: ClassVar[str] = "scratch"
    tags: ClassVar[frozenset[str]] = frozenset({FROM_SCRATCH})
    defaults: ClassVar[Mapping[str, Any]] = {**_STUDENT_DEFAULTS, "budget": "student"}
    bounds: ClassVar[Mapping[str, Any]] = {**_STUDENT_BOUNDS, "budget": Choice(BUDGETS)}
    first_only: ClassVar[bool] = True
    trains_student: ClassVar[bool] = True
    uses_teacher: ClassVar[bool] = False

    @classmethod
    def step_tags(cls, params: Mapping[str, Any]) -> frozenset[str]:
        """``from_scratch``; at the ``teacher+student`` budget also ``compute_matched`` (an arm of its own, not the
        same-budget baseline KD is tested against)."""
        return cls.tags | ({COMPUTE_MATCHED} if params.get("budget") == "teacher+student" else set())

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        if ctx.candidate is not None:
            raise UserError("scratch trains a fresh student: it must be the first step of a chain")
        model, info = self.student(teacher, ctx, params)
        steps = ctx.steps if params["steps"] is None else int(params["steps"])
        variant: dict[str, Any] = {}
        if params["budget"] == "teacher+student":
            if ctx.teacher_steps is None:
                raise UserError("scratch budget 'teacher+student': the teacher's training steps are not known here")
            steps += int(ctx.teacher_steps)  # what KD's student and its teacher trained together
            variant = {"variant": "teacher+student steps"}
        report = train_model(model, ctx, steps, None, self.name)
        return model, {**info, **variant, "train": report}


@COMPRESSORS.register("kd_audio")
class KDAudio(_Student):
    """Audio distillation: L = w_target MSS(x, s) + w_kd MSS(t, s), reference w_target = w_kd = 0.5.

    Giudici et al., "Distilling DDSP", JAES 2025 (REFERENCE §4); KD after Hinton et al. 2015. ``x``
    target audio, ``s``/``t`` student/teacher audio; the teacher is frozen. ``copy_wavetables``
    copies and freezes a Wavetable teacher's tables in the student.
    """

    name: ClassVar[str] = "kd_audio"
    tags: ClassVar[frozenset[str]] = frozenset({DISTILLATION})
    defaults: ClassVar[Mapping[str, Any]] = {**_STUDENT_DEFAULTS, "kd_weight": 0.5, "target_weight": 0.5, "copy_wavetables": False}
    bounds: ClassVar[Mapping[str, Any]] = {**_KD_BOUNDS, "copy_wavetables": Flag()}
    trains_student: ClassVar[bool] = True
    # REFERENCE §4: audio KD weight 0.5; the range centres on it.
    search_space: ClassVar[Mapping[str, ParamSpec]] = {"kd_weight": ParamSpec(low=0.25, high=1.0)}

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        model, info = self.student(teacher, ctx, params)
        if params["copy_wavetables"]:
            info["wavetables_copied"] = copy_wavetables(teacher, model)
        with frozen(teacher):
            loss = audio_kd_loss(teacher, float(params["kd_weight"]), float(params["target_weight"]))
            report = train_model(model, ctx, params["steps"], loss, self.name)
        return model, {**info, "train": report, "loss": "w_target*MSS(target,s) + w_kd*MSS(teacher,s)"}


@COMPRESSORS.register("kd_control")
class KDControl(_Student):
    """Control distillation: L = w_target MSS(x, s) + w_kd sum_p mean|sigma(c_p^t) - sigma(c_p^s)|.

    Giudici et al., "Distilling DDSP", JAES 2025 (REFERENCE §4), reference w_target = 0.5, w_kd = 1.0;
    ``p`` runs over the control heads (HpN: amplitude, harmonic_distribution, noise_bands; Wavetable:
    amplitude, wave_attention, noise_bands; DDX7: ol), ``sigma`` is the family's synth-space map
    (``exp_sigmoid``; DDX7 ``max_ol * sigmoid`` once, not the reference's double squashing).
    """

    name: ClassVar[str] = "kd_control"
    tags: ClassVar[frozenset[str]] = frozenset({DISTILLATION})
    defaults: ClassVar[Mapping[str, Any]] = {**_STUDENT_DEFAULTS, "kd_weight": 1.0, "target_weight": 0.5, "copy_wavetables": False}
    bounds: ClassVar[Mapping[str, Any]] = {**_KD_BOUNDS, "copy_wavetables": Flag()}
    trains_student: ClassVar[bool] = True
    # REFERENCE §4: control KD weight 1.0; the range centres on it.
    search_space: ClassVar[Mapping[str, ParamSpec]] = {"kd_weight": ParamSpec(low=0.5, high=2.0)}

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        model, info = self.student(teacher, ctx, params)
        if params["copy_wavetables"]:
            info["wavetables_copied"] = copy_wavetables(teacher, model)
        with frozen(teacher):
            loss = control_kd_loss(teacher, model, float(params["kd_weight"]), float(params["target_weight"]))
            report = train_model(model, ctx, params["steps"], loss, self.name)
        return model, {**info, "train": report, "loss": "w_target*MSS(target,s) + w_kd*sum_p L1(sigma(t_p), sigma(s_p))"}


class _Projector(nn.Module):
    """``Linear(h_s, m) -> LeakyReLU -> Linear(m, h_t)``: maps student features to the teacher's width."""

    def __init__(self, h_s: int, h_t: int, mid: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(h_s, mid), nn.LeakyReLU(0.01), nn.Linear(mid, h_t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@COMPRESSORS.register("kd_feature")
class KDFeature(_Student):
    """Feature distillation: L = w_target MSS(x, s) + w_kd mean(h^t - P(h^s))^2 with a trained projector P.

    Romero et al., "FitNets", ICLR 2015; the reference code's variant, whose projector was never
    trained (REFERENCE §4). ``h`` is the decoder output ``hidden``; ``P`` (Linear-LeakyReLU-Linear) is
    optimised with the student and dropped from the candidate.
    """

    name: ClassVar[str] = "kd_feature"
    tags: ClassVar[frozenset[str]] = frozenset({DISTILLATION})
    defaults: ClassVar[Mapping[str, Any]] = {**_STUDENT_DEFAULTS, "kd_weight": 1.0, "target_weight": 0.5, "projector_hidden": None}
    bounds: ClassVar[Mapping[str, Any]] = {**_KD_BOUNDS, "projector_hidden": WIDTH}
    trains_student: ClassVar[bool] = True
    families: ClassVar[frozenset[str] | None] = frozenset({"hpn", "wavetable"})
    """The GRU families return decoder features (``hidden``); DDX7's TCN decoder does not."""

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        model, info = self.student(teacher, ctx, params)
        train_set = ctx.require_train_set(self.name)
        probe = train_set.subset([0]).crop(min(8, int(train_set.f0_hz.shape[1])))
        f0 = torch.as_tensor(probe.f0_hz, dtype=torch.float32)
        loud = torch.as_tensor(probe.loudness_db, dtype=torch.float32)
        with torch.no_grad():
            t_h, s_h = teacher(f0, loud).get("hidden"), model(f0, loud).get("hidden")
        if t_h is None or s_h is None:
            raise UserError(f"kd_feature needs decoder features ('hidden'); the {teacher.family} family has none")
        mid = int(params["projector_hidden"] or max(s_h.shape[-1], 32))
        torch.manual_seed(ctx.seed + 1)
        projector = _Projector(int(s_h.shape[-1]), int(t_h.shape[-1]), mid)
        model.kd_projector = projector  # trained with the student (its parameters join the optimizer)
        try:
            with frozen(teacher):
                loss = feature_kd_loss(teacher, projector, float(params["kd_weight"]), float(params["target_weight"]))
                report = train_model(model, ctx, params["steps"], loss, self.name)
        finally:
            del model.kd_projector  # not part of the candidate
        n_proj = sum(p.numel() for p in projector.parameters())
        return model, {**info, "train": report, "projector_params": int(n_proj), "loss": "w_target*MSS(target,s) + w_kd*MSE(h_t, P(h_s))"}
