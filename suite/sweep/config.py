"""The resolved configuration of a sweep: typed dataclasses loaded from plain YAML (no code in configs).

A sweep is described by a :class:`SweepConfig`. It starts from a preset (:mod:`suite.presets`), a YAML
sweep file overrides any part of it (a partial tree with the same keys), and command-line flags override
both. Every mapping is validated: an unknown key, a wrong type or an unknown name raises a one-line
:class:`~suite.errors.UserError` that names the key. The resolved config is saved next to the results.

Example (``suite/configs/smoke_hpn_kd.yaml``)::

    preset: smoke
    study: hpn-kd
    trials: 6
    objectives: [mss, rtf_stream_64, param_bytes]
    space:
      families: [hpn]
      methods: [scratch, kd_audio, "prune+quantize"]
      params:
        prune: {ratio: {low: 0.3, high: 0.7}}
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from ddspbench.suite.bounds import BATCH, FRAMES, LR, REPEATS, SEED, STEPS_OR_NONE, THREADS, TRIALS
from ddspbench.suite.candidate import ParamSpec
from ddspbench.suite.errors import UserError
from ddspbench.suite.recipe import DEFAULT_TEACHER

__all__ = [
    "ParamSpec",
    "SPEED_BACKENDS",
    "DataConfig",
    "RecipeConfig",
    "StudentConfig",
    "TeacherConfig",
    "TeacherVariant",
    "DEFAULT_TEACHER",
    "SpaceConfig",
    "EvalConfig",
    "SweepConfig",
    "config_from_dict",
    "deep_merge",
    "load_yaml",
    "config_hash",
]


@dataclass
class DataConfig:
    """Where the clips come from.

    Attributes:
        dataset: registered dataset name (``synthetic``, ``soundfont``, ``folder``).
        path: a prepared dataset directory, or a folder of audio for ``folder`` (``--data-path``).
        options: keyword options of the dataset builder (e.g. ``{"timbres": 3}``).
        frames: crop every clip to its first ``frames`` frames (None: whole 4 s clips).
        max_train: at most this many training clips (None: all); likewise ``max_valid``/``max_test``.
    """

    dataset: str = "synthetic"
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    frames: int | None = None
    max_train: int | None = None
    max_valid: int | None = None
    max_test: int | None = None


@dataclass
class RecipeConfig:
    """A training recipe (REFERENCE §4 by default): steps, batch size, learning rate, and which weights a run
    keeps and is evaluated at (``checkpoint``: ``best`` validation MSS, the default, or ``last``)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    checkpoint: str = "best"


@dataclass
class StudentConfig(RecipeConfig):
    """How candidates train (students, and fine-tuning after pruning unless a method fixes its own steps).

    Attributes:
        steps, batch_size, lr: the training recipe.
        family_steps: family -> steps for that family, instead of ``steps``. Budgets come from each family's
            learning curves, and families converge at different speeds (on the compare preset's data DDX7's
            reduced students in a few hundred steps, HpN's not by 600).
    """

    family_steps: dict[str, int] = field(default_factory=dict)

    def steps_for(self, family: str) -> int:
        """The training steps of ``family``."""
        return int(self.family_steps.get(family, self.steps))


