"""The native streaming engine: a family model compiled to one native call per buffer (CPU).

Eager and TorchScript streaming pay a few microseconds for each of the ~200 tensor ops a 64-sample
buffer runs, which alone is several times the buffer's arithmetic. :class:`NativeEngine` copies a
float32 model's weights (weight norm applied, reverb impulse and its partition spectra computed,
wavetables and noise-filter matrix built) into flat arrays and renders buffers with the numba
kernels of :mod:`baselines._kernels`: decoder, synth and reverb in one compiled call, the state held
in preallocated arrays. It is an inference path for a *frozen* model: rebuild after changing weights.

Equal audio: the kernels follow the torch modules' float32 maths step for step (same causal
upsampling, float64 phases, counter-based noise, per-block noise filters, partitioned reverb), so
an engine's output equals the model's forward up to float rounding (tested at every buffer size
against the eager model, tolerance in ``tests/contract/test_native.py``).

What it supports: HpN, Wavetable and DDX7 models with plain float32 layers or with the ``quantize``
compressor's int8/bf16-stored weights (:mod:`baselines.stored`, read as stored: 1 or 2 bytes per
weight per frame), any widths (pruned decoders included), any batch size; buffers of any whole number
of frames, which may change between calls. Anything else (torch.ao-quantized or ONNX decoders, custom
or unknown layers, bfloat16/float64 parameters) is refused with a one-line
:class:`~suite.errors.UserError` naming the layer. Buffers over :data:`LONG_FRAMES` frames get their
reverb in one FFT, as the eager model's ``Reverb``. The first build compiles the kernels (cached on disk by numba,
so later processes load them in a fraction of a second). Matrix products of multi-frame buffers use
the BLAS that numba links (scipy's OpenBLAS); its thread count follows ``threadpoolctl``
(:func:`suite.metrics.speed.num_threads` limits it with torch's).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ddspbench.suite.errors import UserError
from ddspbench.suite.registry import ENGINES
from ddspbench.suite.traits import engine_support, traits_of

__all__ = ["NativeEngine", "NativeRunner", "native_available"]

_BLOCK = 64
ENGINE_FORMAT = "ddspbench-native-engine/1"
"""The :meth:`NativeEngine.save` file format (bump when the arrays or their meaning change)."""
LONG_FRAMES = 16
"""Buffers longer than this many frames get their reverb in one FFT (as the eager model's ``Reverb`` does)."""


def native_available() -> bool:
    """Whether numba imports (the engine's only extra requirement)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


_STORED_NP = {"float32": np.float32, "int8": np.int8, "bf16": np.uint16}


def _as_stored(t: Tensor) -> np.ndarray:
    """A weight as the kernels read it: float32, int8, or bfloat16 as its uint16 bit pattern (no rounding)."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16).ravel()
    if t.dtype == torch.int8:
        return t.numpy().ravel()
    return t.to(torch.float32).numpy().ravel()


class _Pack:
    """Accumulates the float32 parameters (``P``), the stored weight matrices (``Q``) and a layer table."""

    def __init__(self, storage: str) -> None:
        self.storage = storage
        self.chunks: list[np.ndarray] = []
        self.size = 0
        self.q_chunks: list[np.ndarray] = []
        self.q_size = 0
        self.rows: list[list[int]] = []

    def add(self, t: Tensor | None) -> int:
        """Append a float32 tensor to ``P``; returns its offset (``-1`` for None)."""
        if t is None:
            return -1
        a = t.detach().to(torch.float32).contiguous().cpu().numpy().ravel()
        off = self.size
        self.chunks.append(a)
        self.size += a.size
        return off

    def matrix(self, module: nn.Module, name: str = "weight") -> tuple[int, int, tuple[int, int]]:
        """Append a layer's stored weight to ``Q`` and its scales to ``P``: offsets and the ``(rows, cols)`` shape."""
        from ddspbench.baselines.stored import storage_of, stored_weights

        if storage_of(module) != self.storage:
            raise UserError(f"native engine: the decoder mixes weight storages ({self.storage} and "
                            f"{storage_of(module)} in a {type(module).__name__} layer)")
        w, scale = stored_weights(module, name)
        a = _as_stored(w)
        off = self.q_size
        self.q_chunks.append(a)
        self.q_size += a.size
        return off, self.add(scale), (int(w.shape[0]), int(w[0].numel()))

    def layer(self, module: nn.Module | None, norm: nn.Module | None = None, rows: int = 0, cols: int = 0) -> None:
        """One table row for a Linear/Conv1d (optionally followed by a LayerNorm); None: an identity placeholder."""
        if module is None:
            self.rows.append([-1, rows, cols, -1, -1, -1, -1, -1])
            return
        w_off, s_off, (rows, cols) = self.matrix(module)
        gain, beta = (None, None) if norm is None else (norm.weight, norm.bias)
        self.rows.append([w_off, rows, cols, self.add(module.bias), self.add(gain), self.add(beta), s_off, -1])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ddspbench.baselines._kernels import LT_COLS

        flat = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        dtype = _STORED_NP[self.storage]
        q = np.concatenate(self.q_chunks) if self.q_chunks else np.zeros(0, dtype)
        return (np.ascontiguousarray(flat, dtype=np.float32), np.ascontiguousarray(q, dtype=dtype),
                np.asarray(self.rows, dtype=np.int64).reshape(-1, LT_COLS))


_LINEAR_TYPES = ("Linear", "StoredLinear")
_CONV_TYPES = ("Conv1d", "ParametrizedConv1d", "StoredConv1d")
_GRU_TYPES = ("GRU", "StoredGRU")
_STRUCTURE_TYPES = ("Sequential", "ModuleDict", "ModuleList", "LayerNorm", "LeakyReLU", "Dropout", "ReLU",
                    "HarmonicDecoder", "TCNDecoder", "TCNBlock", "ParametrizationList", "_WeightNorm")


def _check_layers(model: nn.Module, renderer: str) -> str:
    """Every decoder layer is one the kernels implement; returns the weight storage (float32, int8 or bf16)."""
    from ddspbench.baselines.stored import storage_of

    allowed = {*_STRUCTURE_TYPES, *_LINEAR_TYPES, *_GRU_TYPES, *(_CONV_TYPES if renderer == "fm" else ())}
    storages = set()
    for name, mod in model.decoder.named_modules(prefix="decoder"):  # type: ignore[union-attr, operator]
        kind = type(mod).__name__
        if kind not in allowed or "quantized" in type(mod).__module__:
            raise UserError(f"native engine: layer {name} is a {type(mod).__module__}.{kind}, which the engine "
                            "does not implement (it runs float32, int8- or bf16-stored Linear/GRU/Conv1d/LayerNorm)")
        if kind in (*_LINEAR_TYPES, *_GRU_TYPES, *_CONV_TYPES):
            storages.add(storage_of(mod))
    if len(storages) > 1:
        raise UserError(f"native engine: the decoder mixes weight storages ({', '.join(sorted(storages))})")
    return storages.pop() if storages else "float32"


def _check_model(model: nn.Module) -> tuple[str, str, str]:
    """``(family, renderer, weight storage)``, or a one-line :class:`UserError` naming what the engine cannot run.

    The renderer is the one the family declares (:class:`suite.traits.FamilyTraits`, ``engine``)."""
    family = getattr(model, "family", None)
    renderer = traits_of(model).engine
    if family is None or not callable(getattr(model, "init_state", None)):
        raise UserError(f"native engine: {type(model).__name__} is not a family model")
    if renderer is None:
        raise UserError(f"native engine: {engine_support(model)}")
    if not isinstance(getattr(model, "decoder", None), nn.Module):
        raise UserError(f"native engine: {type(model).__name__} has no decoder module")
    storage = _check_layers(model, renderer)
    for name, mod in model.named_modules():
        if not name.startswith("decoder") and ("quantized" in type(mod).__module__ or type(mod).__name__ == "OrtDecoder"):
            raise UserError(f"native engine: layer {name} is a {type(mod).__module__}.{type(mod).__name__}, "
                            "which the engine does not implement")
    for name, p in model.named_parameters():
        if p.dtype != torch.float32 and not name.endswith("_q"):
            raise UserError(f"native engine: parameter {name} is {p.dtype}; the engine computes in float32 "
                            "(weights may be stored in int8 or bf16 by the quantize compressor)")
    return str(family), renderer, storage


def _reverb_spectra(model: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """The impulse's partition spectra as the kernels store them (``(P, 2 SPEC_PAD)`` rows ``[real | imag]``)
    and the impulse itself (float32)."""
    from ddspbench.baselines import dsp
    from ddspbench.baselines._kernels import SPEC_PAD

    with torch.no_grad():
        h = model.reverb.impulse().float()  # type: ignore[union-attr, operator]
        parts = dsp.partition_spectra(h, _BLOCK)  # (P, 65) complex64, partition 0 first
    out = np.zeros((parts.shape[0], 2 * SPEC_PAD), dtype=np.float32)
    out[:, : parts.shape[1]] = parts.real.numpy()
    out[:, SPEC_PAD: SPEC_PAD + parts.shape[1]] = parts.imag.numpy()
    return out, np.ascontiguousarray(h.numpy(), dtype=np.float32)


_RENDERER_OF_OLD_FILES = {"hpn": "harmonic", "wavetable": "wavetable", "ddx7": "fm"}
"""The renderer of engine files written before the ``renderer`` entry (only the three built-in families had one)."""


class NativeEngine:
    """A compiled renderer of one family model (weights copied to the CPU at construction, from any device).

    Args:
        model: an HpN, Wavetable or DDX7 model with float32 parameters.
        batch: streams rendered per call.
        seed: noise seed of fresh states (``None``: drawn from torch's RNG at each reset), with the
            same meaning as ``model.init_state(batch, seed)``.

    Call with ``f0_hz, loudness_db`` of shape ``(batch, frames)`` (numpy or torch, any float dtype);
    returns float32 audio ``(batch, 64 * frames)`` and advances the stream. :meth:`reset` starts a
    fresh one.
    """

    def __init__(self, model: nn.Module, batch: int = 1, seed: int | None = 0) -> None:
        from ddspbench.baselines import _kernels

        self._k = _kernels
        self.family, self.renderer, self.storage = _check_model(model)
        if any(t.device.type != "cpu" for t in (*model.parameters(), *model.buffers())):
            model = copy.deepcopy(model).to("cpu")  # a CPU deployment: a CUDA-trained model's weights come along
        if int(batch) < 1:
            raise UserError(f"native engine: batch must be >= 1, got {batch}")
        self.batch = int(batch)
        self.seed = seed
        self._model = model
        with torch.no_grad():
            self._parts, self._impulse = _reverb_spectra(model)
            if self.renderer == "fm":
                self._build_ddx7(model)
            else:
                self._build_decoder_family(model)
        self._impulse_spectra: dict[int, np.ndarray] = {}  # impulse spectrum per FFT length (long buffers)
        self._seeds = model._seeds  # type: ignore[operator]
        self.reset(seed)

    # -- a portable file ---------------------------------------------------------------------------
    _SAVED_ARRAYS = {"common": ("_P", "_Q", "_LT", "_parts", "_impulse"),
                     "ddx7": ("_dil", "_hoff", "_ratios", "_mods", "_n_mods", "_carriers"),
                     "decoder": ("_meta", "_noise_mat", "_tables")}
    _SAVED_SCALARS = {"ddx7": ("_hist_size", "_max_ol"), "decoder": ("_eps", "_slope", "_gru_width")}

    def save(self, path: str | Path) -> None:
        """Write the engine's weights and constants as ``.npz`` (numpy arrays, no pickle) with a ``metadata``
        entry: the UTF-8 JSON of family, storage, format version and scalars. :meth:`load` reads it back."""
        kind = "ddx7" if self.renderer == "fm" else "decoder"
        arrays = {name.lstrip("_"): getattr(self, name) for name in (*self._SAVED_ARRAYS["common"], *self._SAVED_ARRAYS[kind])}
        meta = {"format": ENGINE_FORMAT, "family": self.family, "renderer": self.renderer, "storage": self.storage,
                "block": _BLOCK, "sample_rate": 16000,
                "scalars": {name.lstrip("_"): getattr(self, name) for name in self._SAVED_SCALARS[kind]}}
        arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(path, "wb") as fh:  # np.savez would append .npz to a name without it
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path, batch: int = 1, seed: int | None = 0) -> NativeEngine:
        """An engine from a :meth:`save` file: no model, checkpoint or training code needed (numpy, numba, the kernels)."""
        from ddspbench.baselines import _kernels
        from ddspbench.baselines._base import DDSPFamily

        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(bytes(data.pop("metadata")).decode())
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"native engine: {path} is not an engine file ({exc})") from None
        if meta.get("format") != ENGINE_FORMAT:
            raise UserError(f"native engine: {path} has format {meta.get('format')!r}, this engine reads {ENGINE_FORMAT!r}")
        self = cls.__new__(cls)
        self._k = _kernels
        self.family, self.storage = str(meta["family"]), str(meta["storage"])
        # files written before families declared their renderer name the three built-in families
        self.renderer = str(meta.get("renderer") or _RENDERER_OF_OLD_FILES.get(self.family, "harmonic"))
        kind = "ddx7" if self.renderer == "fm" else "decoder"
        for name in (*cls._SAVED_ARRAYS["common"], *cls._SAVED_ARRAYS[kind]):
            setattr(self, name, np.ascontiguousarray(data[name.lstrip("_")]))
        for name in cls._SAVED_SCALARS[kind]:
            setattr(self, name, meta["scalars"][name.lstrip("_")])
        if int(batch) < 1:
            raise UserError(f"native engine: batch must be >= 1, got {batch}")
        self.batch, self.seed = int(batch), seed
        self._model = None
        self._seeds = DDSPFamily._seeds
        self._impulse_spectra = {}
        self.reset(seed)
        return self

    # -- weights ---------------------------------------------------------------------------------
    def _build_decoder_family(self, model: nn.Module) -> None:
        from ddspbench.baselines import dsp

        dec = model.decoder
        pack = _Pack(self.storage)
        norms = [m for m in dec.modules() if isinstance(m, nn.LayerNorm)]
        slopes = {float(m.negative_slope) for m in dec.modules() if isinstance(m, nn.LeakyReLU)}
        epss = {float(m.eps) for m in norms}
        if len(epss) > 1 or len(slopes) > 1:
            raise UserError("native engine: the decoder mixes LayerNorm epsilons or LeakyReLU slopes")
        self._eps = epss.pop() if epss else 1e-5
        self._slope = slopes.pop() if slopes else 0.01

        def add_mlp(seq: nn.Sequential) -> int:
            """One table row per Linear + LayerNorm (+ LeakyReLU) triple; returns the number of layers."""
            mods = list(seq)
            kinds = [type(m).__name__ for m in mods]
            if len(mods) % 3 or any(k not in _LINEAR_TYPES for k in kinds[0::3]) \
                    or set(kinds[1::3]) - {"LayerNorm"} or set(kinds[2::3]) - {"LeakyReLU"}:
                raise UserError(f"native engine: an MLP of the decoder is {kinds}, not [Linear, LayerNorm, LeakyReLU] x n")
            for lin, ln in zip(mods[0::3], mods[1::3]):
                pack.layer(lin, ln)
            return len(mods) // 3

        counts = [add_mlp(dec.f0_mlp), add_mlp(dec.loudness_mlp)]
        gru = dec.gru
        ih, s_ih, (rows, cols) = pack.matrix(gru, "weight_ih_l0")
        hh, s_hh, _ = pack.matrix(gru, "weight_hh_l0")
        pack.rows.append([ih, rows, cols, pack.add(gru.bias_ih_l0), hh, pack.add(gru.bias_hh_l0), s_ih, s_hh])
        counts.append(add_mlp(dec.out_mlp))
        heads = [dec.heads[n] for n in ["amplitude", model.tonal_head, "noise_bands"]]
        mats = [pack.matrix(h) for h in heads]  # consecutive in Q, and their scales (if any) in P: one merged row
        if len({m[2][1] for m in mats}) > 1:
            raise UserError("native engine: the decoder heads take inputs of different widths")
        bias = pack.add(torch.cat([h.bias for h in heads]))
        pack.rows.append([mats[0][0], sum(m[2][0] for m in mats), mats[0][2][1], bias, -1, -1, mats[0][1], -1])
        self._P, self._Q, self._LT = pack.arrays()
        n_tonal = int(dec.heads[model.tonal_head].out_features)
        n_bands = int(dec.heads["noise_bands"].out_features)
        kind = 0 if self.renderer == "harmonic" else 1
        self._meta = np.array([*counts, kind, n_tonal, n_bands], dtype=np.int64)
        self._gru_width = int(gru.hidden_size)
        fir = dsp.bands_to_filter(torch.eye(n_bands, dtype=torch.float64), _BLOCK)
        self._noise_mat = np.ascontiguousarray(fir.numpy(), dtype=np.float32)
        tables = model.tables().float() if kind == 1 else torch.zeros(1, 1)
        self._tables = np.ascontiguousarray(tables.numpy(), dtype=np.float32)

    def _build_ddx7(self, model: nn.Module) -> None:
        pack = _Pack(self.storage)
        dils, hsizes = [], []
        for blk in model.decoder.blocks():
            pack.layer(blk.conv1)
            pack.layer(blk.conv2)
            if blk.residual is None:
                pack.layer(None, rows=int(blk.conv2.out_channels), cols=int(blk.conv1.in_channels))
            else:
                pack.layer(blk.residual)
            dils.append(int(blk.dilation))
            hsizes += [int(blk.conv1.in_channels) * 2 * blk.dilation, int(blk.conv2.in_channels) * 2 * blk.dilation]
        self._P, self._Q, self._LT = pack.arrays()
        self._dil = np.asarray(dils, dtype=np.int64)
        self._hoff = np.concatenate([[0], np.cumsum(hsizes)[:-1]]).astype(np.int64)
        self._hist_size = int(sum(hsizes))
        patch = model.patch
        n_ops = len(patch.ratios)
        self._ratios = np.asarray(patch.ratios, dtype=np.float64)
        self._mods = np.zeros((n_ops, max(1, max(len(m) for m in patch.modulators))), dtype=np.int64)
        self._n_mods = np.zeros(n_ops, dtype=np.int64)
        for k, ms in enumerate(patch.modulators):
            self._n_mods[k] = len(ms)
            self._mods[k, : len(ms)] = ms
        self._carriers = np.asarray(patch.carriers, dtype=np.int64)
        from ddspbench.baselines.ddx7 import MAX_OL

        self._max_ol = float(MAX_OL)

    # -- state -----------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """A fresh stream for every batch item; ``seed`` as in ``model.init_state`` (default: the engine's)."""
        from ddspbench.baselines import dsp

        seed = self.seed if seed is None else seed
        b = self.batch
        self._frame = np.zeros(b, dtype=np.int64)
        self._rv_prev = np.zeros((b, _BLOCK), dtype=np.float32)
        self._rv_ring = np.zeros((b, *self._parts.shape), dtype=np.float32)
        self._rv_pos = np.zeros(b, dtype=np.int64)
        if self.renderer == "fm":
            self._hist = np.zeros((b, self._hist_size), dtype=np.float32)
            self._prev7 = np.zeros((b, 1 + len(self._ratios)), dtype=np.float32)
            self._phase = np.zeros((b, len(self._ratios)), dtype=np.float64)
            return
        seeds = self._seeds(b, seed, torch.device("cpu"))
        self._key = np.ascontiguousarray(dsp.noise_key(seeds).view(-1).numpy(), dtype=np.int64)
        self._h = np.zeros((b, self._gru_width), dtype=np.float32)
        self._f0_prev = np.zeros(b, dtype=np.float32)
        self._phase = np.zeros(b, dtype=np.float64)

    # -- memory ----------------------------------------------------------------------------------
    def footprint(self, buffer_frames: int = 1) -> dict[str, int]:
        """Bytes this engine holds per stream, from its arrays: ``weights`` (``P``, ``Q`` as stored, the layer
        table), ``constants`` (reverb spectra and impulse, noise-filter matrix, wavetables, patch tables),
        ``state`` (one stream's streaming state) and ``scratch``: what one call of ``buffer_frames`` frames
        allocates (input/output arrays and the kernels' temporaries, summed as if all live at once; buffers
        up to :data:`LONG_FRAMES` frames, the streaming path), plus ``total``.
        """
        t = int(buffer_frames)
        if not 1 <= t <= LONG_FRAMES:
            raise UserError(f"native engine: footprint covers streaming buffers of 1..{LONG_FRAMES} frames, got {t}")
        from ddspbench.baselines._kernels import BLAS_MIN

        f4, f8 = 4, 8
        weights = self._P.nbytes + self._Q.nbytes + self._LT.nbytes
        shared = [self._parts, self._impulse]
        if self.renderer == "fm":
            shared += [self._dil, self._hoff, self._ratios, self._mods, self._n_mods, self._carriers]
            state = [self._hist, self._prev7, self._phase]
        else:
            shared += [self._meta, self._noise_mat, self._tables]
            state = [self._h, self._f0_prev, self._phase, self._key]
        state += [self._frame, self._rv_prev, self._rv_ring, self._rv_pos]
        per_stream = sum(a.nbytes for a in state) // self.batch
        io = 2 * t * f4 + _BLOCK * t * f4  # f0 and loudness in, audio out
        reverb = 2 * 2 * _BLOCK * f8 + self._parts.shape[1] * f4  # FFT re/im (float64) and the spectral sum
        rows, cols = self._LT[:, 1], self._LT[:, 2]
        blas_tmp = 0  # a one-frame BLAS gemv returns a new vector (float32 layers at or above BLAS_MIN weights)
        if t == 1 and self.storage == "float32":
            big = (rows * cols >= BLAS_MIN) & (self._LT[:, 0] >= 0)
            blas_tmp = int(rows[big].sum()) * f4
        if self.renderer == "fm":
            n_ops = len(self._ratios)
            kernel = t * 2 * f4 + (n_ops * _BLOCK + 2 * _BLOCK + 1 + n_ops) * f4  # inputs x, levels, f0, fm, cur
            kernel += (2 * n_ops * _BLOCK + _BLOCK) * f4  # _fm_block: phases, operators, modulation sum
            for blk, d in enumerate(self._dil):
                r1, r2, r3 = self._LT[3 * blk], self._LT[3 * blk + 1], self._LT[3 * blk + 2]
                c_in, c_h, c_out = int(r1[2]) // 3, int(r1[1]), int(r2[1])
                ctx = 2 * int(d)
                kernel += ((ctx + t) * (c_in + c_h) + t * 3 * (c_in + c_h) + t * c_out) * f4  # xin, yin, cols, y
                kernel += t * c_out * f4 if r3[0] >= 0 else 0  # 1x1 residual output
        else:
            n_f0, n_ld, n_out, kind, n_tonal, n_bands = (int(v) for v in self._meta)
            g = self._gru_width
            gru = n_f0 + n_ld
            mlp_rows = int(rows[:gru].sum() + rows[gru + 1: gru + 1 + n_out].sum())
            cat = int(rows[n_f0 - 1] + rows[gru - 1])
            kernel = (2 * t + 6 * _BLOCK + 1 + 2 * n_tonal + n_bands + self._tables.shape[1]) * f4  # process buffers
            kernel += t * (2 + mlp_rows + cat + 3 * g + g + 2 + int(rows[-1])) * f4  # inputs, MLPs, concat, GI, GRU out, heads
            kernel += 3 * g * f4  # GRU hidden gates
            kernel += (_BLOCK + _BLOCK + 2 * _BLOCK) * f4  # noise filter: taps and the padded block
            kernel += _BLOCK * f8 if kind == 0 else 0  # harmonic sum (float64)
            if t == 1 and self.storage == "float32" and 3 * g * g >= BLAS_MIN:
                blas_tmp += 3 * g * f4
        kernel += blas_tmp
        scratch = io + reverb + kernel
        constants = sum(a.nbytes for a in shared)
        return {"weights": int(weights), "constants": int(constants), "state": int(per_stream),
                "scratch": int(scratch), "total": int(weights + constants + per_stream + scratch)}

    @property
    def frame(self) -> int:
        """Frames rendered since the last reset (of the first stream)."""
        return int(self._frame[0])

    # -- rendering -------------------------------------------------------------------------------
    def __call__(self, f0_hz: Any, loudness_db: Any) -> np.ndarray:
        f0 = _frames(f0_hz)
        loud = _frames(loudness_db)
        if f0.shape != loud.shape or f0.shape[0] != self.batch or f0.shape[1] < 1:
            raise UserError(f"native engine: takes f0 and loudness of shape ({self.batch}, frames >= 1), got "
                            f"{tuple(f0.shape)} and {tuple(loud.shape)}")
        k = self._k
        out = np.empty((self.batch, _BLOCK * f0.shape[1]), dtype=np.float32)
        per_block = f0.shape[1] <= LONG_FRAMES
        if self.renderer == "fm":
            k.ddx7_process(self._P, self._Q, self._LT, self._dil, f0, loud, self._hist, self._hoff, self._prev7, self._phase,
                           self._frame, self._ratios, self._mods, self._n_mods, self._carriers, self._max_ol,
                           self._rv_prev, self._rv_ring, self._rv_pos, self._parts, out, per_block)
        else:
            k.decoder_family_process(self._P, self._Q, self._LT, self._meta, self._eps, self._slope, f0, loud, self._h,
                                     self._f0_prev, self._phase, self._frame, self._key, self._rv_prev, self._rv_ring,
                                     self._rv_pos, self._parts, self._noise_mat, self._tables, out, per_block)
        if not per_block:
            self._reverb_long(out)
        return out

    def _reverb_long(self, dry: np.ndarray) -> None:
        """The reverb of a long buffer in one FFT (in place), continuing and then updating the block state.

        The input history (the last ``L`` samples) is read back from the state's block-pair spectra,
        ``[history, dry]`` is convolved with the impulse (float32 FFTs of a fast length, as the eager model's), and the state
        becomes the spectra of the buffer's last ``P`` block pairs, newest at the last ring slot: what
        :func:`baselines._kernels._reverb_block` would have left after the same samples.
        """
        import scipy.fft as sfft

        from ddspbench.baselines._base import fast_fft_len
        from ddspbench.baselines._kernels import SPEC_PAD

        n_parts = self._parts.shape[0]
        length = n_parts * _BLOCK
        n = dry.shape[1]
        n_fft = fast_fft_len(length + n)
        spec_h = self._impulse_spectra.get(n_fft)
        if spec_h is None:
            spec_h = self._impulse_spectra[n_fft] = sfft.rfft(self._impulse, n_fft, workers=1)
        bins = _BLOCK + 1
        for bi in range(self.batch):
            ring = self._rv_ring[bi]
            order = (self._rv_pos[bi] - np.arange(n_parts - 1, -1, -1)) % n_parts  # oldest block first
            pairs = ring[order, :bins] + 1j * ring[order, SPEC_PAD: SPEC_PAD + bins]
            hist = sfft.irfft(pairs.astype(np.complex64), 2 * _BLOCK, workers=1)[:, _BLOCK:].reshape(-1)
            z = np.concatenate([hist, dry[bi]])
            wet = sfft.irfft(sfft.rfft(z, n_fft, workers=1) * spec_h, n_fft, workers=1)[length: length + n]
            tail = z[-(n_parts + 1) * _BLOCK:]
            frames = np.lib.stride_tricks.sliding_window_view(tail, 2 * _BLOCK)[::_BLOCK]  # (P, 128) pairs
            spec = sfft.rfft(frames, axis=-1, workers=1)
            ring[:, :bins] = spec.real
            ring[:, SPEC_PAD: SPEC_PAD + bins] = spec.imag
            self._rv_pos[bi] = n_parts - 1
            self._rv_prev[bi] = dry[bi, -_BLOCK:]
            dry[bi] = wet


