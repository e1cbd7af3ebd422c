"""Building blocks shared by the families: the base class, the learnable reverb, the HpN/Wavetable decoder.

The families themselves live in ``hpn.py``, ``wavetable.py`` and ``ddx7.py``; the DSP maths they
call is in ``dsp.py``. See ``docs/CONTRACTS.md`` ("Model families") for the interface.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ddspbench.baselines import dsp
from ddspbench.suite.bounds import WIDTH
from ddspbench.suite.errors import UserError
from ddspbench.suite.features import BLOCK_SIZE, SAMPLE_RATE
from ddspbench.suite.registry import SIZES
from ddspbench.suite.seeds import stream_seeds
from ddspbench.suite.traits import DEFAULT_TRAITS, FamilyTraits

__all__ = [
    "ModelConfigError",
    "setting",
    "DDSPFamily",
    "DecoderFamily",
    "Reverb",
    "HarmonicDecoder",
    "SizeSpec",
    "mlp",
    "fast_fft_len",
    "first_or_carried",
    "register_sizes",
    "scaled_inputs",
    "stream_seeds",
    "synth_dtype",
    "uniform_widths",
]


class ModelConfigError(UserError, TypeError, ValueError):
    """A family was given an unknown argument or an impossible value (a user mistake: the CLI exits 2)."""


def setting(value: Any, name: str) -> int:
    """A family's width or count (hidden, widths, n_harmonics, n_wavetables, n_bands, channels, n_blocks, trunk)
    checked against :data:`suite.bounds.WIDTH`, so 1.5, inf or a bool is refused rather than truncated;
    :class:`ModelConfigError` (one line) otherwise."""
    try:
        return int(WIDTH.check(value, name))
    except UserError as exc:
        raise ModelConfigError(str(exc)) from None


@dataclass(frozen=True)
class SizeSpec:
    """A named size of a family: the constructor kwargs and what the reference says about it."""

    name: str
    kwargs: Mapping[str, Any]
    params: int
    """Total parameter count of REFERENCE §2 (reverb included)."""
    params_trainable: int | None = None
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def fast_fft_len(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` (sizes pocketfft and cuFFT handle fast)."""
    n = int(n)  # a traced shape arrives as a 0-d tensor
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def synth_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the synth runs in: float32 for half/bfloat16 models (FFTs and phases need it)."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


_MIDI_OFFSET = 69.0 - 12.0 * math.log2(440.0)