@dataclass
class TeacherConfig(StudentConfig):
    """How each family's teacher is built and trained (once per family, dataset and recipe).

    Attributes:
        steps, batch_size, lr, family_steps: the teacher's training recipe (``family_steps`` as for students).
        size: the registered size the teacher starts from (``full``).
        widths: family -> constructor keyword overrides (e.g. ``{"hpn": {"hidden": 64}}`` for a
            reduced-width smoke teacher built through the same code path). A family absent here
            uses the registered size as is.
        seeds: teachers per family, trained with seeds ``seed, seed + 1, ...``: run ``k`` of a configuration
            (its ``k``-th repeat) uses teacher ``k mod seeds``, so a KD arm's run-to-run spread includes the
            teacher's, and a method that only transforms the teacher (int8, pruning without fine-tuning) runs
            once per teacher.
    """

    size: str = "full"
    widths: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: int = 1
    variants: dict[str, TeacherVariant] = field(default_factory=dict)

    def seed_of(self, base_seed: int, index: int) -> int:
        """The training seed of teacher ``index`` (``index`` modulo ``seeds``) of a sweep seeded ``base_seed``."""
        return base_seed + index % max(1, self.seeds)

    def variant(self, name: str | None) -> TeacherConfig:
        """The teacher recipe of variant ``name`` (None or :data:`DEFAULT_TEACHER`: this one), without variants.

        A variant replaces the fields it sets. One that sets ``size`` starts from that size's registered widths
        (the default teacher's ``widths`` are not carried over unless it sets its own), and one that sets ``steps``
        drops the default teacher's ``family_steps`` unless it sets its own: "a 300-step teacher" means 300 steps
        for every family.
        """
        if name is None or name == DEFAULT_TEACHER:
            return dataclasses.replace(self, variants={})
        try:
            v = self.variants[name]
        except KeyError:
            known = ", ".join([DEFAULT_TEACHER, *self.variants])
            raise UserError(f"unknown teacher variant {name!r}; known: {known}") from None
        changes: dict[str, Any] = {k: getattr(v, k) for k in ("size", "widths", "steps", "family_steps", "lr",
                                                             "batch_size", "checkpoint") if getattr(v, k) is not None}
        if v.size is not None and v.widths is None:
            changes["widths"] = {}
        if v.steps is not None and v.family_steps is None:
            changes["family_steps"] = {}
        return dataclasses.replace(self, variants={}, **changes)

    @property
    def variant_names(self) -> list[str]:
        """The teachers a teacher-using method chooses among: ``[]`` when there are no variants (nothing to choose),
        else :data:`DEFAULT_TEACHER` and the variants' names in config order."""
        return [DEFAULT_TEACHER, *self.variants] if self.variants else []


@dataclass
class TeacherVariant:
    """Another teacher for the same family and data: a different size or training budget (``teacher.variants``).

    Every field left out (None) is the default teacher's (:meth:`TeacherConfig.variant`). Methods that start from
    the teacher's weights or learn from its outputs (KD, pruning, quantization) choose among the default teacher and
    the variants (the trial parameter ``teacher``; every one of them under ``grid: true``), so the report shows each
    method per teacher, and the record names the teacher it used. Seeds are the default teacher's (``seeds``).

    Example: ``variants: {short: {steps: 300}, small: {size: reduced}}``.
    """

    size: str | None = None
    widths: dict[str, dict[str, Any]] | None = None
    steps: int | None = None
    family_steps: dict[str, int] | None = None
    lr: float | None = None
    batch_size: int | None = None
    checkpoint: str | None = None


@dataclass
class SpaceConfig:
    """The search space.

    Attributes:
        families: family names or wildcards (``FAMILIES.expand``).
        methods: compressor names or chains joined by ``+`` (``prune+kd_audio+quantize``).
        sizes: student sizes for methods that train a new student (scratch, KD): registered size
            names (``reduced``) or constructor overrides (``hidden=32``); a list for every family, or
            family -> list.
        params: method -> parameter -> :class:`ParamSpec`, overriding the built-in defaults of
            each compressor's own ``search_space`` (:class:`compressors.Compressor`) parameter by parameter.
    """

    families: list[str] = field(default_factory=lambda: ["hpn", "wavetable", "ddx7"])
    methods: list[str] = field(default_factory=lambda: ["scratch", "kd_audio", "kd_control", "prune", "quantize"])
    sizes: dict[str, list[str]] | list[str] = field(default_factory=lambda: ["reduced"])
    params: dict[str, dict[str, ParamSpec]] = field(default_factory=dict)


SPEED_BACKENDS: tuple[str, ...] = ("eager", "native", "torchscript", "onnxruntime")