def _frames(x: Any) -> np.ndarray:
    """``(batch, frames)`` float32 C-contiguous numpy (no copy when the input already is one)."""
    if isinstance(x, Tensor):
        try:
            x = x.numpy()  # a view for CPU tensors without autograd history
        except (RuntimeError, TypeError):  # autograd history, another device or a non-numpy dtype
            x = x.detach().to("cpu", torch.float32).numpy()
    if type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2 and x.flags.c_contiguous:
        return x
    a = np.asarray(x)
    if a.ndim != 2:
        raise UserError(f"native engine: expects (batch, frames) arrays, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


class NativeRunner:
    """:class:`baselines.export.StreamingRunner`'s interface over a :class:`NativeEngine` (torch in, torch out).

    ``buffer_frames`` is what the runner was made for (calls must match it, as for the other backends).
    """

    backend = "native"

    def __init__(self, model: nn.Module, buffer_frames: int, *, batch: int = 1, seed: int | None = 0) -> None:
        self.engine = NativeEngine(model, batch=batch, seed=seed)
        self.batch = int(batch)
        self.buffer_frames = int(buffer_frames)
        self.seed = seed

    def reset(self, seed: int | None = None) -> None:
        self.engine.reset(seed)

    def __call__(self, f0_hz: Tensor, loudness_db: Tensor) -> Tensor:
        if f0_hz.shape[-1] != self.buffer_frames or loudness_db.shape[-1] != self.buffer_frames:
            want = (self.batch, self.buffer_frames)
            raise UserError(f"exported runner takes (batch, frames) = {want}, got {tuple(f0_hz.shape)} "
                            f"and {tuple(loudness_db.shape)}")
        return torch.from_numpy(self.engine(f0_hz, loudness_db))


ENGINES.register("native", obj=NativeEngine, description="numba streaming engine: decoder, synth and reverb in one compiled call per buffer")