def scaled_inputs(f0_hz: Tensor, loudness_db: Tensor, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """Decoder inputs of REFERENCE §1 as ``(B, T, 1)``: ``midi(f0)/127`` (0 for f0 <= 0) and ``loudness/80 + 1``.

    The same values as :func:`suite.features.scale_f0` / ``scale_loudness`` in fewer tensor ops
    (this runs once per streaming buffer); cast to ``dtype`` when given.
    """
    midi = torch.log2(f0_hz.clamp(min=1e-7)).mul_(12.0).add_(_MIDI_OFFSET)
    f0s = torch.where(f0_hz > 0, midi, 0.0).div_(127.0).unsqueeze(-1)
    ls = torch.add(loudness_db, 80.0).div_(80.0).unsqueeze(-1)
    if dtype is not None and f0s.dtype != dtype:
        f0s, ls = f0s.to(dtype), ls.to(dtype)
    return f0s, ls


def first_or_carried(frame: int | Tensor, first: Tensor, carried: Tensor) -> Tensor:
    """``first`` at the start of a signal (``frame == 0``), else ``carried``.

    ``frame`` is a Python int in eager streaming, or a 0-d int64 tensor in an exported graph
    (:mod:`baselines.export`), where the choice must stay data (a ``torch.where``), not a Python branch.
    """
    if isinstance(frame, Tensor):
        return torch.where(frame == 0, first, carried)
    return first if frame == 0 else carried


def mlp(sizes: list[int]) -> nn.Sequential:
    """``len(sizes) - 1`` x [Linear -> LayerNorm -> LeakyReLU(0.01)]: sizes ``[in, h1, h2, ...]``."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.LayerNorm(fan_out), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers)


class Reverb(nn.Module):
    """The learnable reverb of REFERENCE §1 (16,002 parameters for a 1 s impulse).

    ``forward(x, state)`` convolves causally and returns the new state, so buffers chain exactly
    (an offline call returns the first ``N`` samples of the full convolution). Short buffers (up to
    ``partitioned_max_blocks`` blocks) use uniformly partitioned overlap-save convolution (cheap per
    64-sample block); longer ones one big FFT over ``[history, x]``. Both give the same samples up
    to float rounding. State: ``{"prev": (B, 64) last input block, "fdl": (B, P-1, 65)}``, the
    overlap-save spectra of the last ``P - 1`` blocks (from which the long path recovers the input history).

    In eval mode without autograd the impulse spectra are cached (invalidated when a parameter
    changes in place, e.g. by an optimiser step or ``load_state_dict``).
    """

    partitioned_max_blocks = 16

    def __init__(self, length: int = SAMPLE_RATE, sample_rate: int = SAMPLE_RATE, block: int = BLOCK_SIZE,
                 initial_decay: float = 5.0, initial_wet: float = 0.0) -> None:
        super().__init__()
        if length % block:
            raise ValueError("reverb length must be a multiple of the block size")
        self.sample_rate = sample_rate
        self.block = block
        self.noise = nn.Parameter(torch.rand(length) * 2.0 - 1.0)
        self.decay = nn.Parameter(torch.tensor(float(initial_decay)))
        self.wet = nn.Parameter(torch.tensor(float(initial_wet)))
        self._cache: dict[Any, tuple[tuple[Any, ...], Tensor]] = {}

    @property
    def length(self) -> int:
        return int(self.noise.shape[-1])

    def impulse(self) -> Tensor:
        """The impulse ``(L,)`` from the current parameters."""
        return dsp.reverb_impulse(self.noise, self.decay, self.wet, self.sample_rate)

    def _spectrum(self, kind: Any) -> Tensor:
        """``kind`` is an FFT size (full spectrum) or ``"parts"`` (reversed partition spectra ``(P, K)``)."""

        def compute() -> Tensor:
            h = self.impulse()
            h = h.to(synth_dtype(h.dtype))
            if kind == "parts":
                return dsp.partition_spectra(h, self.block).flip(0).contiguous()
            return torch.fft.rfft(h, n=kind)

        params = (self.noise, self.decay, self.wet)
        cacheable = not self.training and not (torch.is_grad_enabled() and any(p.requires_grad for p in params))
        if not cacheable:
            return compute()
        key = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
        hit = self._cache.get(kind)
        if hit is None or hit[0] != key:
            with torch.no_grad():
                hit = (key, compute())
            self._cache[kind] = hit
        return hit[1]

    def init_state(self, batch_size: int, device: torch.device, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
        n_parts = self.length // self.block
        cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
        return {"prev": torch.zeros(batch_size, self.block, device=device, dtype=dtype),
                "fdl": torch.zeros(batch_size, n_parts - 1, self.block + 1, device=device, dtype=cdt)}

    def forward(self, x: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        m = self.block
        if x.dtype in _LOW_PRECISION:
            x = x.float()
        n_blocks = x.shape[-1] // m
        if n_blocks <= self.partitioned_max_blocks:
            spec = dsp.block_spectra(torch.cat([state["prev"], x], dim=-1), m)
            out, fdl = dsp.convolve_partitioned(spec, state["fdl"], self._spectrum("parts"), m)
            return out, {"prev": x[..., -m:], "fdl": fdl}
        # Long buffer: recover the last L input samples from the delay line (each entry holds two blocks).
        pairs = torch.fft.irfft(state["fdl"], n=2 * m)  # (B, P - 1, 2m)
        hist = torch.cat([pairs[:, 0, :m], pairs[:, :, m:].reshape(x.shape[0], -1)], dim=-1)  # (B, L)
        n_fft = fast_fft_len(hist.shape[-1] + x.shape[-1] + self.length - 1)
        out = dsp.convolve_history(x, hist, self._spectrum(n_fft), n_fft)
        z = torch.cat([hist, x], dim=-1)[..., -self.length:]
        return out, {"prev": x[..., -m:], "fdl": dsp.block_spectra(z, m)}


class HarmonicDecoder(nn.Module):
    """The HpN/Wavetable decoder of REFERENCE §2: input MLPs -> GRU -> output MLP -> linear heads.

    Args:
        widths: ``{"f0_mlp": [a, b, c], "loudness_mlp": [a, b, c], "gru": g, "out_mlp": [a, b, c]}``.
        heads: control name -> output size.
    """

    def __init__(self, widths: Mapping[str, Any], heads: Mapping[str, int]) -> None:
        super().__init__()
        f_w, l_w, o_w = list(widths["f0_mlp"]), list(widths["loudness_mlp"]), list(widths["out_mlp"])
        g = int(widths["gru"])
        self.f0_mlp = mlp([1, *f_w])
        self.loudness_mlp = mlp([1, *l_w])
        self.gru = nn.GRU(f_w[-1] + l_w[-1], g, batch_first=True)
        self.out_mlp = mlp([g + 2, *o_w])
        self.heads = nn.ModuleDict({name: nn.Linear(o_w[-1], k) for name, k in heads.items()})

    def widths(self) -> dict[str, Any]:
        """The per-layer widths as built now (after pruning, the pruned ones)."""

        def outs(seq: nn.Sequential) -> list[int]:  # plain or stored (int8/bf16) Linear layers
            return [int(m.out_features) for m in seq if hasattr(m, "out_features")]

        return {"f0_mlp": outs(self.f0_mlp), "loudness_mlp": outs(self.loudness_mlp),
                "gru": int(self.gru.hidden_size), "out_mlp": outs(self.out_mlp)}

    def forward(self, f0_scaled: Tensor, loudness_scaled: Tensor, h0: Tensor | None
                ) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Returns raw heads ``{name: (B, T, k)}``, the GRU output ``(B, T, g)`` and the GRU state.

        Inference without autograd takes a lighter path with the same maths (functional calls
        instead of module calls, and one GRU step written out for single-frame buffers) when the
        layers are the plain float ones; anything else (training, quantized or swapped layers)
        goes through the modules.
        """
        if not torch.is_grad_enabled() and not self.training and self._plain():
            return self._forward_light(f0_scaled, loudness_scaled, h0)
        x = torch.cat([self.f0_mlp(f0_scaled), self.loudness_mlp(loudness_scaled)], dim=-1)
        hidden, h = self._gru(x, h0)
        y = self.out_mlp(torch.cat([hidden, f0_scaled, loudness_scaled], dim=-1))
        return {name: head(y) for name, head in self.heads.items()}, hidden, h

    def _gru(self, x: Tensor, h0: Tensor | None) -> tuple[Tensor, Tensor]:
        """``self.gru(x, h0)``; in training on CPU (and in :func:`dsp.kernels_without_grad`) by the compiled recurrence
        of :func:`baselines._train_kernels.gru_cpu` (the same values to float32 rounding)."""
        if dsp.use_gru_kernels(self.gru, x):
            from ddspbench.baselines._train_kernels import gru_cpu

            return gru_cpu(self.gru, x, h0)
        return self.gru(x, h0)  # type: ignore[no-any-return]

    def _plain(self) -> bool:
        plain = (nn.Linear, nn.LayerNorm, nn.LeakyReLU)
        for seq in (self.f0_mlp, self.loudness_mlp, self.out_mlp):
            if any(type(m) not in plain for m in seq):
                return False
        return type(self.gru) is nn.GRU and all(type(h) is nn.Linear for h in self.heads.values())

    @staticmethod
    def _mlp_light(seq: nn.Sequential, x: Tensor) -> Tensor:
        for m in seq:
            if type(m) is nn.Linear:
                x = F.linear(x, m.weight, m.bias)
            elif type(m) is nn.LayerNorm:
                x = F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)
            else:
                x = F.leaky_relu(x, m.negative_slope)  # type: ignore[arg-type]
        return x

    def _forward_light(self, f0_scaled: Tensor, loudness_scaled: Tensor, h0: Tensor | None
                       ) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        x = torch.cat([self._mlp_light(self.f0_mlp, f0_scaled), self._mlp_light(self.loudness_mlp, loudness_scaled)],
                      dim=-1)
        gru = self.gru
        if x.shape[1] == 1 and h0 is not None and gru.num_layers == 1 and gru.bias and not gru.bidirectional:
            g = gru.hidden_size
            h_prev = h0[0]
            gi = F.linear(x[:, 0], gru.weight_ih_l0, gru.bias_ih_l0)
            gh = F.linear(h_prev, gru.weight_hh_l0, gru.bias_hh_l0)
            rz = torch.sigmoid(gi[:, : 2 * g] + gh[:, : 2 * g])
            n = torch.tanh(torch.addcmul(gi[:, 2 * g:], rz[:, :g], gh[:, 2 * g:]))
            h_new = torch.addcmul(n, rz[:, g:], h_prev - n)
            hidden, h = h_new.unsqueeze(1), h_new.unsqueeze(0)
        else:
            hidden, h = self._gru(x, h0)
        y = self._mlp_light(self.out_mlp, torch.cat([hidden, f0_scaled, loudness_scaled], dim=-1))
        return {name: F.linear(y, head.weight, head.bias) for name, head in self.heads.items()}, hidden, h


