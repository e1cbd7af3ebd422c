"""DDX7: a TCN decoder driving a six-operator FM synthesizer with a fixed per-instrument patch.

Paper: Caspe, McPherson, Sandler, "DDX7: Differentiable FM Synthesis of Musical Instrument Sounds",
ISMIR 2022; sizes of Giudici et al., "Distilling DDSP", JAES 2025. REFERENCE §2: a causal TCN over
``[f0_scaled, loudness_scaled]``; blocks of two weight-normed causal Conv1d (k=3, dilation 2^i) with
ReLU + Dropout(0.5), no ReLU/Dropout after the last block's second conv, a 1x1 residual conv on the
first and last blocks (identity elsewhere). The last block outputs the 6 operator levels
``ol = 0.32 sigmoid(raw)``; f0 and ol are upsampled linearly; FM output / 0.32, then the reverb.
Full (5 blocks x 128): 415,764 parameters; reduced (3 x 64): 67,924.

``decoder.tcn`` holds every block but the last (the trunk), ``decoder.head`` the last block (trunk
width -> 6 levels): together they are the reference TCN, so the counts match exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ddspbench.baselines import dsp
from ddspbench.baselines._base import (
    DDSPFamily,
    ModelConfigError,
    Reverb,
    SizeSpec,
    first_or_carried,
    register_sizes,
    scaled_inputs,
    setting,
    synth_dtype,
)
from ddspbench.suite.registry import FAMILIES
from ddspbench.suite.traits import FamilyTraits

__all__ = ["DDX7", "PATCHES", "FMPatch", "MAX_OL"]

MAX_OL = 0.32
N_OPS = 6


class FMPatch:
    """A fixed FM algorithm: frequency ratios, who modulates whom (1-based operators, as in a DX7), carriers."""

    def __init__(self, ratios: tuple[float, ...], edges: tuple[tuple[int, int], ...], carriers: tuple[int, ...]) -> None:
        self.ratios = ratios
        mods: list[list[int]] = [[] for _ in range(N_OPS)]
        for src, dst in edges:  # src modulates dst
            if src <= dst:
                raise ValueError("a modulator must have a higher operator number than its target")
            mods[dst - 1].append(src - 1)
        self.modulators = tuple(tuple(m) for m in mods)
        self.carriers = tuple(c - 1 for c in carriers)


PATCHES: dict[str, FMPatch] = {
    # OP6->OP5, OP4->OP3, and OP5, OP3, OP2 modulate the carrier OP1.
    "flute": FMPatch((1, 1, 1, 2, 2, 1.5), ((6, 5), (4, 3), (5, 1), (3, 1), (2, 1)), (1,)),
    # OP6->OP5->OP4; OP4, OP3 and OP2 modulate the carrier OP1.
    "trumpet": FMPatch((1, 1, 1, 1, 3.2, 8.5), ((6, 5), (5, 4), (4, 1), (3, 1), (2, 1)), (1,)),
    # OP6->OP5->OP4->OP3 and OP2->OP1: two carriers.
    "violin": FMPatch((1, 1, 1, 1, 3, 14), ((6, 5), (5, 4), (4, 3), (2, 1)), (1, 3)),
    # OP3->OP2->OP1, OP6->OP4, OP6->OP5: three carriers.
    "piano": FMPatch((1, 1, 3, 1, 1.58, 1), ((3, 2), (2, 1), (6, 4), (6, 5)), (1, 4, 5)),
}


def _causal_conv(c_in: int, c_out: int, dilation: int) -> nn.Conv1d:
    return weight_norm(nn.Conv1d(c_in, c_out, kernel_size=3, dilation=dilation))


class TCNBlock(nn.Module):
    """conv1 -> ReLU -> Dropout -> conv2 [-> ReLU -> Dropout] + residual (1x1 conv when widths differ).

    Causal: the input is left-padded by the carried history ``2 * dilation`` frames of each conv.
    """

    def __init__(self, c_in: int, c_hidden: int, c_out: int, dilation: int, last: bool, dropout: float = 0.5) -> None:
        super().__init__()
        self.dilation = dilation
        self.last = last
        self.conv1 = _causal_conv(c_in, c_hidden, dilation)
        self.conv2 = _causal_conv(c_hidden, c_out, dilation)
        self.residual = nn.Conv1d(c_in, c_out, kernel_size=1) if c_in != c_out else None
        self.dropout = nn.Dropout(dropout)

    def init_history(self, batch: int, device: torch.device, dtype: torch.dtype) -> list[Tensor]:
        ctx = 2 * self.dilation
        return [torch.zeros(batch, self.conv1.in_channels, ctx, device=device, dtype=dtype),
                torch.zeros(batch, self.conv2.in_channels, ctx, device=device, dtype=dtype)]

    def _fast_weights(self) -> list[tuple[Tensor, Tensor]]:
        """``(W (O, I * 3), bias (O,))`` for conv1, conv2 and the residual (if any), weight norm applied.

        Cached until a parameter changes in place (optimiser step, ``load_state_dict``).
        """
        convs = [self.conv1, self.conv2] + ([self.residual] if self.residual is not None else [])
        key = tuple((p.data_ptr(), p._version) for c in convs for p in [*c.parameters(), *c.buffers()])
        if getattr(self, "_fast_key", None) != key:
            with torch.no_grad():
                self._fast = [(c.weight.detach().reshape(c.out_channels, -1).contiguous(), c.bias.detach().clone())
                              for c in convs]
            self._fast_key = key
        return self._fast

    def _fast_conv(self, wb: tuple[Tensor, Tensor], xin: Tensor, t: int) -> Tensor:
        """Causal dilated conv (k=3) of the last ``t`` frames of ``xin`` as one matrix product."""
        d = self.dilation
        if t == 1:
            return F.linear(xin[..., ::d].reshape(xin.shape[0], -1), wb[0], wb[1]).unsqueeze(-1)
        cols = xin.unfold(-1, 2 * d + 1, 1)[..., ::d]  # (B, I, T, 3)
        return F.linear(cols.transpose(1, 2).reshape(xin.shape[0], t, -1), wb[0], wb[1]).transpose(1, 2)

    def forward(self, x: Tensor, history: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """``x (B, C, T)`` and the two conv input histories -> output and the new histories.

        Without autograd in eval mode the convs run as cached matrix products (the same maths, far
        less per-call overhead on short buffers); otherwise through the Conv1d modules.
        """
        ctx = 2 * self.dilation
        t = x.shape[-1]
        xin = torch.cat([history[0], x], dim=-1)
        if not self.training and not torch.is_grad_enabled():
            wbs = self._fast_weights()
            y = torch.relu(self._fast_conv(wbs[0], xin, t))
            yin = torch.cat([history[1], y], dim=-1)
            y = self._fast_conv(wbs[1], yin, t)
            if not self.last:
                y = torch.relu(y)
            if self.residual is None:
                res = x
            elif t == 1:
                res = F.linear(x[..., 0], wbs[2][0], wbs[2][1]).unsqueeze(-1)
            else:
                res = F.linear(x.transpose(1, 2), wbs[2][0], wbs[2][1]).transpose(1, 2)
        else:
            y = self.dropout(torch.relu(self.conv1(xin)))
            yin = torch.cat([history[1], y], dim=-1)
            y = self.conv2(yin)
            if not self.last:
                y = self.dropout(torch.relu(y))
            res = x if self.residual is None else self.residual(x)
        return y + res, [xin[..., -ctx:], yin[..., -ctx:]]


class TCNDecoder(nn.Module):
    """The DDX7 TCN: ``tcn`` (blocks 0..n-2) and ``head`` (block n-1, producing the 6 levels)."""

    def __init__(self, channels: list[int], trunk: int) -> None:
        super().__init__()
        n = len(channels)
        blocks = []
        for i in range(n):
            c_in = 2 if i == 0 else trunk
            c_out = N_OPS if i == n - 1 else trunk
            blocks.append(TCNBlock(c_in, channels[i], c_out, dilation=2**i, last=i == n - 1))
        self.tcn = nn.ModuleList(blocks[:-1])
        self.head = blocks[-1]

    def blocks(self) -> list[TCNBlock]:
        return [*self.tcn, self.head]  # type: ignore[list-item]

    def forward(self, x: Tensor, history: list[list[Tensor]]) -> tuple[Tensor, Tensor, list[list[Tensor]]]:
        """``x (B, 2, T)`` -> raw levels ``(B, 6, T)``, trunk features ``(B, C, T)``, new histories."""
        new_hist = []
        h = x
        for block, hist in zip(self.tcn, history):
            h, nh = block(h, hist)
            new_hist.append(nh)
        out, nh = self.head(h, history[-1])
        new_hist.append(nh)
        return out, h, new_hist


@register_sizes
@FAMILIES.register("ddx7", description="DDX7 FM synth (causal TCN decoder, 6-operator fixed patch, reverb)")
class DDX7(DDSPFamily):
    """DDX7 FM synthesizer.

    Args:
        instrument: FM patch: ``flute``, ``trumpet``, ``violin`` or ``piano`` (default violin).
        hidden: channels of every block (128 full, 64 reduced) when ``channels`` is not given.
        n_blocks: TCN blocks (5 full, 3 reduced) when ``channels`` is not given.
        channels: per-block hidden width (conv1 outputs), one entry per block (a pruned TCN).
        trunk: width of the residual stream between blocks (default ``channels[0]``).
    """

    family: ClassVar[str] = "ddx7"
    traits: ClassVar[FamilyTraits] = FamilyTraits(size_keys=("hidden", "n_blocks", "channels", "trunk"), engine="fm")
    control_names: ClassVar[tuple[str, ...]] = ("ol",)
    SIZE_SPECS: ClassVar[tuple[SizeSpec, ...]] = (
        SizeSpec("full", {"hidden": 128, "n_blocks": 5}, 415_764,
                 note="5 blocks x 128 channels, violin patch (reference implementation: 415,764 params)"),
        SizeSpec("reduced", {"hidden": 64, "n_blocks": 3}, 67_924,
                 note="3 blocks x 64 channels, violin patch (reference implementation: 67,924 params)"),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        config = self._normalise(dict(kwargs))
        self.patch = PATCHES[config["instrument"]]
        self.decoder = TCNDecoder(config["channels"], config["trunk"])
        self.reverb = Reverb()
        self.register_buffer("_ratios", torch.tensor(self.patch.ratios, dtype=torch.float64), persistent=False)
        self.register_buffer("_ramp", dsp.linear_ramp(self.block_size), persistent=False)
        self._finish_init(config)

    @classmethod
    def _match_size(cls, config: Mapping[str, Any]) -> str:
        # The named sizes are defined for any instrument (violin is only the default).
        return super()._match_size({**config, "instrument": "violin"})

    @classmethod
    def _normalise(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        instrument = str(kwargs.pop("instrument", "violin"))
        if instrument not in PATCHES:
            raise ModelConfigError(f"DDX7: unknown instrument {instrument!r}; known: {', '.join(PATCHES)}")
        hidden = setting(kwargs.pop("hidden", 128), "hidden")
        n_blocks = setting(kwargs.pop("n_blocks", 5), "n_blocks")
        channels = kwargs.pop("channels", None)
        channels = [hidden] * n_blocks if channels is None else [setting(c, "channels") for c in channels]
        trunk = kwargs.pop("trunk", None)
        trunk = channels[0] if trunk is None else setting(trunk, "trunk")
        if kwargs:
            raise ModelConfigError(f"DDX7: unknown arguments {sorted(kwargs)}")
        if not channels or min(channels) < 1 or trunk < 1:
            raise ModelConfigError("DDX7: needs at least one block and positive widths")
        return {"instrument": instrument, "hidden": channels[0], "n_blocks": len(channels),
                "channels": channels, "trunk": trunk}

    def _current_config(self) -> dict[str, Any]:
        blocks = self.decoder.blocks()
        channels = [int(b.conv1.out_channels) for b in blocks]
        trunk = int(blocks[1].conv1.in_channels) if len(blocks) > 1 else channels[0]
        return {"instrument": self.config["instrument"], "hidden": channels[0], "n_blocks": len(channels),
                "channels": channels, "trunk": trunk}

    def init_state(self, batch_size: int, seed: int | Sequence[int] | None = None) -> dict[str, Any]:
        """A fresh streaming state (DDX7 has no noise; ``seed`` is accepted for a uniform interface).

        ``{"frame": int, "tcn": per block [conv1 history, conv2 history], "phase": (B, 6) float64,
        "prev": (B, 1, 7) previous [f0, ol...] frame, "reverb": Reverb state}``.
        """
        ref = self._ref()
        dev, dt = ref.device, ref.dtype
        sdt = synth_dtype(dt)
        return {
            "frame": 0,
            "tcn": [b.init_history(batch_size, dev, dt) for b in self.decoder.blocks()],
            "phase": torch.zeros(batch_size, N_OPS, device=dev, dtype=torch.float64),
            "prev": torch.zeros(batch_size, 1, 1 + N_OPS, device=dev, dtype=sdt),
            "reverb": self.reverb.init_state(batch_size, dev, sdt),
        }

    def synth_controls(self, controls: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Operator levels ``max_ol * sigmoid(raw)`` (in multiples of 2 pi)."""
        return {"ol": MAX_OL * torch.sigmoid(controls["ol"])}

    def fresh_controls(self, f0_hz: Tensor, loudness_db: Tensor) -> dict[str, Tensor]:
        """``forward(f0_hz, loudness_db)["controls"]`` from a fresh state, without the FM synth and the reverb
        (control distillation needs only these; the same operations, so the same values bit for bit)."""
        ref = self._ref()
        f0s, ls = scaled_inputs(f0_hz, loudness_db, ref.dtype)
        x = torch.cat([f0s, ls], dim=-1).transpose(1, 2)
        history = [blk.init_history(f0_hz.shape[0], ref.device, ref.dtype) for blk in self.decoder.blocks()]
        raw, _, _ = self.decoder(x, history)
        return {"ol": raw.transpose(1, 2)}

    def forward(self, f0_hz: Tensor, loudness_db: Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Frames ``(B, T)`` at 250 Hz -> ``{"audio": (B, 64 T), "controls": {"ol": (B, T, 6)}, "state", "hidden"}``."""
        b, t = f0_hz.shape
        if state is None:
            state = self.init_state(b)
        f0s, ls = scaled_inputs(f0_hz, loudness_db, self._ref().dtype)
        x = torch.cat([f0s, ls], dim=-1).transpose(1, 2)
        raw, trunk, hist = self.decoder(x, state["tcn"])
        raw = raw.transpose(1, 2)
        ol = self.synth_controls({"ol": raw})["ol"]
        ol = ol.to(synth_dtype(ol.dtype))
        frames = torch.cat([f0_hz.unsqueeze(-1).to(ol.dtype), ol], dim=-1)  # (B, T, 7)
        prev = first_or_carried(state["frame"], frames[:, :1], state["prev"])
        up, last = dsp.upsample_linear_causal(frames, prev, self.block_size, self._ramp)
        phases, phase_end = dsp.oscillator_phase(up[..., 0], state["phase"], self._ratios, self.sample_rate)
        fm = dsp.fm_synth(phases, up[..., 1:].transpose(1, 2), self.patch.modulators, self.patch.carriers)
        audio, reverb_state = self.reverb(fm / MAX_OL, state["reverb"])
        new_state = {"frame": state["frame"] + t, "tcn": hist, "phase": phase_end, "prev": last, "reverb": reverb_state}
        return {"audio": audio, "controls": {"ol": raw}, "state": new_state, "hidden": trunk.transpose(1, 2)}
