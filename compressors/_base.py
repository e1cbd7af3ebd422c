"""The compressor interface: one entry point that turns a trained teacher into a cheaper candidate.

Every compression method (``scratch``, ``kd_audio``, ``kd_control``, ``prune``, ``quantize``, chains)
is a :class:`Compressor` subclass registered in :data:`suite.registry.COMPRESSORS`, so the sweep
calls all of them the same way::

    comp = COMPRESSORS.get("kd_audio")()
    result = comp.compress(teacher, ctx, size="reduced", kd_weight=0.5)
    result.model, result.description

A compressor declares its hyper-parameters and their defaults in ``defaults``; an unknown
hyper-parameter is a :class:`~suite.errors.UserError`. Inside a chain, the model a step starts from
is ``ctx.candidate`` (the previous step's output); the ``teacher`` is always the original,
uncompressed model.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from ddspbench.compressors._stats import model_stats
from ddspbench.suite.bounds import check_values
from ddspbench.suite.candidate import ParamSpec
from ddspbench.suite.errors import UserError
from ddspbench.suite.recipe import StepReport
from ddspbench.suite.registry import FAMILIES, SIZES
from ddspbench.suite.train import TrainConfig
from ddspbench.suite.traits import traits_of

if TYPE_CHECKING:
    from ddspbench.suite.data.store import ClipSet
    from ddspbench.suite.train import TrainConfig

TRAINING = "train"
"""The report entry of a compressor's training summary (a :class:`suite.recipe.StepReport`'s ``training``)."""
COMPUTE = "compute"
"""The report entry of a compressor's own training compute (a :class:`suite.recipe.StepReport`'s ``compute``)."""

__all__ = [
    "TRAINING",
    "COMPUTE",
    "Compressor",
    "CompressContext",
    "CompressResult",
    "SIZE_KEYS",
    "build_student",
    "frozen",
    "clone_model",
]

SIZE_KEYS: tuple[str, ...] = ("hidden", "widths", "channels", "n_blocks", "trunk")
"""The width parameters the student compressors accept (``scratch``/``kd_*``: ``hidden=64``...); which of them a
family's constructor takes is its own declaration (:attr:`suite.traits.FamilyTraits.size_keys`)."""


@dataclass
class CompressContext:
    """What every compressor gets besides the teacher: data, training settings, a work directory.

    Attributes:
        train_set: training clips (``None`` only for methods that do not train, e.g. ``quantize``).
        valid_set: held-out clips for validation during training (optional).
        steps: optimizer steps of any training the method does (scratch/KD training, fine-tuning).
        batch_size: clips per step.
        lr: AdamW learning rate.
        device: ``"cpu"`` or ``"cuda"``.
        seed: seeds student initialisation, batch order and noise.
        frames: crop training clips to this many frames (``None``: whole clips).
        work_dir: where training may write checkpoints (``None``: nothing written).
        progress: show training progress bars.
        candidate: the model this step starts from inside a chain (``None``: the first step).
        train_options: further :class:`suite.train.TrainConfig` fields (``valid_every``, ``gamma``...).
        teacher_steps: the steps the teacher trained (``None``: unknown); scratch's ``budget="teacher+student"``
            trains that many steps more, to match KD's compute including its teacher.
    """

    train_set: ClipSet | None = None
    valid_set: ClipSet | None = None
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    device: str = "cpu"
    seed: int = 0
    frames: int | None = None
    work_dir: Path | None = None
    progress: bool = False
    candidate: nn.Module | None = None
    train_options: dict[str, Any] = field(default_factory=dict)
    teacher_steps: int | None = None

    def train_config(self, steps: int | None = None) -> TrainConfig:
        """The :class:`suite.train.TrainConfig` of this context (``steps`` overrides ``self.steps``)."""
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        bad = sorted(set(self.train_options) - known)
        if bad:
            raise UserError(f"unknown training option(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        kwargs: dict[str, Any] = {
            "steps": int(self.steps if steps is None else steps),
            "batch_size": self.batch_size,
            "lr": self.lr,
            "device": self.device,
            "seed": self.seed,
            "frames": self.frames,
        }
        kwargs.update(self.train_options)
        return TrainConfig(**kwargs)

    def require_train_set(self, method: str) -> ClipSet:
        """The training set, or a one-line error naming the method that needs it."""
        if self.train_set is None or len(self.train_set) == 0:
            raise UserError(f"{method} trains a model and needs a training set (none given)")
        return self.train_set

    def step_dir(self, name: str) -> Path | None:
        """A sub-directory of ``work_dir`` for one step's files (``None`` without a work dir)."""
        return None if self.work_dir is None else Path(self.work_dir) / name

    def with_candidate(self, model: nn.Module | None) -> CompressContext:
        """A copy of this context whose chain step starts from ``model``."""
        return dataclasses.replace(self, candidate=model)