@dataclass
class EvalConfig:
    """How candidates are measured (``suite.evaluate.evaluate_model`` options)."""

    metrics: list[str] = field(default_factory=lambda: ["mss", "mss_teacher", "fad", "rtf", "stream", "memory", "size"])
    embedding: str = "logmel"
    stream_buffers: list[int] = field(default_factory=lambda: [64, 256])
    n_audio_examples: int = 4
    threads: int = 1
    speed_backend: str = "eager"
    """Inference path the speed metrics time: ``eager`` (any candidate), or ``native`` / ``torchscript``
    (float candidates on CPU; a candidate the path refuses, e.g. a quantized one, becomes a failed record)."""


@dataclass
class SweepConfig:
    """Everything a sweep needs, resolved from preset + YAML + flags (never holds storage credentials).

    Attributes:
        preset: the preset this config started from (recorded in every record's ``provenance``).
        study: the Optuna study name.
        trials: finished trials the study should have in total (re-running runs only the missing ones).
        sampler: sampler name (:data:`suite.sweep.space.SAMPLERS`).
        seed: seeds data, training, sampling and evaluation.
        repeats: seeds per sampled configuration: each trial trains and evaluates its candidate with
            seeds ``seed + k`` for ``k`` in ``0..repeats-1`` (one record each) and tells Optuna the mean
            over the ok seeds. Data, splits and teachers keep ``seed``. A candidate that does not depend
            on the seed (no training, no random draws: quantization, pruning without fine-tuning) runs once.
        objectives: metric names (``suite.records.STANDARD_METRICS``), all minimised.
        device: ``cpu`` or ``cuda``.
        covering: enqueue one trial per (method, family) pair first, so every method is measured
            before the sampler explores.
        grid: the covering set holds one trial per combination of each pair's sizes and categorical choices
            (every arm of a comparison, none left to chance); left out of the config hash when False.
        threads: torch intra-op threads for training (None: torch's default); small models train
            faster on one thread, and one thread per process lets workers share a machine.
    """

    preset: str = "custom"
    study: str = "sweep"
    trials: int = 10
    sampler: str = "nsga2"
    seed: int = 0
    repeats: int = 1
    objectives: list[str] = field(default_factory=lambda: ["mss", "rtf_stream_64", "param_bytes"])
    device: str = "cpu"
    covering: bool = True
    grid: bool = False
    threads: int | None = None
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-able dict (the form :func:`config_from_dict` reads back)."""
        return _drop_none_params(dataclasses.asdict(self))

    def sizes_for(self, family: str) -> list[str]:
        """The student sizes searched for ``family``."""
        sizes = self.space.sizes
        if isinstance(sizes, dict):
            return list(sizes.get(family, sizes.get("*", ["reduced"])))
        return list(sizes)


def _drop_none_params(d: dict[str, Any]) -> dict[str, Any]:
    variants = d.get("teacher", {}).get("variants") or {}
    for name, v in variants.items():  # a variant holds only what it changes
        variants[name] = {k: x for k, x in v.items() if x is not None}
    params = d.get("space", {}).get("params", {})
    for method, ps in params.items():
        params[method] = {k: {a: b for a, b in v.items() if b is not None and not (a == "log" and b is False)} for k, v in ps.items()}
    return d


def config_hash(cfg: SweepConfig, exclude: tuple[str, ...] = ("trials", "study")) -> str:
    """A stable hash of what makes two sweeps' trials comparable (trial count and study name excluded).

    ``repeats`` counts: a value told to Optuna is a mean over that many seeds, and means over 2 seeds
    and single-seed values are not one objective (the sampler would favour lucky single seeds). It is
    left out at its default 1, so studies made before it existed keep their hash.
    """
    d = {k: v for k, v in cfg.to_dict().items()
         if k not in exclude and not (k == "repeats" and v == 1) and not (k == "grid" and v is False)}
    if d.get("teacher", {}).get("seeds") == 1:  # one teacher, as before teachers had seeds: hashes stay
        d["teacher"] = {k: v for k, v in d["teacher"].items() if k != "seeds"}
    if not d.get("teacher", {}).get("variants", True):  # no variants, as before there could be some: hashes stay
        d["teacher"] = {k: v for k, v in d["teacher"].items() if k != "variants"}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in: mappings merge key by key, everything else replaces.

    ``space.params`` merges down to single parameters, so a YAML file can change one range.
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("options",):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


MAX_YAML_BYTES = 1_000_000
MAX_YAML_NODES = 100_000
"""Caps on a sweep file: its size, and its node count with every alias expanded (an alias bomb
grows a few hundred bytes into millions of nodes, copied into the study and every record)."""


def _expanded_nodes(node: Any, memo: dict[int, int], depth: int = 0) -> int:
    """How many nodes ``node`` stands for once aliases are expanded (shared nodes counted per use)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if depth > 200:
        raise UserError("nesting deeper than 200 levels")
    memo[key] = 1  # a cycle counts once instead of recursing forever
    value = node.value
    total = 1
    if isinstance(value, list):
        for item in value:
            for child in item if isinstance(item, tuple) else (item,):
                total += _expanded_nodes(child, memo, depth + 1)
                if total > MAX_YAML_NODES:
                    break
    memo[key] = total
    return total


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML sweep file with ``yaml.safe_load`` (tags that run code are refused).

    The file must be UTF-8, at most :data:`MAX_YAML_BYTES`, and at most :data:`MAX_YAML_NODES`
    nodes with its aliases expanded (counted on the node graph, before anything is expanded).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"sweep config not found: {p}")
    raw = p.read_bytes()
    if len(raw) > MAX_YAML_BYTES:
        raise UserError(f"{p}: {len(raw):,} bytes; a sweep config may hold at most {MAX_YAML_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            try:
                nodes = _expanded_nodes(root, {})
            except UserError as exc:
                raise UserError(f"{p}: {exc}") from None
            if nodes > MAX_YAML_NODES:
                raise UserError(f"{p}: more than {MAX_YAML_NODES:,} values once its aliases are expanded "
                                "(an alias bomb?); write the values out")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{p}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{p}: a sweep config must be a mapping of keys, got {type(data).__name__}")
    return data


# --- validation ---------------------------------------------------------------------------------


def config_from_dict(data: dict[str, Any], where: str = "config") -> SweepConfig:
    """Validate a plain dict into a :class:`SweepConfig` (one-line :class:`UserError` on any problem)."""
    cfg = _build(SweepConfig, data, where)
    _check_semantics(cfg, where)
    return cfg


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(names)})")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[-1] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return value  # ints stay ints (an int range is an int parameter)
        raise UserError(f"{where}: expected a finite number, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected an integer, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where}: expected a string, got {value!r}")
    raise UserError(f"{where}: unsupported value {value!r}")  # pragma: no cover


