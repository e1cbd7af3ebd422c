"""One candidate of a sweep, end to end: teacher from cache -> compressor (or chain) -> evaluate -> record.

:class:`Workspace` holds what every candidate of a results directory shares: the prepared dataset
(made once, under a lock), its train/valid/test splits (cropped and limited as the config says), and
the teachers, trained once per (family, dataset, recipe) and cached by a hash of that configuration
(:func:`teacher_key`). A cached teacher is complete or absent: its ``teacher.json`` is written last,
and two processes never train the same teacher (a file lock around training). The teacher is also
evaluated once and becomes a record with ``method="teacher"``.

:func:`run_candidate` never raises for a failing candidate: any exception (a compressor error, a
diverged training, ``CandidateFailed`` for NaN output, a missing objective) becomes a record with
``status="failed"`` and a one-line ``error``. Only ``KeyboardInterrupt``/``SystemExit`` propagate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
import torch

from ddspbench.compressors._base import CompressContext
from ddspbench.compressors.chain import compress_steps
from ddspbench.suite.checkpoint import load_checkpoint, save_checkpoint
from ddspbench.suite.compute import candidate_compute, training_compute, uses_teacher_training
from ddspbench.suite.data import prepare
from ddspbench.suite.data.api import check_size
from ddspbench.suite.data.store import load_meta, load_split
from ddspbench.suite.errors import UserError
from ddspbench.suite.evaluate import evaluate_model
from ddspbench.suite.features import SAMPLE_RATE
from ddspbench.suite.locks import file_lock
from ddspbench.suite.names import safe_name
from ddspbench.suite.provenance import provenance
from ddspbench.suite.recipe import REFERENCE, REFERENCE_STEP, Recipe, StepReport
from ddspbench.suite.records import MEASUREMENT_FIELDS, ResultRecord, append_record, read_records
from ddspbench.suite.registry import COMPRESSORS, FAMILIES, SIZES
from ddspbench.suite.sweep.config import DEFAULT_TEACHER, SweepConfig
from ddspbench.suite.train import TrainConfig, check_memory, probe_params, train, train_summary

if TYPE_CHECKING:
    from torch import nn

    from ddspbench.suite.data.store import ClipSet

__all__ = [
    "Workspace",
    "check_sweep_fits",
    "run_candidate",
    "teacher_key",
    "with_teacher",
    "one_line",
    "failed_record",
    "file_lock",
    "TEACHER_FORMAT",
]

TEACHER_FORMAT = "ddspbench.teacher/1"


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return text[:300]


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _data_identity(cfg: SweepConfig) -> dict[str, Any]:
    d = cfg.data
    ident: dict[str, Any] = {"frames": d.frames, "max_train": d.max_train, "max_valid": d.max_valid}
    if d.path:
        p = Path(d.path).resolve()
        meta = p / "meta.json"
        ident["path"] = str(p)
        if meta.is_file():  # a prepared dataset: its content identifies it
            ident["meta"] = hashlib.sha256(meta.read_bytes()).hexdigest()[:16]
    else:
        ident.update({"dataset": d.dataset, "options": d.options, "seed": cfg.seed})
    return ident


def with_teacher(cfg: SweepConfig, variant: str | None) -> SweepConfig:
    """``cfg`` with its ``teacher`` section replaced by teacher variant ``variant`` (None: the default teacher;
    :meth:`suite.sweep.config.TeacherConfig.variant`), so every teacher function below describes that teacher."""
    if variant is None:
        return cfg
    return dataclasses.replace(cfg, teacher=cfg.teacher.variant(variant))


def teacher_config(family: str, cfg: SweepConfig) -> dict[str, Any]:
    """The constructor config of a family's teacher: the registered size, with the config's width overrides."""
    base = SIZES.get(f"{family}/{cfg.teacher.size}")()
    config = dict(base.config)
    widths = dict(cfg.teacher.widths.get(family, {}))
    if widths:
        if "widths" in config and "widths" not in widths:
            config.pop("widths")  # a width override replaces the size's per-layer widths
        config.update(widths)
    return config


def check_sweep_fits(cfg: SweepConfig) -> None:
    """Refuse, before anything is written, a sweep whose data build or whose teachers' or students' training is
    estimated to need more memory than the machine has (``prepare`` and ``train`` check again when they run).

    Raises:
        UserError: one line naming what does not fit and the estimate.
    """
    if not cfg.data.path:  # a folder or a prepared dataset: its files bound it
        check_size(cfg.data.dataset, dict(cfg.data.options))
    for family in FAMILIES.expand(cfg.space.families):
        for variant in [None, *cfg.teacher.variants]:
            vcfg = with_teacher(cfg, variant)
            name = f"the {family} teacher" + (f" {variant!r}" if variant else "")
            n_params = probe_params(FAMILIES.get(family), teacher_config(family, vcfg), name)
            for recipe in (vcfg.teacher, cfg.student):  # the teacher's size stands for the students' (custom: config)
                check_memory(TrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr,
                                         frames=cfg.data.frames), n_params)


def teacher_key(family: str, cfg: SweepConfig, index: int = 0) -> str:
    """Hash of what determines a teacher: family, constructor config, data, recipe, seed (not the device).

    ``index`` picks one of ``cfg.teacher.seeds`` teachers (seed ``cfg.seed + index``); teacher 0 keeps the key
    teachers had before there could be several. A teacher variant's key is that of ``with_teacher(cfg, variant)``:
    its content, not its name, so two names for the same recipe share one teacher."""
    recipe = dataclasses.asdict(cfg.teacher)
    recipe.pop("widths", None)
    recipe.pop("seeds", None)  # how many teachers there are changes none of them
    recipe.pop("variants", None)  # nor which other teachers the sweep trains
    recipe.pop("family_steps", None)  # this family's steps only: another family's budget changes nothing here
    recipe["steps"] = cfg.teacher.steps_for(family)
    if recipe.get("checkpoint") == "last":  # what every teacher was before best-checkpoint selection: caches stay valid
        recipe.pop("checkpoint")
    return _hash({
        "format": TEACHER_FORMAT,
        "family": family,
        "config": teacher_config(family, cfg),
        "data": _data_identity(cfg),
        "recipe": recipe,
        "seed": cfg.teacher.seed_of(cfg.seed, index),
    })


def teacher_size_label(family: str, cfg: SweepConfig) -> str:
    """``full`` for an unmodified registered size, else its overrides (``full:hidden=64``)."""
    widths = cfg.teacher.widths.get(family, {})
    if not widths:
        return cfg.teacher.size
    return f"{cfg.teacher.size}:" + ",".join(f"{k}={v}" for k, v in sorted(widths.items()))


def failed_record(cfg: SweepConfig, *, candidate_id: str, family: str, size: str, recipe: Recipe | None,
                  error: str, trial: int | None = None, steps: tuple[StepReport, ...] = (),
                  sampled: dict[str, Any] | None = None, dataset: str | None = None,
                  provenance: dict[str, Any] | None = None, seed: int | None = None,
                  config_id: str | None = None, teacher: dict[str, Any] | None = None,
                  instrument: str | None = None) -> ResultRecord:
    """A record for a candidate that did not produce numbers (``seed`` defaults to ``cfg.seed``); ``sampled``: the
    sampler's raw choices of a trial that has no ``recipe``."""
    return ResultRecord.with_units(
        candidate_id=candidate_id, study=cfg.study, trial=trial, family=family, size=size, recipe=recipe,
        steps=steps, sampled=dict(sampled or {}), dataset=dataset or cfg.data.dataset,
        seed=cfg.seed if seed is None else seed, config_id=config_id, teacher=teacher, instrument=instrument,
        status="failed", error=error[:300], provenance={"preset": cfg.preset, **(provenance or {})},
    )