@dataclass
class CompressResult:
    """A candidate and what was done to get it.

    Attributes:
        model: a ddspbench model (has ``family``/``config``; checkpointable with
            :func:`suite.checkpoint.save_checkpoint`), in eval mode.
        steps: one typed :class:`suite.recipe.StepReport` per step run (one for a compressor, one per step for a
            chain): parameters, sizes before/after, seconds, training summary, compute, tags, size label.
        description: JSON-able, for people and checkpoints: ``method``, every hyper-parameter (``params``), the
            method's own report, before/after and seconds (a chain: its steps' descriptions under ``steps``).
    """

    model: nn.Module
    steps: tuple[StepReport, ...]
    description: dict[str, Any]


class Compressor(abc.ABC):
    """A compression method. Subclasses set ``name``, ``defaults`` and implement :meth:`run`.

    ``compress`` validates the hyper-parameters against ``defaults``, calls :meth:`run`, and adds the
    parameter counts and serialized sizes of the starting model and of the candidate to the
    description, so every method reports what it did in the same terms.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Any]] = {}
    """Every hyper-parameter the method accepts, with its default."""
    post_training: ClassVar[bool] = False
    """True for methods that must come after all training in a chain (quantization)."""
    first_only: ClassVar[bool] = False
    """True for methods that start from a fresh model and so can only be a chain's first step."""

    # --- self-description: what a sweep reads (suite.sweep.space never names a compressor) -----------
    bounds: ClassVar[Mapping[str, Any]] = {}
    """What each hyper-parameter of ``defaults`` accepts: a :mod:`suite.bounds` spec per name (``None`` always
    passes: the default). ``compress`` checks the values against it before any work, and a sweep file's search
    ranges are checked against it too."""
    search_space: ClassVar[Mapping[str, ParamSpec]] = {}
    """The hyper-parameters a sweep searches and their default ranges (a config overrides them one by one);
    every other hyper-parameter keeps its value from ``defaults``."""
    trains_student: ClassVar[bool] = False
    """True when the method trains a new student of a chosen ``size`` (the sweep then samples one)."""
    uses_teacher: ClassVar[bool] = True
    """Whether the candidate uses what the teacher's training paid for (its weights or its outputs); the record's
    compute then counts the teacher's training as inherited (:mod:`suite.compute`). Scratch does not."""
    families: ClassVar[frozenset[str] | None] = None
    """The families the method works on (None: every family)."""
    unsupported: ClassVar[Mapping[str, Mapping[str, tuple[Any, ...]]]] = {}
    """family -> hyper-parameter -> values that do not work on that family (e.g. int8 on a decoder
    without Linear/GRU layers); the sweep never proposes them."""
    tags: ClassVar[frozenset[str]] = frozenset()
    """What the method is (:mod:`suite.recipe` tags: ``distillation``, ``from_scratch``, ``pruning``,
    ``quantization``); its step reports carry them and reports tell arms apart by them, never by name."""

    @classmethod
    def step_tags(cls, params: Mapping[str, Any]) -> frozenset[str]:
        """The tags of one run with these (resolved) hyper-parameters; default: the class's ``tags``. A method whose
        nature depends on a setting (a fine-tuning loss with a distillation term) overrides this."""
        return cls.tags

    @classmethod
    def size_label(cls, start: str) -> str | None:
        """The size label of the model this method makes from a model labelled ``start``; None: it keeps ``start``
        (or, for a method that trains a new student, the student's size is the recipe's)."""
        return None

    @classmethod
    def uses_seed(cls, params: Mapping[str, Any], steps: int) -> bool:
        """Whether the candidate this method makes depends on ``ctx.seed`` (what a sweep's repeats vary).

        ``params`` are the step's hyper-parameters (defaults filled in), ``steps`` the training
        recipe's ``ctx.steps``. The default assumes it does (training, initialisation, random draws),
        except for ``post_training`` methods, which transform a given model the same way every time
        (quantization). A method whose seed use depends on its settings overrides this (``prune``
        without fine-tuning and with a deterministic importance ignores the seed).
        """
        return not cls.post_training

    @classmethod
    def supports_size(cls, family: str, size: str) -> bool:
        """Whether the method can train a student of ``size`` (a size name or ``key=value``) for ``family``."""
        return True

    @classmethod
    def space_for(cls, family: str, ranges: Mapping[str, ParamSpec]) -> dict[str, ParamSpec] | None:
        """``ranges`` narrowed to the values that work on ``family``; None when the family is not supported.

        A categorical range that loses every choice means the method cannot run on ``family`` with
        the searched values, so that is None too.
        """
        if cls.families is not None and family not in cls.families:
            return None
        bad = cls.unsupported.get(family, {})
        out: dict[str, ParamSpec] = {}
        for key, spec in ranges.items():
            narrowed = spec.without(bad.get(key, ()))
            if narrowed is None:
                return None
            out[key] = narrowed
        return out

    @classmethod
    def supports(cls, family: str, params: Mapping[str, Any] | None = None, size: str | None = None) -> bool:
        """Whether the method runs on ``family`` with these hyper-parameter values and student ``size``."""
        if cls.families is not None and family not in cls.families:
            return False
        if cls.rejects(family, {**cls.defaults, **dict(params or {})}):
            return False
        return size is None or not cls.trains_student or cls.supports_size(family, size)

    @classmethod
    def rejects(cls, family: str, values: Mapping[str, Any]) -> bool:
        """Whether any of these hyper-parameter ``values`` is declared unsupported on ``family``."""
        bad = cls.unsupported.get(family, {})
        return any(v in bad.get(k, ()) for k, v in values.items())

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults updated with ``params``; unknown names and values outside ``bounds`` raise a one-line
        :class:`UserError`."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "(none)"
            raise UserError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; known: {known}")
        # before any work: every declared value within its declaration (a plug-in that declares nothing is unchecked;
        # every built-in compressor declares all its parameters, tests/unit/test_cli_bounds.py)
        check_values({k: v for k, v in params.items() if k in self.bounds}, self.bounds, self.name)
        return {**copy.deepcopy(dict(self.defaults)), **dict(params)}

    def compress(self, teacher: nn.Module, ctx: CompressContext, **params: Any) -> CompressResult:
        """Turn ``teacher`` (or ``ctx.candidate`` inside a chain) into a candidate.

        Args:
            teacher: the trained, uncompressed model (never modified).
            ctx: data, training settings and the chain's current candidate.
            **params: the method's hyper-parameters (see ``defaults``).

        Returns:
            A :class:`CompressResult`.
        """
        resolved = self.resolve_params(params)
        start = ctx.candidate if ctx.candidate is not None else teacher
        before = model_stats(start)
        t0 = time.perf_counter()
        model, report = self.run(teacher, ctx, resolved)
        seconds = time.perf_counter() - t0
        model.eval()
        after = model_stats(model)
        details = dict(report)
        training = details.pop(TRAINING, None)
        compute = details.pop(COMPUTE, None) or (training or {}).get(COMPUTE) or {}  # train_model keeps it in train
        step = StepReport(method=self.name, params=resolved, tags=tuple(self.step_tags(resolved)),
                          size_label=getattr(model, "size_name", None), before=before, after=after,
                          seconds=round(seconds, 3), training=training, compute=dict(compute), details=details)
        return CompressResult(model=model, steps=(step,), description=step.description())

    @abc.abstractmethod
    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        """Do the work: return the candidate and a JSON-able report of what was done.

        The report's :data:`TRAINING` entry (``"train"``) is the summary of the training the method did
        (:func:`suite.train.train_summary`; None or absent when it trained nothing) and its :data:`COMPUTE` entry
        (``"compute"``) the training compute it spent; both become fields of its :class:`suite.recipe.StepReport`,
        the rest its ``details``.
        """