def uniform_widths(hidden: int) -> dict[str, Any]:
    """Per-layer widths of an unpruned decoder of width ``hidden``."""
    return {"f0_mlp": [hidden] * 3, "loudness_mlp": [hidden] * 3, "gru": hidden, "out_mlp": [hidden] * 3}


class DDSPFamily(nn.Module):
    """What every family shares: identity (``family``, ``config``, ``size_name``) and the streaming state helpers.

    Subclasses define ``family``, ``control_names``, ``SIZE_SPECS``, ``forward``, ``init_state``,
    ``synth_controls`` and ``_current_config``.
    """

    family: ClassVar[str]
    traits: ClassVar[FamilyTraits] = DEFAULT_TRAITS
    """What the engine and the compressors need (:class:`suite.traits.FamilyTraits`): size keys, engine renderer."""
    control_names: ClassVar[tuple[str, ...]]
    SIZE_SPECS: ClassVar[tuple[SizeSpec, ...]] = ()
    sample_rate: ClassVar[int] = SAMPLE_RATE
    block_size: ClassVar[int] = BLOCK_SIZE

    config: dict[str, Any]
    size_name: str

    def _finish_init(self, config: dict[str, Any]) -> None:
        self.config = config
        self.size_name = self._match_size(config)

    @classmethod
    def _match_size(cls, config: Mapping[str, Any]) -> str:
        for spec in cls.SIZE_SPECS:
            if cls._normalise(dict(spec.kwargs)) == config:
                return spec.name
        return "custom"

    @classmethod
    def _normalise(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The full config a constructor call with ``kwargs`` resolves to."""
        raise NotImplementedError

    def sync_config(self) -> dict[str, Any]:
        """Re-read ``config`` from the layers as they are now (call after pruning in place); returns it."""
        self.config = self._current_config()
        self.size_name = self._match_size(self.config)
        return copy.deepcopy(self.config)

    def _current_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _ref(self) -> Tensor:
        """A parameter whose device and dtype the computations follow: the first float32/float64 one (weights
        stored in int8 or bfloat16 by :mod:`baselines.stored` compute in float32), else the first floating one."""
        params = list(self.parameters())
        for p in params:
            if p.dtype in (torch.float32, torch.float64):
                return p
        return next((p for p in params if p.is_floating_point()), params[0])

    per_item_seeds: ClassVar[bool] = True
    """``init_state(batch, seed=[s_0, ..., s_{batch-1}])`` takes one stream seed per item (see :func:`stream_seeds`)."""

    @staticmethod
    def _seeds(batch_size: int, seed: int | Sequence[int] | Tensor | None, device: torch.device) -> Tensor:
        """Per-item stream seeds: ``seed * 1_000_003 + item`` for an int, the given values for a sequence."""
        if seed is None:
            return torch.randint(0, 2**62, (batch_size,), dtype=torch.int64).to(device)
        if isinstance(seed, (int, np.integer)):
            return (torch.arange(batch_size, dtype=torch.int64) + int(seed) * 1_000_003).to(device)
        seeds = torch.as_tensor(seed, dtype=torch.int64).reshape(-1)
        if seeds.numel() != batch_size:
            raise ModelConfigError(f"init_state: {seeds.numel()} stream seeds for a batch of {batch_size}")
        return seeds.to(device)


def register_sizes(cls: type[DDSPFamily]) -> type[DDSPFamily]:
    """Register every ``SizeSpec`` of ``cls`` in ``SIZES`` as ``"<family>/<size>"`` with a zero-argument factory."""

    def build(kwargs: Mapping[str, Any]) -> DDSPFamily:
        return cls(**copy.deepcopy(dict(kwargs)))

    for spec in cls.SIZE_SPECS:
        factory: Callable[[], DDSPFamily] = functools.partial(build, spec.kwargs)
        meta: dict[str, Any] = {"family": cls.family, "size": spec.name, "reference_params": spec.params}
        if spec.params_trainable is not None:
            meta["reference_params_trainable"] = spec.params_trainable
        SIZES.register(f"{cls.family}/{spec.name}", obj=factory, description=spec.note, **meta)
    return cls


class DecoderFamily(DDSPFamily):
    """HpN and Wavetable: the GRU decoder, a tonal oscillator, filtered noise and the reverb.

    Subclasses set ``tonal_head`` (the head whose size is ``n_harmonics``/``n_wavetables``) and
    implement ``_tonal(sc, f0, phase)``.

    Streaming state: ``{"frame": int (or a 0-d int64 tensor), "noise_key": (B, 1, 1) int64, "gru": (1, B, g), "phase": (B, 1) float64,
    "f0_prev": (B, 1, 1), "reverb": Reverb state}``.
    """

    tonal_head: ClassVar[str]
    tonal_key: ClassVar[str]  # config key of the tonal head size

    def _build(self, config: dict[str, Any]) -> None:
        heads = {"amplitude": 1, self.tonal_head: config[self.tonal_key], "noise_bands": config["n_bands"]}
        self.decoder = HarmonicDecoder(config["widths"], heads)
        self.reverb = Reverb()
        self.register_buffer("_noise_basis_ri", torch.empty(0), persistent=False)
        self._noise_basis(config["n_bands"])
        self.register_buffer("_ratio", torch.ones(1, dtype=torch.float64), persistent=False)
        self.register_buffer("_ramp", dsp.linear_ramp(self.block_size), persistent=False)

    @classmethod
    def _normalise(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        hidden = setting(kwargs.pop("hidden", 512), "hidden")
        widths = kwargs.pop("widths", None)
        widths = uniform_widths(hidden) if widths is None else {
            **{k: [setting(w, f"widths.{k}") for w in widths[k]] for k in ("f0_mlp", "loudness_mlp", "out_mlp")},
            "gru": setting(widths["gru"], "widths.gru")}
        n_tonal = setting(kwargs.pop(cls.tonal_key, cls._default_tonal()), cls.tonal_key)
        n_bands = setting(kwargs.pop("n_bands", 65), "n_bands")
        if kwargs:
            raise ModelConfigError(f"{cls.__name__}: unknown arguments {sorted(kwargs)}")
        if n_bands < 2 or n_tonal < 1:
            raise ModelConfigError(f"{cls.__name__}: needs n_bands >= 2 and {cls.tonal_key} >= 1")
        return {"hidden": widths["gru"], "widths": widths, cls.tonal_key: n_tonal, "n_bands": n_bands}

    @classmethod
    def _default_tonal(cls) -> int:
        raise NotImplementedError

    def _noise_basis(self, n_bands: int) -> Tensor:
        """The band -> filter-spectrum matrix (real/imag interleaved) for ``n_bands``, rebuilt if the noise head was resized."""
        if self._noise_basis_ri.shape[0] != n_bands:
            ref = self._noise_basis_ri
            basis = dsp.noise_filter_basis(n_bands, self.block_size, 2 * self.block_size)
            self._noise_basis_ri = torch.view_as_real(basis).reshape(n_bands, -1).to(ref.device)
        return self._noise_basis_ri

    def _current_config(self) -> dict[str, Any]:
        widths = self.decoder.widths()
        return {"hidden": widths["gru"], "widths": widths,
                self.tonal_key: int(self.decoder.heads[self.tonal_head].out_features),
                "n_bands": int(self.decoder.heads["noise_bands"].out_features)}

    def init_state(self, batch_size: int, seed: int | Sequence[int] | None = None) -> dict[str, Any]:
        """A fresh streaming state; ``seed`` fixes the noise (``None`` draws one from torch's global RNG;
        a sequence gives each item its own stream seed, see :func:`stream_seeds`)."""
        ref = self._ref()
        dev, dt = ref.device, ref.dtype
        sdt = synth_dtype(dt)
        return {
            "frame": 0,
            "noise_key": dsp.noise_key(self._seeds(batch_size, seed, dev)),
            "gru": torch.zeros(1, batch_size, self.decoder.gru.hidden_size, device=dev, dtype=dt),
            "phase": torch.zeros(batch_size, 1, device=dev, dtype=torch.float64),
            "f0_prev": torch.zeros(batch_size, 1, 1, device=dev, dtype=torch.float32),
            "reverb": self.reverb.init_state(batch_size, dev, sdt),
        }

    def synth_controls(self, controls: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``exp_sigmoid`` of every raw head (REFERENCE §2)."""
        return {name: dsp.exp_sigmoid(controls[name]) for name in self.control_names}

    def _tonal(self, sc: Mapping[str, Tensor], f0: Tensor, phase: Tensor) -> Tensor:
        raise NotImplementedError

    noise_chunk_blocks: ClassVar[int] = 1024

    def _white(self, key: Tensor, frame: int | Tensor, t: int) -> Tensor:
        """Noise blocks ``frame .. frame+t-1`` of the stream ``key`` (:func:`dsp.counter_uniform`).

        In inference, blocks are drawn a chunk at a time and sliced per buffer (the same values:
        the noise is a pure function of key and block index).
        """
        chunk = self.noise_chunk_blocks
        if isinstance(frame, Tensor) or torch.is_grad_enabled() or self.training or t > chunk:
            return dsp.counter_uniform(key, frame, t, self.block_size)
        cache = getattr(self, "_noise_cache", None)
        if cache is None or cache[0] is not key or not cache[1] <= frame <= cache[1] + chunk - t:
            cache = (key, frame, dsp.counter_uniform(key, frame, chunk, self.block_size))
            self._noise_cache = cache
        return cache[2][:, frame - cache[1]: frame - cache[1] + t]

    def fresh_controls(self, f0_hz: Tensor, loudness_db: Tensor) -> dict[str, Tensor]:
        """The raw heads ``forward(f0_hz, loudness_db)["controls"]`` returns from a fresh state, without the synth
        (control distillation needs only these; the same operations, so the same values bit for bit). Unlike
        ``forward(..., state=None)`` it draws no noise seed from torch's global RNG."""
        ref = self._ref()
        h0 = torch.zeros(1, f0_hz.shape[0], self.decoder.gru.hidden_size, device=ref.device, dtype=ref.dtype)
        f0s, ls = scaled_inputs(f0_hz, loudness_db, ref.dtype)
        return self.decoder(f0s, ls, h0)[0]

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Frames ``(B, T)`` at 250 Hz -> ``{"audio": (B, 64 T), "controls", "state", "hidden"}``.

        ``state=None`` starts fresh (offline); passing the returned state on continues the signal.
        """
        b, t = f0_hz.shape
        if state is None:
            state = self.init_state(b)
        f0s, ls = scaled_inputs(f0_hz, loudness_db, self._ref().dtype)
        controls, hidden, h = self.decoder(f0s, ls, state["gru"])
        sc = self.synth_controls(controls)
        if sc["amplitude"].dtype in _LOW_PRECISION:
            sc = {k: v.float() for k, v in sc.items()}
        f0 = f0_hz.unsqueeze(-1)
        if f0.dtype != sc["amplitude"].dtype:
            f0 = f0.to(sc["amplitude"].dtype)
        prev = first_or_carried(state["frame"], f0[:, :1], state["f0_prev"])
        f0_up, f0_last = dsp.upsample_linear_causal(f0, prev, self.block_size, self._ramp)
        phase, phase_end = dsp.oscillator_phase(f0_up.view(b, -1), state["phase"], self._ratio, self.sample_rate)
        tonal = self._tonal(sc, f0, phase[:, 0])
        white = self._white(state["noise_key"], state["frame"], t)
        if white.dtype != tonal.dtype:
            white = white.to(tonal.dtype)
        basis = self._noise_basis(sc["noise_bands"].shape[-1])
        noise = dsp.filtered_noise(white, sc["noise_bands"], basis, self.block_size)
        audio, reverb_state = self.reverb(tonal + noise, state["reverb"])
        new_state = {"frame": state["frame"] + t, "noise_key": state["noise_key"], "gru": h, "phase": phase_end,
                     "f0_prev": f0_last, "reverb": reverb_state}
        return {"audio": audio, "controls": controls, "state": new_state, "hidden": hidden}
