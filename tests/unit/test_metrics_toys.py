"""Small stand-in models with the family interface (docs/CONTRACTS.md), for the metric tests.

They are not registered at import (other tests iterate over the family registry): the fixture
``toy_families`` registers them for one test and removes them afterwards, and the memory child
process registers them through ``--plugin tests.unit.test_metrics_toys``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from ddspbench.suite.registry import FAMILIES


class _ToyBase(nn.Module):
    family: ClassVar[str] = "_toy"
    control_names: ClassVar[tuple[str, ...]] = ("amplitude",)

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.config = dict(config)
        self.size_name = "custom"

    def init_state(self, batch_size: int, seed: int | None = None) -> dict[str, Any]:
        return {"calls": 0, "phase": torch.zeros(batch_size, 1)}

    def _synth(self, f0_hz: torch.Tensor, amp: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        f0 = f0_hz.repeat_interleave(64, dim=-1)
        phase = state["phase"] + torch.cumsum(2 * torch.pi * f0 / 16000.0, dim=-1)
        audio = amp.repeat_interleave(64, dim=-1) * torch.sin(phase)
        return audio, {"calls": state["calls"] + 1, "phase": phase[:, -1:] % (2 * torch.pi)}


class ToyLinear(_ToyBase):
    """A decoder of three Linear layers of width ``width`` driving a sine (params grow ~ width^2)."""

    family: ClassVar[str] = "_toy_linear"

    def __init__(self, width: int = 32) -> None:
        super().__init__(width=width)
        self.decoder = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        state = state if state is not None else self.init_state(f0_hz.shape[0])
        x = torch.stack([f0_hz / 1000.0, loudness_db / 80.0 + 1.0], dim=-1)
        raw = self.decoder(x)
        audio, new_state = self._synth(f0_hz, torch.sigmoid(raw[..., 0]) * 0.5, state)
        return {"audio": audio, "controls": {"amplitude": raw}, "state": new_state}


class ToySleep(_ToyBase):
    """Sleeps ``ms_per_frame`` milliseconds per input frame, then outputs silence."""

    family: ClassVar[str] = "_toy_sleep"

    def __init__(self, ms_per_frame: float = 0.5) -> None:
        super().__init__(ms_per_frame=ms_per_frame)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        state = state if state is not None else self.init_state(f0_hz.shape[0])
        time.sleep(self.config["ms_per_frame"] * f0_hz.shape[-1] / 1000.0)
        audio = torch.zeros(f0_hz.shape[0], f0_hz.shape[-1] * 64)
        return {"audio": audio, "controls": {"amplitude": f0_hz[..., None]}, "state": {**state, "calls": state["calls"] + 1}}


class ToyNaN(ToyLinear):
    """Like :class:`ToyLinear` but its audio is NaN."""

    family: ClassVar[str] = "_toy_nan"

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        out = super().forward(f0_hz, loudness_db, state)
        out["audio"] = out["audio"] * float("nan")
        return out


class ToyBigActivation(ToyLinear):
    """Like :class:`ToyLinear` plus a temporary activation of ``act_mb`` MB during each forward."""

    family: ClassVar[str] = "_toy_bigact"

    def __init__(self, act_mb: float = 1.0, width: int = 8) -> None:
        super().__init__(width=width)
        self.config = {"act_mb": act_mb, "width": width}

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        n = int(self.config["act_mb"] * 1024 * 1024 / 4)
        big = torch.ones(n) * 2.0  # touched, so it is resident
        out = super().forward(f0_hz, loudness_db, state)
        out["audio"] = out["audio"] + (big[:1] - 2.0)
        del big
        return out


TOYS: tuple[type[_ToyBase], ...] = (ToyLinear, ToySleep, ToyNaN, ToyBigActivation)


@pytest.fixture
def toy_families() -> Iterator[None]:
    """Register the toy families for one test (so checkpoints of them load), then remove them."""
    added = []
    for cls in TOYS:
        if cls.family not in FAMILIES:
            FAMILIES.register(cls.family, cls)
            added.append(cls.family)
    try:
        yield
    finally:
        for name in added:
            FAMILIES._entries.pop(name, None)


def test_toys_follow_the_streaming_contract() -> None:
    model = ToyLinear(width=8).eval()
    f0 = torch.full((2, 20), 220.0)
    loud = torch.full((2, 20), -20.0)
    whole = model(f0, loud)["audio"]
    state = model.init_state(2)
    parts = []
    for i in range(0, 20, 5):
        out = model(f0[:, i : i + 5], loud[:, i : i + 5], state)
        parts.append(out["audio"])
        state = out["state"]
    assert torch.allclose(torch.cat(parts, dim=-1), whole, atol=1e-4)
    assert state["calls"] == 4