def clone_model(model: nn.Module) -> nn.Module:
    """An independent copy that keeps the ddspbench identity attributes (family, size, config, transforms).

    A model with parametrized layers (DDX7's weight norm) is rebuilt from its config and state
    instead of deep-copied: a deep copy shares torch's generated ``Parametrized*`` classes, so removing
    the parametrization from the copy (as pruning does) would break the original.
    """
    src: Any = model
    out: Any
    if not getattr(model, "ddsp_transforms", None) and any(parametrize.is_parametrized(m) for m in model.modules()):
        out = FAMILIES.get(src.family)(**copy.deepcopy(dict(src.config)))
        out.load_state_dict(model.state_dict())
        for p_out, p_in in zip(out.parameters(), model.parameters()):
            p_out.requires_grad_(p_in.requires_grad)
        out.train(model.training)
    else:
        out = copy.deepcopy(model)
    for attr in ("family", "size_name", "config", "ddsp_transforms", "kept_controls"):
        if hasattr(model, attr):
            setattr(out, attr, copy.deepcopy(getattr(model, attr)))
    return out


def build_student(teacher: nn.Module, size: str | None = None, widths: Mapping[str, Any] | None = None, *, seed: int = 0) -> nn.Module:
    """A freshly initialised model of the teacher's family with another width.

    Every constructor argument of the teacher that is not a width (the family's declared ``size_keys``,
    :class:`suite.traits.FamilyTraits`), e.g. the DDX7
    instrument or the number of harmonics, is kept; the width comes from the registered size
    ``"<family>/<size>"`` or from explicit ``widths`` (e.g. ``{"hidden": 64}`` or
    ``{"channels": [32, 32, 32]}``).

    Args:
        teacher: the model whose family and non-width settings the student shares.
        size: a registered size name of the family (``"reduced"``, ``"full"``...).
        widths: explicit width keys; applied after ``size``.
        seed: seeds the initialisation.
    """
    t: Any = teacher
    family: str = t.family
    t_config: dict[str, Any] = dict(t.config)
    size_keys = traits_of(teacher).size_keys
    config = {k: copy.deepcopy(v) for k, v in t_config.items() if k not in size_keys}
    size_name = "custom"
    if size is not None:
        key = f"{family}/{size}"
        if key not in SIZES:
            known = ", ".join(n.split("/", 1)[1] for n in SIZES.list(f"{family}/*")) or "(none)"
            raise UserError(f"unknown size {size!r} for family {family}; known: {known}")
        ref: Any = SIZES.get(key)()
        config.update({k: copy.deepcopy(v) for k, v in dict(ref.config).items() if k in size_keys})
        size_name = size
    extra = dict(widths or {})
    bad = sorted(set(extra) - set(size_keys))
    if bad:
        raise UserError(f"not a width setting of {family}: {', '.join(bad)}; its widths are {', '.join(size_keys)}")
    if extra:
        if size is None and "n_blocks" in t_config and "channels" not in extra:
            config["n_blocks"] = t_config["n_blocks"]  # a width alone keeps the teacher's depth
        config = {k: v for k, v in config.items() if k != "widths"}  # explicit widths replace per-layer ones
        config.update(extra)
        size_name = "custom"
    if size is None and not extra:
        raise UserError("a student needs a size (e.g. size=reduced) or a width (e.g. hidden=64)")
    torch.manual_seed(seed)
    try:
        student: Any = FAMILIES.get(family)(**config)
    except (TypeError, ValueError) as exc:
        raise UserError(f"cannot build a {family} student with {config}: {exc}") from None
    student.size_name = size_name
    return student


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Freeze a teacher for the duration of a KD run: eval mode, ``requires_grad=False``.

    The previous flags and mode are restored on exit, so the caller's model is left as it was.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
