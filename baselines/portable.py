"""A portable streaming step of every family: the eager model's audio in ops that ONNX and TorchScript carry.

The eager forward (:mod:`baselines._base`, ``ddx7.py``) leans on three things the ONNX exporter and
most runtimes do not have: the noise hash's bitwise ops on int64, FFTs (noise filtering, reverb) and
a complex-valued reverb delay line. :class:`PortableStep` computes the *same* function with

* the counter-based noise hash of :func:`dsp.counter_uniform` written with integer division and
  remainder (``x >> 16`` = ``x // 65536`` and ``x & 0xFFFFFFFF`` = ``x % 2**32`` on non-negative int64)
  and ``^`` (exported as ONNX ``BitwiseXor``, opset 18): bit-identical noise;
* each noise block's FIR filter applied in the time domain (a 64 x 64 Toeplitz gather and a matrix
  product) instead of an FFT product: the same linear convolution;
* the reverb's uniformly partitioned overlap-save convolution with real DFT matrices (``[x_{j-1}, x_j]``
  times cos/sin tables), the partition sums as one product and sum per block (a grouped ``conv1d`` over
  the delay line for buffers over 16 frames), and the
  delay line held as two real tensors (real and imaginary parts);
* decoder weights read as stored: float32, or the ``quantize`` compressor's int8 (with per-row
  scales) or bfloat16, widened to float32 in the graph (``q * s``, exactly the eager ``StoredLinear``).

``forward(f0_hz (B, T), loudness_db (B, T), state: list[Tensor]) -> (audio (B, 64 T), new state)`` for
a fixed ``T`` chosen at export. The state is the eager state flattened (:meth:`PortableStep.init_state`,
names in :attr:`PortableStep.state_names`), the block counter as a 0-d int64 tensor. Equality with
the eager model is not assumed: :mod:`baselines.deploy` checks it on every export (parity check).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ddspbench.baselines import dsp
from ddspbench.baselines._base import scaled_inputs
from ddspbench.baselines.ddx7 import MAX_OL
from ddspbench.baselines.stored import stored_weights
from ddspbench.suite.errors import UserError
from ddspbench.suite.traits import traits_of

__all__ = ["PortableStep", "portable_uniform", "UNROLL_MAX_FRAMES", "SUM_MAX_FRAMES"]

_U32 = 1 << 32
_HI = 1 << 16
_MUL = 0x45D9F3B
UNROLL_MAX_FRAMES = 64
"""Buffers up to this many frames run the GRU as an unrolled cell; longer ones through one GRU op."""
SUM_MAX_FRAMES = 16
"""Buffers up to this many frames sum the reverb partitions block by block; longer ones by a grouped conv1d."""


def _hash32(x: Tensor) -> Tensor:
    """:func:`dsp._hash32` for int64 values in ``[0, 2^32)`` without shifts or masks."""
    x = torch.remainder(((x // _HI) ^ x) * _MUL, _U32)
    x = torch.remainder(((x // _HI) ^ x) * _MUL, _U32)
    return (x // _HI) ^ x


def portable_uniform(key: Tensor, frame: Tensor, n_blocks: int, block: int) -> Tensor:
    """:func:`dsp.counter_uniform` (bit-identical) for a 0-d int64 block counter ``frame``."""
    counter = torch.arange(n_blocks * block, dtype=torch.int64).view(1, n_blocks, block) + frame * block
    x = _hash32(torch.remainder(counter, _U32) ^ key)
    return (x // 256).to(torch.float32) * (2.0 / (1 << 24)) - 1.0


def _rdft_tables(block: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``rfft`` of length ``2 block`` as matrices ``(2b, b+1)`` (real, imag) and the second half of its
    ``irfft`` as ``(b+1, b)`` (from real, from imag), built in float64."""
    n = 2 * block
    k = torch.arange(block + 1, dtype=torch.float64)
    t = torch.arange(n, dtype=torch.float64)
    ang = 2.0 * math.pi * t[:, None] * k[None, :] / n
    fwd_re, fwd_im = torch.cos(ang), -torch.sin(ang)
    w = torch.full((block + 1,), 2.0, dtype=torch.float64)
    w[0] = w[-1] = 1.0
    inv_ang = ang[block:].T  # (b+1, b): output samples block..2b-1
    inv_re = (w[:, None] * torch.cos(inv_ang)) / n
    inv_im = -(w[:, None] * torch.sin(inv_ang)) / n
    return fwd_re.float(), fwd_im.float(), inv_re.float(), inv_im.float()