def _check_semantics(cfg: SweepConfig, where: str) -> None:
    # the bounds the command line declares for the same settings (suite.bounds), so a file cannot pass what a flag cannot
    TRIALS.check(cfg.trials, f"{where}.trials")
    REPEATS.check(cfg.repeats, f"{where}.repeats")
    REPEATS.check(cfg.teacher.seeds, f"{where}.teacher.seeds")
    SEED.check(cfg.seed, f"{where}.seed")
    if not cfg.study or any(c in cfg.study for c in "/\\\n\r\0") or cfg.study.startswith("."):
        raise UserError(f"{where}.study: {cfg.study!r} is not a usable study name")
    if not cfg.objectives:
        raise UserError(f"{where}.objectives: at least one objective is needed")
    if len(set(cfg.objectives)) != len(cfg.objectives):
        raise UserError(f"{where}.objectives: an objective is listed twice")
    # Lazy: suite.sweep.space imports the compressors (and torch) to read their search spaces, which
    # validating a config must not need; space imports this module only for type checking.
    from ddspbench.suite.sweep.space import SAMPLERS

    if cfg.sampler not in SAMPLERS:
        raise UserError(f"{where}.sampler: unknown sampler {cfg.sampler!r}; known: {', '.join(sorted(SAMPLERS))}")
    if cfg.device != "cpu" and not cfg.device.startswith("cuda"):
        raise UserError(f"{where}.device: {cfg.device!r} is not cpu or cuda[:N]")
    recipes: list[tuple[str, RecipeConfig]] = [("teacher", cfg.teacher), ("student", cfg.student)]
    for name in cfg.teacher.variants:
        if name == DEFAULT_TEACHER or not name or not all(c.isalnum() or c in "-_." for c in name):
            raise UserError(f"{where}.teacher.variants: {name!r} is not a usable variant name "
                            f"(letters, digits, - _ . ; not {DEFAULT_TEACHER!r})")
        recipes.append((f"teacher.variants.{name}", cfg.teacher.variant(name)))
    for sect, recipe in recipes:
        STEPS_OR_NONE.check(recipe.steps, f"{where}.{sect}.steps")
        BATCH.check(recipe.batch_size, f"{where}.{sect}.batch_size")
        LR.check(recipe.lr, f"{where}.{sect}.lr")
        if recipe.checkpoint not in ("best", "last"):
            raise UserError(f"{where}.{sect}.checkpoint: {recipe.checkpoint!r} is not best or last")
    if cfg.threads is not None:
        THREADS.check(cfg.threads, f"{where}.threads")
    if cfg.data.frames is not None:
        FRAMES.check(cfg.data.frames, f"{where}.data.frames")
    if not cfg.space.families or not cfg.space.methods:
        raise UserError(f"{where}.space: families and methods must not be empty")
    if not cfg.evaluation.stream_buffers or any(b < 1 for b in cfg.evaluation.stream_buffers):
        raise UserError(f"{where}.evaluation.stream_buffers: positive buffer sizes are required")
    if cfg.evaluation.speed_backend not in SPEED_BACKENDS:
        raise UserError(f"{where}.evaluation.speed_backend: {cfg.evaluation.speed_backend!r} is not one of "
                        f"{', '.join(SPEED_BACKENDS)}")
    _check_sections(cfg, where)