def size_label(spec: Recipe, cfg: SweepConfig) -> str:
    """The size label of the candidate ``spec`` makes: the student's size (or the teacher's label), then whatever
    each later step declares it makes of it (:meth:`compressors.Compressor.size_label`: ``prune`` adds ``:pruned``)."""
    label = spec.size or teacher_size_label(spec.family, with_teacher(cfg, spec.teacher))
    for i, step in enumerate(spec.steps):
        if i == 0 and spec.size is not None:
            continue  # the first step trains the student of that size
        label = COMPRESSORS.get(step.name).size_label(label) or label
    return label


def teacher_recipe(family: str, info: dict[str, Any]) -> tuple[Recipe, StepReport]:
    """A teacher's recipe (its training steps; its variant, ``info["variant"]``, when not the default) and the report
    of its training (tagged ``reference``)."""
    recipe = Recipe.reference(family, teacher=info.get("variant"), steps=info["steps"])
    report = StepReport(method=REFERENCE_STEP, params={"steps": info["steps"]}, tags=(REFERENCE,),
                        size_label=info["size"], seconds=info.get("train_seconds"), training=info.get("train") or None,
                        compute=dict(info.get("compute") or {}), details={"config": info["config"]})
    return recipe, report


class Workspace:
    """What the candidates of one results directory share: data splits and cached teachers.

    Args:
        cfg: the resolved sweep configuration.
        out: the results directory (records, candidates, targets, study storage).
        cache: where prepared data and teachers are cached (default ``<out>/cache``; share it between
            results directories to share teachers).
    """

    def __init__(self, cfg: SweepConfig, out: str | Path, cache: str | Path | None = None) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.cache = Path(cache) if cache is not None else self.out / "cache"
        self.records_path = self.out / "records.jsonl"
        self._splits: dict[str, ClipSet] | None = None
        self._teachers: dict[tuple[str, int, str | None], tuple[nn.Module, dict[str, Any]]] = {}
        self._dataset_name: str | None = None
        self.note: Callable[[str], None] = lambda text: None
        """Where progress notes go (the sweep display sets it)."""

    def apply_threads(self) -> None:
        """Set torch's intra-op threads for training (``cfg.threads``; None leaves torch's default)."""
        if self.cfg.threads is not None:
            if torch.get_num_threads() != self.cfg.threads:
                torch.set_num_threads(self.cfg.threads)

    # --- data ---------------------------------------------------------------------------------------

    def dataset_dir(self) -> Path:
        """A prepared dataset directory: ``data.path`` when it is one, else prepared once into the cache."""
        d = self.cfg.data
        if d.path and (Path(d.path) / "meta.json").is_file():
            return Path(d.path)
        name = "folder" if d.path else d.dataset
        options = {**d.options, **({"path": d.path} if d.path else {})}
        target = self.cache / "data" / f"{name}-{_hash({'name': name, 'options': options, 'seed': self.cfg.seed})}"
        if (target / "meta.json").is_file():
            return target
        with file_lock(target.with_name(target.name + ".lock")):
            if not (target / "meta.json").is_file():
                if target.exists():
                    shutil.rmtree(target)  # a half-prepared directory from a killed process
                prepare(name, target, seed=self.cfg.seed, cache_dir=self.cache / "features", **options)
        return target

    def splits(self) -> dict[str, ClipSet]:
        """``train``/``valid``/``test`` clip sets, cropped to ``data.frames`` and limited to ``data.max_*``."""
        if self._splits is None:
            ddir = self.dataset_dir()
            meta = load_meta(ddir)
            self._dataset_name = str(meta.get("name") or self.cfg.data.dataset)
            d = self.cfg.data
            out: dict[str, ClipSet] = {}
            for split, limit in (("train", d.max_train), ("valid", d.max_valid), ("test", d.max_test)):
                clips = load_split(ddir, split)
                if limit is not None and len(clips) > limit:
                    clips = clips.subset(_spread(len(clips), limit))
                if d.frames is not None and clips.f0_hz.shape[1] > d.frames:
                    clips = clips.crop(d.frames)
                out[split] = clips
            if len(out["train"]) == 0 or len(out["test"]) == 0:
                raise UserError(f"dataset {ddir} has no training or no test clips")
            self._splits = out
        return self._splits

    @property
    def instrument(self) -> str | None:
        """The instrument of the test clips when they are all one (a per-instrument study), else None: records carry
        it, and reports compare arms only within one instrument."""
        names = {str(x) for x in self.splits()["test"].instruments}
        return names.pop() if len(names) == 1 else None

    @property
    def dataset_name(self) -> str:
        if self._dataset_name is None:
            self.splits()
        assert self._dataset_name is not None
        return self._dataset_name

    def write_targets(self) -> Path:
        """Write the first test clips (the ground truth the candidates' audio is paired with), once."""
        tdir = self.out / "targets"
        test = self.splits()["test"]
        n = min(self.cfg.evaluation.n_audio_examples, len(test))
        tdir.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            path = tdir / f"{safe_name(test.clip_ids[i])}.wav"
            if not path.is_file():
                tmp = path.with_name(path.stem + ".tmp.wav")
                sf.write(tmp, np.asarray(test.audio[i], dtype=np.float32), SAMPLE_RATE)
                os.replace(tmp, path)
        return tdir

    # --- teachers -----------------------------------------------------------------------------------

    def teacher(self, family: str, index: int = 0, variant: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
        """The family's trained teacher ``index`` (of ``cfg.teacher.seeds``; eval mode) of teacher variant ``variant``
        (None: the default teacher) and its cache info, with ``seed``, ``variant`` (when not the default) and
        ``label`` (what records call it); trained once, then loaded."""
        index %= max(1, self.cfg.teacher.seeds)
        variant = None if variant == DEFAULT_TEACHER else variant
        if (family, index, variant) in self._teachers:
            return self._teachers[(family, index, variant)]
        self.apply_threads()
        vcfg = with_teacher(self.cfg, variant)
        key = teacher_key(family, vcfg, index)
        seed = vcfg.teacher.seed_of(self.cfg.seed, index)
        tdir = self.cache / "teachers" / f"{family}-{key}"
        done = tdir / "teacher.json"
        if not done.is_file():
            with file_lock(tdir.with_name(tdir.name + ".lock")):
                if not done.is_file():
                    named = f"teacher {variant!r}" if variant else "teacher"
                    self.note(f"training the {family} {named} ({teacher_size_label(family, vcfg)}, "
                              f"{vcfg.teacher.steps_for(family)} steps, seed {seed}) once, cached in {tdir}")
                    self._train_teacher(family, key, tdir, seed, vcfg)
        info = json.loads(done.read_text())
        info.setdefault("seed", seed)
        info.pop("variant", None)  # the cache is shared by every name for this recipe: the name is the caller's
        if variant is not None:
            info["variant"] = variant
        named = f"teacher {variant}: " if variant else ""
        plural = "" if info["steps"] == 1 else "s"
        info["label"] = f"{named}{family} {info['size']}, {info['steps']} step{plural}, seed {info['seed']} ({key[:8]})"
        model, _ = load_checkpoint(tdir / "model.pt", map_location=self.cfg.device)
        # Eval mode only: compressors freeze the teacher themselves where they train against it, and
        # torch-pruning traces autograd, so a teacher without requires_grad would not be pruned at all.
        model.eval()
        self._teachers[(family, index, variant)] = (model, info)
        self._ensure_teacher_record(family, model, info, tdir)
        return model, info

    def _train_teacher(self, family: str, key: str, tdir: Path, seed: int, cfg: SweepConfig) -> None:
        """Train and cache the teacher ``cfg.teacher`` describes (a variant's: :func:`with_teacher`)."""
        if tdir.exists():
            shutil.rmtree(tdir)  # a half-written teacher is never used
        tdir.mkdir(parents=True)
        sp = self.splits()
        t = cfg.teacher
        torch.manual_seed(seed)
        model = FAMILIES.get(family)(**teacher_config(family, cfg))
        model.size_name = teacher_size_label(family, cfg)
        steps = t.steps_for(family)
        tc = TrainConfig(steps=steps, batch_size=t.batch_size, lr=t.lr, device=self.cfg.device, seed=seed,
                         valid_every=max(1, steps), checkpoint_every=max(1, steps), checkpoint=t.checkpoint)
        res = train(model, sp["train"], sp["valid"], tc, out_dir=tdir / "train", progress=False)
        save_checkpoint(res.model, tdir / "model.pt", {"method": "teacher", "key": key, "steps": res.steps})
        info = {
            "format": TEACHER_FORMAT, "family": family, "key": key, "size": teacher_size_label(family, cfg),
            "config": teacher_config(family, cfg), "steps": res.steps, "train_seconds": res.seconds,
            "valid_mss": res.best_valid if res.selected == "best" else res.last_valid, "dataset": self.dataset_name,
            "train": train_summary(res), "seed": seed,
            "compute": training_compute(res.model, sp["train"], tc, None, res.steps, res.seconds),
        }
        shutil.rmtree(tdir / "train", ignore_errors=True)
        tmp = tdir / "teacher.json.tmp"
        tmp.write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
        os.replace(tmp, tdir / "teacher.json")  # written last: the teacher is complete

    def _ensure_teacher_record(self, family: str, model: nn.Module, info: dict[str, Any], tdir: Path) -> None:
        cid = f"teacher-{family}-{info['key'][:8]}"
        with file_lock(self.out / "records.lock"):
            if self.records_path.is_file() and any(r.candidate_id == cid for r in read_records([self.records_path])):
                return
            recipe, report = teacher_recipe(family, info)
            cached = tdir / f"eval-{_hash(dataclasses.asdict(self.cfg.evaluation))}.json"
            try:
                if cached.is_file():
                    fields = json.loads(cached.read_text())
                else:
                    fields = _evaluate(model, self, None, tdir / "model.pt", self.out / "candidates" / cid / "audio")
                    fields["metrics"]["train_seconds"] = info.get("train_seconds")
                    tmp = cached.with_name(cached.name + ".tmp")
                    tmp.write_text(json.dumps(fields, default=str))
                    os.replace(tmp, cached)
            except Exception as exc:  # the teacher trained but its evaluation failed: a failed record, students go on
                prov = {**provenance(device=self.cfg.device, threads=self.cfg.evaluation.threads, seed=self.cfg.seed),
                        "preset": self.cfg.preset}
                append_record(self.records_path, failed_record(
                    self.cfg, candidate_id=cid, family=family, size=info["size"], recipe=recipe, steps=(report,),
                    error=f"teacher evaluation: {one_line(exc)}", dataset=self.dataset_name, instrument=self.instrument,
                    provenance=prov))
                self.note(f"the {family} teacher's evaluation failed ({one_line(exc)}); recorded, students go on")
                return
            own = info.get("compute") or {"steps": info["steps"], "examples": None,
                                          "seconds": info.get("train_seconds"), "flops": None}
            record = ResultRecord.with_units(
                candidate_id=cid, study=self.cfg.study, trial=None, family=family, size=info["size"], recipe=recipe,
                steps=(report,), dataset=self.dataset_name, seed=int(info.get("seed", self.cfg.seed)),
                instrument=self.instrument,
                compute=candidate_compute({"compute": own}, float(own.get("seconds") or 0.0), None),
                **_record_fields(fields, self, tdir / "model.pt"),
            )
            append_record(self.records_path, record)


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (so limited splits keep every timbre)."""
    step = n / k
    return sorted({min(n - 1, int(i * step)) for i in range(k)})


def _evaluate(model: nn.Module, ws: Workspace, teacher: nn.Module | None, ckpt: Path, audio_out: Path,
              seed: int | None = None) -> dict[str, Any]:
    ev = ws.cfg.evaluation
    names = [*ev.metrics, *[o for o in ws.cfg.objectives if o not in ev.metrics]]
    if teacher is None:
        names = [n for n in names if n != "mss_teacher"]
    result = evaluate_model(
        model, ws.splits()["test"], metrics=names, teacher=teacher, embedding=ev.embedding,
        stream_buffers=tuple(ev.stream_buffers), device=ws.cfg.device, threads=ev.threads,
        checkpoint_path=ckpt, audio_out=audio_out, n_audio_examples=ev.n_audio_examples,
        seed=ws.cfg.seed if seed is None else seed,
        speed_backend=ev.speed_backend,
    )
    return dataclasses.asdict(result)


def _record_fields(fields: dict[str, Any], ws: Workspace, ckpt: Path, seed: int | None = None) -> dict[str, Any]:
    out = {k: fields.get(k) or {} for k in MEASUREMENT_FIELDS}
    arts = {**out["artifacts"], "checkpoint": str(ckpt), "target_audio": str(ws.out / "targets"),
            "config": str(ws.out / f"config.{ws.cfg.study}.yaml")}
    out["artifacts"] = {k: results_relative(v, ws.out) for k, v in arts.items()}
    prov = provenance(device=ws.cfg.device, threads=ws.cfg.evaluation.threads, seed=ws.cfg.seed if seed is None else seed)
    out["provenance"] = {**prov, "preset": ws.cfg.preset}
    return out


def results_relative(path: str | Path, out: Path) -> str:
    """``path`` relative to the results folder ``out`` when it lies inside it, else absolute.

    Records must not store paths relative to the working directory of the run: a report built from
    another directory could not find them (docs/CONTRACTS.md, "Results directory").
    """
    p, root = Path(path).resolve(), out.resolve()
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)


def compress_candidate(spec: Recipe, teacher: nn.Module, ws: Workspace, work_dir: Path,
                       seed: int | None = None, teacher_steps: int | None = None
                       ) -> tuple[nn.Module, tuple[StepReport, ...]]:
    """Run the candidate's steps on ``teacher``, each with its own parameters; returns the model and its step reports.

    ``seed`` seeds the steps' training and random draws (default ``cfg.seed``; a sweep's repeats vary it).
    """
    sp = ws.splits()
    s = ws.cfg.student
    ctx = CompressContext(train_set=sp["train"], valid_set=sp["valid"], steps=s.steps_for(spec.family),
                          batch_size=s.batch_size,
                          lr=s.lr, device=ws.cfg.device, seed=ws.cfg.seed if seed is None else seed, frames=ws.cfg.data.frames,
                          work_dir=work_dir, progress=False, train_options={"checkpoint": s.checkpoint},
                          teacher_steps=teacher_steps)
    result = compress_steps(teacher, ctx, spec.method, spec.run_steps())
    return result.model, result.steps


def run_candidate(spec: Recipe, ws: Workspace, *, candidate_id: str, trial: int | None = None,
                  seed: int | None = None, config_id: str | None = None) -> ResultRecord:
    """Build, save and measure one candidate; a failure becomes a failed record (never an exception).

    ``seed`` (default ``cfg.seed``) seeds the compressor's training and the evaluation's noise; the
    data and the teacher always use ``cfg.seed``. ``config_id`` names the configuration the record
    measures (shared by the records of one configuration run with several seeds).
    """
    cfg = ws.cfg
    seed = cfg.seed if seed is None else seed
    ident: dict[str, Any] = {"candidate_id": candidate_id, "family": spec.family, "size": size_label(spec, cfg),
                             "recipe": spec, "trial": trial, "seed": seed, "config_id": config_id}
    cdir = ws.out / "candidates" / candidate_id
    try:
        uses_teacher = uses_teacher_training((COMPRESSORS.get(name), params) for name, params in spec.run_steps())
        # run k of a configuration: teacher k mod seeds, of the variant the recipe names
        teacher, tinfo = ws.teacher(spec.family, seed - cfg.seed, spec.teacher)
        ident["instrument"] = ws.instrument
        if uses_teacher:
            ident["teacher"] = {"key": tinfo["key"], "seed": tinfo["seed"], "size": tinfo["size"],
                                "steps": tinfo["steps"], "label": tinfo["label"],
                                **({"variant": spec.teacher} if spec.teacher is not None else {})}
        ws.write_targets()
        if cdir.exists():
            shutil.rmtree(cdir)  # left by an interrupted attempt with the same id
        t0 = time.perf_counter()
        model, reports = compress_candidate(spec, teacher, ws, cdir / "work", seed, teacher_steps=tinfo["steps"])
        train_seconds = time.perf_counter() - t0
        # each step's own compute is in its report (suite.recipe.StepReport.compute); the record's adds the teacher's
        compute = candidate_compute([{"compute": r.compute} for r in reports], train_seconds,
                                    tinfo if uses_teacher else None)
        shutil.rmtree(cdir / "work", ignore_errors=True)
        ckpt = save_checkpoint(model, cdir / "model.pt", {"recipe": spec.to_dict(), "method": spec.method,
                                                           "method_params": spec.method_params,
                                                           "candidate_id": candidate_id, "study": cfg.study,
                                                           "seed": seed})
        fields = _evaluate(model, ws, teacher, ckpt, cdir / "audio", seed)
        fields["metrics"].setdefault("train_seconds", train_seconds)
        rec_fields = _record_fields(fields, ws, ckpt, seed)
        missing = [m for m in cfg.objectives if not _finite(rec_fields["metrics"].get(m))]
        if missing:
            raise RuntimeError(f"objective(s) not measured or not finite: {', '.join(missing)}")
        return ResultRecord.with_units(**ident, steps=reports, study=cfg.study, dataset=ws.dataset_name, compute=compute,
                                       **rec_fields)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - every candidate failure becomes a failed record
        return failed_record(cfg, dataset=ws._dataset_name, error=one_line(exc), **ident)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