class _Reverb(nn.Module):
    """The model's reverb, partitioned overlap-save with real DFT matrices; state ``prev, fdl_re, fdl_im``."""

    def __init__(self, reverb: nn.Module) -> None:
        super().__init__()
        self.block = int(reverb.block)
        with torch.no_grad():
            parts = dsp.partition_spectra(reverb.impulse().float(), self.block).flip(0)  # (P, K), reversed
        # out[f, k] = sum_p ext[f + p, k] parts_rev[p, k]
        self.register_buffer("p_re", parts.real.contiguous())
        self.register_buffer("p_im", parts.imag.contiguous())
        fr, fi, ir, ii = _rdft_tables(self.block)
        for name, t in (("fwd_re", fr), ("fwd_im", fi), ("inv_re", ir), ("inv_im", ii)):
            self.register_buffer(name, t)

    def forward(self, x: Tensor, prev: Tensor, fdl_re: Tensor, fdl_im: Tensor) -> tuple[Tensor, list[Tensor]]:
        b, n = x.shape
        m = self.block
        f = n // m
        blocks = torch.cat([prev, x], dim=-1).view(b, f + 1, m)
        pairs = torch.cat([blocks[:, :-1], blocks[:, 1:]], dim=-1)  # (B, F, 2m)
        ext_re = torch.cat([fdl_re, pairs @ self.fwd_re], dim=1)  # (B, P - 1 + F, K)
        ext_im = torch.cat([fdl_im, pairs @ self.fwd_im], dim=1)
        p = self.p_re.shape[0]
        if f <= SUM_MAX_FRAMES:  # a product and a sum per block (cheap; grouped convolutions are slow on CPU)
            sums_re, sums_im = [], []
            for j in range(f):
                er, ei = ext_re[:, j: j + p], ext_im[:, j: j + p]
                sums_re.append((er * self.p_re - ei * self.p_im).sum(1))
                sums_im.append((er * self.p_im + ei * self.p_re).sum(1))
            acc_re, acc_im = torch.stack(sums_re, dim=1), torch.stack(sums_im, dim=1)  # (B, F, K)
        else:  # long buffers: the partition sums as a grouped conv1d over the delay line
            k = self.p_re.shape[1]
            w_re, w_im = self.p_re.T.unsqueeze(1), self.p_im.T.unsqueeze(1)  # (K, 1, P)
            er, ei = ext_re.transpose(1, 2), ext_im.transpose(1, 2)  # (B, K, P - 1 + F)
            acc_re = (F.conv1d(er, w_re, groups=k) - F.conv1d(ei, w_im, groups=k)).transpose(1, 2)
            acc_im = (F.conv1d(er, w_im, groups=k) + F.conv1d(ei, w_re, groups=k)).transpose(1, 2)
        y = acc_re @ self.inv_re + acc_im @ self.inv_im  # (B, F, m)
        return y.reshape(b, n), [x[:, -m:], ext_re[:, f:], ext_im[:, f:]]