def _check_sections(cfg: SweepConfig, where: str) -> None:
    """Bounds and names of every section, so a study never starts with a config that fails every trial."""
    from ddspbench.suite.records import STREAM_BUFFERS
    from ddspbench.suite.sweep.names import check_names

    ev = cfg.evaluation
    bad = [b for b in ev.stream_buffers if b not in STREAM_BUFFERS]
    if bad:
        raise UserError(f"{where}.evaluation.stream_buffers: {bad[0]} is not one of {', '.join(map(str, STREAM_BUFFERS))} "
                        "(multiples of 64 samples with a standard metric)")
    if ev.threads < 1:
        raise UserError(f"{where}.evaluation.threads: at least 1, got {ev.threads}")
    if ev.n_audio_examples < 0:
        raise UserError(f"{where}.evaluation.n_audio_examples: at least 0, got {ev.n_audio_examples}")
    check_names(cfg, where)  # every registry name, in one place
    data = cfg.data
    from ddspbench.suite.data.api import check_options, dataset_options

    known = dataset_options(data.dataset)
    unknown = sorted(set(data.options) - set(known))
    if unknown:
        raise UserError(f"{where}.data.options: dataset {data.dataset!r} has no option {unknown[0]!r}; "
                        f"known: {', '.join(sorted(known))}")
    try:
        check_options(data.dataset, data.options)
    except UserError as exc:
        raise UserError(f"{where}.data.options: {exc}") from None
    for key, least in (("max_train", 1), ("max_valid", 0), ("max_test", 1)):
        value = getattr(data, key)
        if value is not None and value < least:
            raise UserError(f"{where}.data.{key}: at least {least}, got {value}")
