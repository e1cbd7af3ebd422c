"""The one training loop of ddspbench: teachers, scratch students, KD students, pruning fine-tunes.

The recipe is the reference's (REFERENCE §4): AdamW (lr 1e-3, weight decay 0.01) over the trainable
parameters only, ExponentialLR(gamma 0.98) stepped every ``decay_every`` optimizer steps, gradient
norm clipped to 3.0, batch 16, and the multi-scale spectral distance (REFERENCE §5) between the target
audio and the model's audio as the loss. A caller may pass its own ``loss_fn`` (knowledge
distillation does); validation is always the plain MSS to the target on the held-out split.

Determinism: everything random in a step (batch order, crop offsets, the model's noise) is drawn from
generators seeded by ``(seed, step)``, so a run stopped after ``k`` steps and resumed from its
``last.pt`` ends with the same weights as an uninterrupted run (bit for bit on CPU; CUDA kernels
may be non-deterministic).

Files written to ``out_dir``:

* ``last.pt``  - checkpoint (:func:`suite.checkpoint.save_checkpoint`) every ``checkpoint_every``
  steps and at the end; its ``meta["train"]`` holds the step, the config, the best validation loss
  and the history (JSON-able).
* ``optim-<step>.pt`` - optimizer and scheduler state of that step (tensors and plain types, so it
  loads with ``weights_only=True``); written before the ``last.pt`` that names it.
* ``best.pt`` - checkpoint of the lowest validation MSS seen.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ddspbench.suite.bounds import check_fits
from ddspbench.suite.checkpoint import model_identity, save_checkpoint
from ddspbench.suite.convergence import CONVERGENCE_THRESHOLD, convergence, plateau_stop
from ddspbench.suite.errors import UserError, one_line_message
from ddspbench.suite.features import BLOCK_SIZE, CLIP_FRAMES
from ddspbench.suite.metrics.mss import DEFAULT_SCALES, MSSLoss, mss_per_clip

if TYPE_CHECKING:
    from ddspbench.suite.data.store import ClipSet

__all__ = [
    "TrainConfig", "TrainResult", "first_batch", "TrainingDiverged", "LossFn", "train", "mss_loss_fn", "validation_mss",
    "resolve_device", "batch_to_tensors", "forward_batch", "derive_seed", "LAST_CKPT", "BEST_CKPT", "OPTIM_STATE",
    "CHECKPOINT_CHOICES", "CONVERGENCE_THRESHOLD", "learning_curve", "convergence", "train_summary", "curve_steps",
    "estimate_bytes", "check_memory", "probe_params",
]

LAST_CKPT = "last.pt"
BEST_CKPT = "best.pt"
OPTIM_STATE = "optim-{step:08d}.pt"
"""Optimizer/scheduler state of one step; ``last.pt`` names its own (``meta["train"]["optim_file"]``)."""
_OPTIM_FORMAT = "ddspbench.optim/1"

LossFn = Callable[[dict[str, Any], dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
"""``loss_fn(model_out, batch) -> (loss, logs)``; ``batch`` has ``audio``, ``f0_hz``, ``loudness_db`` on the device."""


CHECKPOINT_CHOICES = ("best", "last")
"""Which weights a run returns and is evaluated at (:attr:`TrainConfig.checkpoint`)."""


@dataclass
class TrainConfig:
    """Settings of one training run (defaults: the reference recipe, REFERENCE §4).

    Attributes:
        steps: total optimizer steps of the run (a resumed run continues up to this number).
        batch_size: clips per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        gamma: ExponentialLR factor.
        decay_every: optimizer steps between two learning-rate decays.
        grad_clip: maximum gradient norm (``None`` or <= 0: no clipping).
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
        seed: seeds torch, numpy, batch order, crops and the model's noise.
        valid_every: steps between validations (and always at the last step).
        checkpoint_every: steps between writes of ``last.pt`` (and always at the last step).
        log_every: steps averaged into one history row.
        frames: crop clips to this many frames (``None``: whole clips).
        random_crop: crop training clips at a random frame offset instead of the start.
        valid_batch_size: clips per validation batch.
        threads: torch CPU threads during the run (``None``: leave torch's setting); restored afterwards.
        curve_points: validate also at this many evenly spaced steps (:func:`curve_steps`), whatever
            ``valid_every`` says, so every run has a learning curve for :func:`convergence` (0: off).
        checkpoint: which weights the run returns: ``"best"`` (the lowest validation MSS seen, the default;
            the last step's when there is no validation set) or ``"last"`` (the last step's).
        early_stop_patience: stop the run early when its validation curve has plateaued
            (:func:`suite.convergence.plateau_stop`: the causal median-of-3 smoothed validation MSS of the last this
            many validations no better than ``1 - early_stop_delta`` times its best before them); 0 (the default):
            off. The checkpoint rule is unchanged (best validation); the report says where and why it stopped.
        early_stop_delta: the relative improvement that counts as progress for ``early_stop_patience``.
    """

    steps: int
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    gamma: float = 0.98
    decay_every: int = 10_000
    grad_clip: float | None = 3.0
    device: str = "cpu"
    seed: int = 0
    valid_every: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 50
    frames: int | None = None
    random_crop: bool = False
    valid_batch_size: int = 16
    threads: int | None = None
    curve_points: int = 20
    checkpoint: str = "best"
    early_stop_patience: int = 0
    early_stop_delta: float = 0.01

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 0,
            "batch_size": self.batch_size >= 1,
            "lr": math.isfinite(self.lr) and self.lr > 0,
            "weight_decay": math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "gamma": math.isfinite(self.gamma) and 0 < self.gamma <= 1,
            "grad_clip": self.grad_clip is None or math.isfinite(self.grad_clip),
            "decay_every": self.decay_every >= 1,
            "valid_every": self.valid_every >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "log_every": self.log_every >= 1,
            "valid_batch_size": self.valid_batch_size >= 1,
            "frames": self.frames is None or self.frames >= 1,
            "threads": self.threads is None or self.threads >= 1,
            "curve_points": self.curve_points >= 0,
            "checkpoint": self.checkpoint in CHECKPOINT_CHOICES,
            "early_stop_patience": self.early_stop_patience >= 0,
            "early_stop_delta": math.isfinite(self.early_stop_delta) and 0 <= self.early_stop_delta < 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UserError(f"invalid training setting(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (eval mode, on the training device), with the weights ``selected`` names.
        steps: the step the run ended at (total, counting steps done before a resume).
        seconds: wall time of this call.
        history: rows ``{"step", "loss", ...logs, "valid"?}``; a row with ``valid`` per validation.
        best_valid: lowest validation MSS (``None`` without a validation set).
        last_valid: validation MSS at the last step.
        checkpoint: path of ``last.pt`` (``None`` without ``out_dir``).
        best_checkpoint: path of ``best.pt`` (``None`` without ``out_dir`` or validation).
        start_step: the step the run started at (``> 0`` after a resume).
        selected: ``"best"`` (the model holds the best-validation weights) or ``"last"``.
        selected_step: the step whose weights the model holds.
        stopped: ``None``, or why the run stopped before ``cfg.steps`` (:func:`suite.convergence.plateau_stop`'s dict).
    """

    model: nn.Module
    steps: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    best_valid: float | None = None
    last_valid: float | None = None
    checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    start_step: int = 0
    selected: str = "last"
    selected_step: int | None = None
    stopped: dict[str, Any] | None = None


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN/inf; the last good checkpoint on disk is left as it was."""

    def __init__(self, step: int, what: str, checkpoint: Path | None, checkpoint_step: int | None) -> None:
        self.step = step
        self.checkpoint = checkpoint
        self.checkpoint_step = checkpoint_step
        if checkpoint is not None:
            keep = f"last good checkpoint: {checkpoint} (step {checkpoint_step})"
        else:
            keep = "no checkpoint was written"
        super().__init__(f"training diverged at step {step}: {what}; {keep}")


_TRAIN_BASE_BYTES = 250e6  # torch, the kernels' threads and the data already loaded (measured: ~150-240 MB)
_TRAIN_BYTES_PER_SAMPLE = 400  # activations, STFTs and gradients per audio sample of a batch (measured ~230-400 B)
_BYTES_PER_PARAM = 4 * 5  # float32 weights, gradients, two AdamW moments and a checkpoint copy


def estimate_bytes(cfg: TrainConfig, n_params: int) -> float:
    """Memory a run of ``cfg`` is expected to need: a fixed part, per audio sample of the larger of a training and
    a validation batch (``batch x frames x 64``), and per parameter (weights, gradients, optimizer state)."""
    samples = max(cfg.batch_size, cfg.valid_batch_size) * (cfg.frames or CLIP_FRAMES) * BLOCK_SIZE
    return _TRAIN_BASE_BYTES + _TRAIN_BYTES_PER_SAMPLE * samples + _BYTES_PER_PARAM * n_params


def check_memory(cfg: TrainConfig, n_params: int) -> None:
    """Refuse, before any step, a run whose :func:`estimate_bytes` exceeds the memory available.

    Raises:
        UserError: one line naming the batch, the frames, the parameters and the estimate.
    """
    check_fits(f"training with batch {cfg.batch_size} x {cfg.frames or CLIP_FRAMES} frames and {n_params:,} "
               "parameters", estimate_bytes(cfg, n_params))


def probe_params(cls: Callable[..., nn.Module], config: dict[str, Any], what: str) -> int:
    """Parameters of ``cls(**config)``, counted on torch's meta device (nothing allocated, nothing initialised), so
    a hostile width is refused before the model is built; its training state must fit in the memory available.

    Raises:
        UserError: the settings do not build a model (``cannot build <what> ...``), or it would not fit.
    """
    try:
        with torch.device("meta"):
            probe = cls(**config)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise UserError(f"cannot build {what} with {config}: {one_line_message(exc, 200)}") from None
    n_params = sum(p.numel() for p in probe.parameters())
    check_fits(f"{what} with {n_params:,} parameters", _TRAIN_BASE_BYTES + _BYTES_PER_PARAM * n_params)
    return n_params


def _finite_weights(params: list[nn.Parameter]) -> bool:
    return all(bool(torch.isfinite(p.detach()).all()) for p in params)


def resolve_device(device: str) -> torch.device:
    """A torch device for ``"cpu"``/``"cuda"``/``"cuda:N"``; a one-line :class:`UserError` otherwise."""
    name = str(device).strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for but CUDA is not available (torch {torch.__version__})")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"device {device!r} asked for but only {torch.cuda.device_count()} CUDA device(s) exist")
        return dev
    raise UserError(f"unknown device {device!r}; use cpu or cuda")


def derive_seed(seed: int, step: int, salt: int = 0) -> int:
    """A well-mixed 31-bit seed for one (seed, step) pair (small enough for any family's seed arithmetic)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step), salt]).generate_state(1)[0] >> 1)


def batch_to_tensors(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """Numpy batch (from :meth:`ClipSet.batches`) -> float32 tensors on ``device`` (pinned and copied
    asynchronously to a GPU; the copy is ordered before any kernel that reads it on the same stream)."""
    cuda = device.type == "cuda"
    out = {}
    for k in ("audio", "f0_hz", "loudness_db"):
        t = torch.as_tensor(np.ascontiguousarray(batch[k]), dtype=torch.float32)
        out[k] = t.pin_memory().to(device, non_blocking=True) if cuda else t.to(device)
    return out


def _fresh_state(model: nn.Module, batch_size: int, seed: int | list[int]) -> Any:
    """A fresh, seeded streaming state when the model offers one (its noise then depends on ``seed``)."""
    init = getattr(model, "init_state", None)
    return init(batch_size, seed=seed) if callable(init) else None


def forward_batch(model: nn.Module, batch: dict[str, torch.Tensor], seed: int | list[int]) -> dict[str, Any]:
    """The model's output for a batch, from a fresh streaming state whose noise is seeded by ``seed``
    (an int, or one stream seed per item for models with ``per_item_seeds``)."""
    state = _fresh_state(model, int(batch["f0_hz"].shape[0]), seed)
    out = model(batch["f0_hz"], batch["loudness_db"], state=state)
    if not isinstance(out, dict) or "audio" not in out:
        raise TypeError(f"{type(model).__name__}.forward must return a dict with 'audio'")
    return out


def mss_loss_fn(scales: tuple[int, ...] | None = None) -> LossFn:
    """The default loss: MSS(target audio, model audio), logged as ``mss``."""
    # the target's spectra are cached per clip: with fixed crops they repeat every epoch (the same values, fewer STFTs)
    crit = MSSLoss(cache_targets=True) if scales is None else MSSLoss(scales, cache_targets=True)

    def loss_fn(out: dict[str, Any], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        loss = crit(batch["audio"], out["audio"])
        return loss, {"mss": float(loss.detach())}

    return loss_fn


@torch.no_grad()
def validation_mss(model: nn.Module, clips: ClipSet, *, batch_size: int = 16, device: str | torch.device = "cpu",
                   frames: int | None = None, seed: int = 0) -> float:
    """Mean per-clip MSS between the clips and the model's renderings (eval mode, seeded noise).

    The model's training/eval mode is restored afterwards.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if frames is not None:
        clips = clips.crop(frames)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for i, b in enumerate(clips.batches(batch_size)):
            t = batch_to_tensors(b, dev)
            out = forward_batch(model, t, derive_seed(seed, i, salt=2))
            per = mss_per_clip(t["audio"], out["audio"])
            total += float(per.sum())
            count += int(per.numel())
    finally:
        model.train(was_training)
    if count == 0:
        raise UserError("validation set is empty")
    return total / count


def first_batch(clips: ClipSet, cfg: TrainConfig) -> dict[str, np.ndarray]:
    """The batch a run of ``cfg`` on ``clips`` trains its first step on (what :mod:`suite.compute` counts)."""
    return _Sampler(clips, cfg).batch(0)


class _Sampler:
    """Batches for step ``k`` drawn deterministically from ``(seed, k)``: shuffled epochs, optional random crops."""

    def __init__(self, clips: ClipSet, cfg: TrainConfig) -> None:
        if len(clips) == 0:
            raise UserError("training set is empty")
        self.clips = clips
        self.cfg = cfg
        self.n = len(clips)
        self.bs = min(cfg.batch_size, self.n)
        self.per_epoch = self.n // self.bs  # the last partial batch of an epoch is dropped
        self.total_frames = int(clips.f0_hz.shape[1])
        self.frames = self.total_frames if cfg.frames is None else min(cfg.frames, self.total_frames)
        self._order_epoch = -1
        self._order = np.arange(self.n)

    def indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._order_epoch:
            self._order = np.random.default_rng(derive_seed(self.cfg.seed, epoch, salt=1)).permutation(self.n)
            self._order_epoch = epoch
        return self._order[k * self.bs : (k + 1) * self.bs]

    def batch(self, step: int) -> dict[str, np.ndarray]:
        idx = self.indices(step)
        c = self.clips
        n_frames = self.frames
        if self.cfg.random_crop and n_frames < self.total_frames:
            rng = np.random.default_rng(derive_seed(self.cfg.seed, step, salt=3))
            offs = rng.integers(0, self.total_frames - n_frames + 1, size=len(idx))
        else:
            offs = np.zeros(len(idx), dtype=np.int64)
        fr = offs[:, None] + np.arange(n_frames)[None, :]
        sa = offs[:, None] * BLOCK_SIZE + np.arange(n_frames * BLOCK_SIZE)[None, :]
        rows = idx[:, None]
        return {"audio": c.audio[rows, sa], "f0_hz": c.f0_hz[rows, fr], "loudness_db": c.loudness_db[rows, fr]}


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserError(f"{type(model).__name__} has no trainable parameters")
    return params


def _save_state(model: nn.Module, out_dir: Path, step: int, cfg: TrainConfig, opt: torch.optim.Optimizer,
                sched: torch.optim.lr_scheduler.LRScheduler, train_meta: dict[str, Any]) -> Path:
    """Write the step's optimizer file, then ``last.pt`` naming it, then drop older optimizer files.

    Every write is atomic and ``last.pt`` only ever names a complete optimizer file, so a crash at any
    point leaves a consistent pair to resume from.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    optim = {"format": _OPTIM_FORMAT, "step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    name = OPTIM_STATE.format(step=step)
    tmp = out_dir / (name + ".tmp")
    torch.save(optim, tmp)
    os.replace(tmp, out_dir / name)
    meta = {"train": {**train_meta, "step": step, "config": cfg.to_dict(), "optim_file": name}}
    path = save_checkpoint(model, out_dir / LAST_CKPT, meta)
    for old in out_dir.glob("optim-*.pt"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return path


def _torch_file(path: Path, device: torch.device, bad: Callable[[str], UserError]) -> Any:
    """``torch.load(path, weights_only=True)``; any unpickling failure becomes ``bad(<one-line reason>)``."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise bad(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def _apply_state(model: nn.Module, state: dict[str, Any]) -> None:
    """Load a checkpoint's ``state_dict`` into ``model`` the way :func:`suite.checkpoint.save_checkpoint` wrote it
    (a model with its own ``checkpoint_state`` reads it back with ``load_checkpoint_state``)."""
    loader = getattr(model, "load_checkpoint_state", None)
    if callable(loader):
        loader(state)
    else:
        model.load_state_dict(state)


def _load_resume(model: nn.Module, out_dir: Path, device: torch.device) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Load ``last.pt`` into ``model``; returns ``(train meta, optimizer file)`` or ``None`` when absent."""
    last = out_dir / LAST_CKPT
    if not last.is_file():
        return None
    def bad(why: str) -> UserError:
        return UserError(f"{last}: cannot resume ({why})")

    payload = _torch_file(last, device, bad)
    meta = (payload.get("meta") or {}).get("train") if isinstance(payload, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("optim_file"), str):
        raise bad("not a ddspbench training checkpoint")
    opath = out_dir / Path(meta["optim_file"]).name
    if not opath.is_file():
        raise bad(f"its optimizer state {opath.name} is missing")
    optim = _torch_file(opath, device, lambda why: bad(f"{opath.name}: {why}"))
    if not isinstance(optim, dict) or optim.get("format") != _OPTIM_FORMAT or optim.get("step") != meta.get("step"):
        raise bad(f"{opath.name} is not the optimizer state of step {meta.get('step')}")
    ident = model_identity(model)
    if (payload.get("family"), payload.get("config")) != (ident["family"], ident["config"]):
        raise UserError(
            f"{last}: holds a {payload.get('family')} model with config {payload.get('config')}, "
            f"not the {ident['family']} model being trained ({ident['config']})"
        )
    _apply_state(model, payload["state_dict"])
    return meta, optim


NESTED_PROGRESS: Any = None
"""A live rich ``Progress`` (the sweep's display sets it) that training adds a row to, with or without
``progress=True``; the row goes when training ends."""


class _NestedBar:
    """Training as one row of an outer rich Progress: the ``bar.update(task, ...)`` calls of :func:`_run`."""

    def __init__(self, outer: Any, total: int, start: int) -> None:
        self.outer, self.fields = outer, {"loss": "-", "valid": "-"}
        self.task = outer.add_task("", total=total, completed=start, kind="  train")

    def __enter__(self) -> _NestedBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.outer.remove_task(self.task)

    def update(self, task: Any, advance: int = 0, **fields: str) -> None:
        self.fields.update(fields)
        self.outer.update(task, advance=advance, description=f"loss {self.fields['loss']}  valid {self.fields['valid']}")


def _progress(enabled: bool, total: int, start: int) -> Any:
    """A rich progress bar on stderr, or a silent stand-in when disabled or not on a terminal."""
    if NESTED_PROGRESS is not None:
        nested = _NestedBar(NESTED_PROGRESS, total, start)
        return nested, nested.task
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    show = enabled and console.is_terminal
    bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}  valid {task.fields[valid]}"), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not show, transient=False)
    task = bar.add_task("train", total=total, completed=start, loss="-", valid="-")
    return bar, task


def curve_steps(steps: int, points: int) -> set[int]:
    """The steps ``ceil(i * steps / points)``, ``i = 1..points``: evenly spaced validations (the 80% mark included
    when ``points`` is a multiple of 5)."""
    if points <= 0 or steps <= 0:
        return set()
    return {-(-i * steps // points) for i in range(1, points + 1)}


def learning_curve(history: list[dict[str, Any]]) -> list[list[float]]:
    """``[[step, validation MSS], ...]`` from a training history (rows with ``valid``), in step order."""
    return sorted([int(r["step"]), float(r["valid"])] for r in history if r.get("valid") is not None)


def train_summary(res: TrainResult) -> dict[str, Any]:
    """What a record keeps of a run: steps, seconds, best/last validation, which checkpoint the model holds
    (``checkpoint``: best or last, ``selected_step``, ``selected_valid``: its validation MSS), the learning curve and
    the convergence verdict (:func:`suite.convergence.convergence`)."""
    curve = learning_curve(res.history)
    selected_valid = res.best_valid if res.selected == "best" else res.last_valid
    return {"steps": res.steps, "train_seconds": round(res.seconds, 3), "best_valid": res.best_valid,
            "last_valid": res.last_valid, "checkpoint": res.selected, "selected_step": res.selected_step,
            "selected_valid": selected_valid, "curve": curve, "convergence": convergence(curve, res.steps),
            **({"stopped_early": res.stopped} if res.stopped is not None else {})}


def train(
    model: nn.Module,
    train_set: ClipSet,
    valid_set: ClipSet | None,
    cfg: TrainConfig,
    *,
    loss_fn: LossFn | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place with the reference recipe.

    Args:
        model: a ddspbench model (``family``/``config``; see docs/CONTRACTS.md). Parameters with
            ``requires_grad=False`` are left untouched.
        train_set: training clips.
        valid_set: held-out clips for the validation MSS (``None``: no validation, no ``best.pt``).
        cfg: the settings.
        loss_fn: ``(model_out, batch) -> (loss, logs)``; default MSS(target, model audio).
        out_dir: where ``last.pt``/``best.pt`` go (``None``: no files). An existing run there is
            overwritten unless ``resume``.
        resume: continue from ``out_dir/last.pt`` when it exists (weights, optimizer, scheduler,
            step, history); start afresh when it does not.
        progress: show a rich progress bar (only when stderr is a terminal).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDiverged: a NaN/inf loss or gradient; checkpoints on disk are not touched.
        UserError: a bad setting, an empty set, an unusable device or resume file.
    """
    prev_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(model, train_set, valid_set, cfg, loss_fn, out_dir, resume, progress)
    finally:
        if cfg.threads is not None:
            torch.set_num_threads(prev_threads)


def _run(model: nn.Module, train_set: ClipSet, valid_set: ClipSet | None, cfg: TrainConfig, loss_fn: LossFn | None,
         out_dir: str | os.PathLike[str] | None, resume: bool, progress: bool) -> TrainResult:
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise UserError("resume needs an output directory holding last.pt")
    loss_fn = loss_fn or mss_loss_fn()

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    model.to(device)
    params = _trainable(model)
    check_memory(cfg, sum(p.numel() for p in model.parameters()))
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)

    start, history = 0, []
    best_valid: float | None = None
    last_valid: float | None = None
    acc: dict[str, float] = {}
    acc_n = 0
    last_path: Path | None = None
    last_saved_step: int | None = None
    best_path: Path | None = None
    best_state: dict[str, torch.Tensor] | None = None  # this call's best-validation weights, for checkpoint="best"
    best_saved: dict[str, Any] | None = None  # a resumed run's best.pt weights, as save_checkpoint wrote them
    best_step: int | None = None
    stopped: dict[str, Any] | None = None  # set when early stopping ends the run before cfg.steps
    loaded = _load_resume(model, out, device) if (resume and out is not None) else None
    if loaded is not None and out is not None:
        meta, optim = loaded
        opt.load_state_dict(optim["optimizer"])
        sched.load_state_dict(optim["scheduler"])
        start = int(meta["step"])
        history = list(meta.get("history", []))
        best_valid = meta.get("best_valid")
        last_valid = meta.get("last_valid")
        acc = dict(meta.get("acc", {}))
        acc_n = int(meta.get("acc_n", 0))
        stopped = meta.get("stopped")
        last_path, last_saved_step = out / LAST_CKPT, start
        if (out / BEST_CKPT).is_file():
            best_path = out / BEST_CKPT
            best_saved, best_step = _load_best(out / BEST_CKPT, device)

    sampler = _Sampler(train_set, cfg)
    min_frames = max(DEFAULT_SCALES) // (2 * BLOCK_SIZE) + 1  # the largest STFT pads by half its size
    if sampler.frames < min_frames:
        raise UserError(f"clips of {sampler.frames} frames are too short for the MSS loss; use frames >= {min_frames}")
    if valid_set is not None and len(valid_set) == 0:
        valid_set = None
    valid_clips = valid_set.crop(cfg.frames) if (valid_set is not None and cfg.frames) else valid_set
    if loaded is None and out is not None:  # a fresh run: no stale file of an earlier run may pass for this one's
        for stale in [out / LAST_CKPT, out / BEST_CKPT, *out.glob("optim-*.pt")]:
            stale.unlink(missing_ok=True)

    def train_meta() -> dict[str, Any]:
        return {"history": history, "best_valid": best_valid, "last_valid": last_valid, "acc": dict(acc), "acc_n": acc_n,
                **({"stopped": stopped} if stopped is not None else {})}

    curve_at = curve_steps(cfg.steps, cfg.curve_points)
    bar, task = _progress(progress, cfg.steps, min(start, cfg.steps))
    model.train()
    with bar:
        for step in range(start, cfg.steps if stopped is None else start):
            n = step + 1  # steps done after this one
            torch.manual_seed(derive_seed(cfg.seed, step, salt=4))
            batch = batch_to_tensors(sampler.batch(step), device)
            out_m = forward_batch(model, batch, derive_seed(cfg.seed, step, salt=5))
            loss, logs = loss_fn(out_m, batch)
            if not bool(torch.isfinite(loss.detach()).all()):
                raise TrainingDiverged(n, f"loss is {float(loss.detach())}", last_path, last_saved_step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = cfg.grad_clip if cfg.grad_clip and cfg.grad_clip > 0 else math.inf
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            if not bool(torch.isfinite(norm)):
                raise TrainingDiverged(n, f"gradient norm is {float(norm)}", last_path, last_saved_step)
            opt.step()
            if n % cfg.decay_every == 0:
                sched.step()
            final = n == cfg.steps
            validate = valid_clips is not None and (n % cfg.valid_every == 0 or final or n in curve_at)
            # an update can leave NaN/inf weights with a finite loss (e.g. an overflowing learning rate): nothing
            # such is validated, saved or returned as a trained model
            saving = out is not None and n % cfg.checkpoint_every == 0
            if (final or validate or saving) and not _finite_weights(params):
                raise TrainingDiverged(n, "the weights hold NaN/inf after the update", last_path, last_saved_step)

            loss_value = float(loss.detach())
            acc["loss"] = acc.get("loss", 0.0) + loss_value
            for k, v in logs.items():
                acc[k] = acc.get(k, 0.0) + float(v)
            acc_n += 1
            if n % cfg.log_every == 0 or validate or final:
                row: dict[str, Any] = {"step": n, **{k: v / acc_n for k, v in acc.items()}, "lr": sched.get_last_lr()[0]}
                acc, acc_n = {}, 0
                if validate and valid_clips is not None:
                    last_valid = validation_mss(
                        model, valid_clips, batch_size=cfg.valid_batch_size, device=device, seed=cfg.seed
                    )
                    if not math.isfinite(last_valid):
                        raise TrainingDiverged(n, f"validation MSS is {last_valid}", last_path, last_saved_step)
                    row["valid"] = last_valid
                    if best_valid is None or last_valid < best_valid:
                        best_valid, best_step = last_valid, n
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        if out is not None:
                            best_path = save_checkpoint(
                                model, out / BEST_CKPT, {"train": {"step": n, "valid": last_valid, "config": cfg.to_dict()}}
                            )
                history.append(row)
                if validate and cfg.early_stop_patience > 0 and not final:
                    stopped = plateau_stop(learning_curve(history), cfg.early_stop_patience, cfg.early_stop_delta)
                    final = stopped is not None
                if last_valid is not None:
                    bar.update(task, valid=f"{last_valid:.3f}")
            if out is not None and (n % cfg.checkpoint_every == 0 or final):
                last_path = _save_state(model, out, n, cfg, opt, sched, train_meta())
                last_saved_step = n
            bar.update(task, advance=1, loss=f"{loss_value:.3f}")
            if stopped is not None:
                break

    if out is not None and last_path is None:  # zero steps to do and nothing on disk yet
        last_path = _save_state(model, out, start, cfg, opt, sched, train_meta())
    end = int(stopped["step"]) if stopped is not None else max(start, cfg.steps)
    selected, selected_step = "last", end
    if cfg.checkpoint == "best" and (best_state is not None or best_saved is not None):
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            _apply_state(model, best_saved or {})
        selected, selected_step = "best", best_step if best_step is not None else selected_step
    model.eval()
    return TrainResult(model=model, steps=end, seconds=time.perf_counter() - t0, history=history,
                       best_valid=best_valid, last_valid=last_valid, checkpoint=last_path, best_checkpoint=best_path,
                       start_step=start, selected=selected, selected_step=selected_step, stopped=stopped)


def _load_best(path: Path, device: torch.device) -> tuple[dict[str, Any] | None, int | None]:
    """A resumed run's ``best.pt``: its weights and the step they are from (a damaged file is a one-line error)."""
    ck = _torch_file(path, device, lambda why: UserError(f"{path}: cannot resume ({why})"))
    if not isinstance(ck, dict):
        return None, None
    found = ck.get("meta")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    step = (meta.get("train") or {}).get("step")
    return ck.get("state_dict"), int(step) if isinstance(step, int) else None