class _Weights(nn.Module):
    """Decoder weights as stored (float32, int8 + per-row scales, or bfloat16), widened in the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def add(self, module: nn.Module, name: str = "weight") -> int:
        w, scale = stored_weights(module, name)
        i = self.n
        self.register_buffer(f"q{i}", w.detach().clone().contiguous())
        self.register_buffer(f"s{i}", None if scale is None else scale.detach().clone().float())
        self.n += 1
        return i

    def get(self, i: int) -> Tensor:
        w = getattr(self, f"q{i}")
        if w.dtype != torch.float32:
            w = w.to(torch.float32)
        s = getattr(self, f"s{i}")
        if s is not None:
            w = w * s.reshape(-1, *([1] * (w.dim() - 1)))
        return w


def _vec(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().to(torch.float32).clone()


class _DecoderMLPGRU(nn.Module):
    """The HpN/Wavetable decoder (MLPs, GRU, heads) on stored weights."""

    def __init__(self, dec: nn.Module, heads: list[str]) -> None:
        super().__init__()
        self.w = _Weights()
        self.mlps: list[list[tuple[int, str, str, str]]] = []
        self.vecs = nn.ParameterDict()  # biases and norms (frozen)
        for si, seq in enumerate((dec.f0_mlp, dec.loudness_mlp, dec.out_mlp)):
            mods = list(seq)
            layers = []
            for li in range(0, len(mods), 3):
                lin, ln, act = mods[li], mods[li + 1], mods[li + 2]
                if type(ln).__name__ != "LayerNorm" or type(act).__name__ != "LeakyReLU":
                    raise UserError(f"portable export: decoder MLP layer {si}.{li} is not Linear, LayerNorm, LeakyReLU")
                key = f"m{si}_{li}"
                self._vec(key + "_b", lin.bias)
                self._vec(key + "_g", ln.weight)
                self._vec(key + "_n", ln.bias)
                layers.append((self.w.add(lin), key, str(float(ln.eps)), str(float(act.negative_slope))))
            self.mlps.append(layers)
        gru = dec.gru
        self.g = int(gru.hidden_size)
        self.ih, self.hh = self.w.add(gru, "weight_ih_l0"), self.w.add(gru, "weight_hh_l0")
        self._vec("b_ih", gru.bias_ih_l0)
        self._vec("b_hh", gru.bias_hh_l0)
        self.heads = [(name, self.w.add(dec.heads[name])) for name in heads]
        for name in heads:
            self._vec("h_" + name, dec.heads[name].bias)

    def _vec(self, name: str, t: Tensor | None) -> None:
        if t is None:
            raise UserError(f"portable export: decoder layer without {name}")
        self.vecs[name] = nn.Parameter(_vec(t), requires_grad=False)  # type: ignore[arg-type]

    def _mlp(self, layers: list[tuple[int, str, str, str]], x: Tensor) -> Tensor:
        for wi, key, eps, slope in layers:
            x = F.linear(x, self.w.get(wi), self.vecs[key + "_b"])
            x = F.layer_norm(x, (x.shape[-1],), self.vecs[key + "_g"], self.vecs[key + "_n"], float(eps))
            x = F.leaky_relu(x, float(slope))
        return x

    def forward(self, f0s: Tensor, ls: Tensor, h: Tensor) -> tuple[list[Tensor], Tensor]:
        x = torch.cat([self._mlp(self.mlps[0], f0s), self._mlp(self.mlps[1], ls)], dim=-1)
        w_ih, w_hh = self.w.get(self.ih), self.w.get(self.hh)
        b_ih, b_hh = self.vecs["b_ih"], self.vecs["b_hh"]
        t = x.shape[1]
        if t <= UNROLL_MAX_FRAMES:  # the cell written out, frame by frame (the eager light path's maths)
            g = self.g
            gi = F.linear(x, w_ih, b_ih)
            hp = h[0]
            outs = []
            for i in range(t):
                gh = F.linear(hp, w_hh, b_hh)
                rz = torch.sigmoid(gi[:, i, : 2 * g] + gh[:, : 2 * g])
                n = torch.tanh(gi[:, i, 2 * g:] + rz[:, :g] * gh[:, 2 * g:])
                hp = n + rz[:, g:] * (hp - n)
                outs.append(hp)
            hidden, h_new = torch.stack(outs, dim=1), hp.unsqueeze(0)
        else:
            hidden, h_new = torch._VF.gru(x, h, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, False, False, True)  # type: ignore[attr-defined]
        y = self._mlp(self.mlps[2], torch.cat([hidden, f0s, ls], dim=-1))
        return [F.linear(y, self.w.get(wi), self.vecs["h_" + name]) for name, wi in self.heads], h_new


class _DecoderTCN(nn.Module):
    """The DDX7 TCN on stored weights; state: each block's two conv input histories."""

    def __init__(self, dec: nn.Module) -> None:
        super().__init__()
        self.w = _Weights()
        self.vecs = nn.ParameterDict()
        self.blocks: list[tuple[int, int, int, int, bool]] = []  # conv1, conv2, residual (-1: identity), dilation, last
        for bi, blk in enumerate(dec.blocks()):
            ids = []
            for ci, conv in enumerate((blk.conv1, blk.conv2, blk.residual)):
                if conv is None:
                    ids.append(-1)
                    continue
                ids.append(self.w.add(conv))
                self.vecs[f"b{bi}_{ci}"] = nn.Parameter(_vec(conv.bias), requires_grad=False)  # type: ignore[arg-type]
            self.blocks.append((ids[0], ids[1], ids[2], int(blk.dilation), bool(blk.last)))

    def _conv(self, wi: int, key: str, x: Tensor, dilation: int) -> Tensor:
        """A causal dilated conv of the last ``T - (k - 1) d`` frames of ``x`` as one matrix product over the taps
        (as the eager fast path: dilated ``conv1d`` is slow on CPU)."""
        w = self.w.get(wi)  # (O, I, k)
        k = w.shape[-1]
        t = x.shape[-1] - (k - 1) * dilation
        taps = [x[..., j * dilation: j * dilation + t] for j in range(k)]
        cols = torch.stack(taps, dim=-1).transpose(1, 2).reshape(x.shape[0], t, -1)  # (B, T, I k)
        return F.linear(cols, w.reshape(w.shape[0], -1), self.vecs[key]).transpose(1, 2)

    def forward(self, x: Tensor, hist: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        new_hist: list[Tensor] = []
        for bi, (c1, c2, res, d, last) in enumerate(self.blocks):
            ctx = 2 * d
            xin = torch.cat([hist[2 * bi], x], dim=-1)
            y = torch.relu(self._conv(c1, f"b{bi}_0", xin, d))
            yin = torch.cat([hist[2 * bi + 1], y], dim=-1)
            y = self._conv(c2, f"b{bi}_1", yin, d)
            if not last:
                y = torch.relu(y)
            x = y + (x if res < 0 else self._conv(res, f"b{bi}_2", x, 1))
            new_hist += [xin[..., -ctx:], yin[..., -ctx:]]
        return x, new_hist


class PortableStep(nn.Module):
    """One streaming buffer of a family model in portable ops (see the module docstring).

    Args:
        model: an HpN, Wavetable or DDX7 model (float32, or int8/bf16-stored decoder weights; pruned widths included).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        family = getattr(model, "family", None)
        renderer = traits_of(model).engine  # the synth the family declares (suite.traits): the one re-implemented here
        if family is None or renderer is None:
            raise UserError(f"portable export: {type(model).__name__} is not a family model with a declared synth "
                            "(an HpN, Wavetable or DDX7 model)")
        for name, mod in model.named_modules():
            if "quantized" in type(mod).__module__ or type(mod).__name__ == "OrtDecoder":
                raise UserError(f"portable export: layer {name} is a {type(mod).__module__}.{type(mod).__name__}; "
                                "export the float model or its int8/bf16 quantize candidate")
        self.family = str(family)
        self.renderer = renderer
        self.model_ref = [model]  # not a submodule: nothing of the eager model is traced
        self.block = int(model.block_size)
        self.sample_rate = int(model.sample_rate)
        model = model.eval()
        self.register_buffer("ramp", dsp.linear_ramp(self.block))
        self.reverb = _Reverb(model.reverb)
        with torch.no_grad():
            if self.renderer == "fm":
                self.decoder: nn.Module = _DecoderTCN(model.decoder)
                self.register_buffer("ratios", torch.tensor(model.patch.ratios, dtype=torch.float64))
                self.modulators, self.carriers = model.patch.modulators, model.patch.carriers
                self.n_hist = 2 * len(self.decoder.blocks)
            else:
                heads = ["amplitude", model.tonal_head, "noise_bands"]
                self.decoder = _DecoderMLPGRU(model.decoder, heads)
                self.register_buffer("ratios", torch.ones(1, dtype=torch.float64))
                n_bands = int(model.decoder.heads["noise_bands"].out_features)
                fir = dsp.bands_to_filter(torch.eye(n_bands, dtype=torch.float64), self.block)
                self.register_buffer("fir", fir.float())  # (n_bands, 64): bands @ fir = each frame's taps
                m = torch.arange(self.block)
                idx = m[:, None] - m[None, :] + self.block  # padded noise index of x[m + half - k]
                self.register_buffer("toeplitz_idx", idx.reshape(-1).contiguous())
                if self.renderer == "harmonic":
                    k = int(model.decoder.heads["harmonic_distribution"].out_features)
                    self.register_buffer("harmonics", torch.arange(1, k + 1, dtype=torch.float32))
                else:
                    self.register_buffer("tables", model.tables().detach().float().clone())
        self.state_names = self._state_names()

    # -- state -------------------------------------------------------------------------------------
    def _state_names(self) -> list[str]:
        rv = ["reverb_prev", "reverb_fdl_re", "reverb_fdl_im"]
        if self.renderer == "fm":
            return ["frame", *[f"tcn_{i // 2}_{i % 2}" for i in range(self.n_hist)], "phase", "prev", *rv]
        return ["frame", "noise_key", "gru", "phase", "f0_prev", *rv]

    def init_state(self, batch: int, seed: Any = 0) -> list[Tensor]:
        """The eager model's fresh state (``model.init_state(batch, seed)``) as this step's tensor list."""
        s = self.model_ref[0].init_state(batch, seed=seed)
        return self.flatten_state(s)

    def flatten_state(self, s: dict[str, Any]) -> list[Tensor]:
        """An eager state dict -> this step's tensor list (complex delay line split into real and imaginary)."""
        fdl = s["reverb"]["fdl"]
        rv = [s["reverb"]["prev"].float(), fdl.real.float().contiguous(), fdl.imag.float().contiguous()]
        frame = torch.as_tensor(s["frame"], dtype=torch.int64).reshape(())
        if self.renderer == "fm":
            hist = [h.float() for pair in s["tcn"] for h in pair]
            return [frame, *hist, s["phase"], s["prev"].float(), *rv]
        return [frame, s["noise_key"], s["gru"].float(), s["phase"], s["f0_prev"].float(), *rv]

    # -- one buffer -------------------------------------------------------------------------------
    def forward(self, f0_hz: Tensor, loudness_db: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        if self.renderer == "fm":
            return self._ddx7(f0_hz, loudness_db, state)
        return self._decoder_family(f0_hz, loudness_db, state)

    def _phase(self, f0_up: Tensor, phase0: Tensor) -> tuple[Tensor, Tensor]:
        inc = f0_up.unsqueeze(1).to(torch.float64) * (self.ratios * (dsp.TWO_PI / self.sample_rate)).view(1, -1, 1)
        acc = torch.cumsum(inc, dim=-1) + phase0.unsqueeze(-1)
        phase = acc - torch.floor(acc / dsp.TWO_PI) * dsp.TWO_PI
        return phase.to(f0_up.dtype), phase[..., -1]

    def _decoder_family(self, f0_hz: Tensor, loudness_db: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        frame, key, h, phase0, f0_prev, rv_prev, fdl_re, fdl_im = state
        b, t = f0_hz.shape
        f0s, ls = scaled_inputs(f0_hz, loudness_db)
        (amp, tonal_raw, bands_raw), h_new = self.decoder(f0s, ls, h)
        amp, tonal_c, bands = dsp.exp_sigmoid(amp), dsp.exp_sigmoid(tonal_raw), dsp.exp_sigmoid(bands_raw)
        f0 = f0_hz.unsqueeze(-1)
        prev = torch.where(frame == 0, f0[:, :1], f0_prev)
        f0_up, f0_last = dsp.upsample_linear_causal(f0, prev, self.block, self.ramp)
        phase, phase_end = self._phase(f0_up.reshape(b, -1), phase0)
        phase = phase[:, 0]
        if self.renderer == "harmonic":
            amps = dsp.harmonic_amplitudes(amp, tonal_c, f0, self.sample_rate, harmonics=self.harmonics)
            tonal = dsp.harmonic_bank(phase, amps, self.harmonics)
        else:
            weights = tonal_c * (amp / tonal_c.sum(-1, keepdim=True))
            tonal = self._wavetable(phase, weights)
        white = portable_uniform(key, frame, t, self.block)  # (B, T, 64)
        taps = bands @ self.fir  # (B, T, 64)
        padded = F.pad(white, (self.block // 2, self.block // 2))
        toe = torch.index_select(padded, 2, self.toeplitz_idx).view(b, t, self.block, self.block)
        noise = (toe @ taps.unsqueeze(-1)).reshape(b, t * self.block)
        audio, rv = self.reverb(tonal + noise, rv_prev, fdl_re, fdl_im)
        return audio, [frame + t, key, h_new, phase_end, f0_last, *rv]

    def _wavetable(self, phase: Tensor, weights: Tensor) -> Tensor:
        b, t, _ = weights.shape
        length = self.tables.shape[-1]
        mixed = weights @ self.tables  # (B, T, L)
        pos = (phase * (length / dsp.TWO_PI)).view(b, t, -1)
        i0f = torch.floor(pos)
        frac = pos - i0f
        i0 = torch.remainder(i0f.to(torch.int64), length)
        i1 = torch.remainder(i0 + 1, length)
        a = torch.gather(mixed, 2, i0)
        c = torch.gather(mixed, 2, i1)
        return (a + (c - a) * frac).reshape(b, -1)

    def _ddx7(self, f0_hz: Tensor, loudness_db: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        frame = state[0]
        hist = state[1: 1 + self.n_hist]
        phase0, prev_frame, rv_prev, fdl_re, fdl_im = state[1 + self.n_hist:]
        b, t = f0_hz.shape
        f0s, ls = scaled_inputs(f0_hz, loudness_db)
        x = torch.cat([f0s, ls], dim=-1).transpose(1, 2)
        raw, new_hist = self.decoder(x, list(hist))
        ol = MAX_OL * torch.sigmoid(raw.transpose(1, 2))
        frames = torch.cat([f0_hz.unsqueeze(-1), ol], dim=-1)
        prev = torch.where(frame == 0, frames[:, :1], prev_frame)
        up, last = dsp.upsample_linear_causal(frames, prev, self.block, self.ramp)
        phases, phase_end = self._phase(up[..., 0], phase0)
        fm = dsp.fm_synth(phases, up[..., 1:].transpose(1, 2), self.modulators, self.carriers)
        audio, rv = self.reverb(fm / MAX_OL, rv_prev, fdl_re, fdl_im)
        return audio, [frame + t, *new_hist, phase_end, last, *rv]
