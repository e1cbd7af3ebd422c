"""A compressor, a metric and a family added from this file alone, run through a sweep and a report (issue 23).

Nothing outside this file names them: the family declares its size keys and that the native engine cannot run it
(so a sweep asking for native speed times it eager, and its records say so), the compressor declares its tags (the
report takes it for a distillation arm and ``scratch`` for its baseline by their tags), the metric declares its
unit, direction, role and report column (the leaderboard shows it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import yaml
from torch import nn

from ddspbench.baselines._base import SizeSpec, register_sizes
from ddspbench.compressors import CompressContext, Compressor, clone_model
from ddspbench.suite.candidate import ParamSpec
from ddspbench.suite.cli import main
from ddspbench.suite.metrics.declare import Measured, Role, declare_metric, undeclare_metric
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.recipe import DISTILLATION
from ddspbench.suite.records import read_records
from ddspbench.suite.registry import COMPRESSORS, FAMILIES, SIZES
from ddspbench.suite.traits import FamilyTraits


class ToySine(nn.Module):
    """A sine whose amplitude a small MLP of width ``width`` predicts from f0 and loudness (a toy family)."""

    family: ClassVar[str] = "_toy_sine"
    traits: ClassVar[FamilyTraits] = FamilyTraits(size_keys=("width",), engine=None)
    control_names: ClassVar[tuple[str, ...]] = ("amplitude",)
    SIZE_SPECS: ClassVar[tuple[SizeSpec, ...]] = (SizeSpec("full", {"width": 16}, 0), SizeSpec("small", {"width": 4}, 0))

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.config = {"width": int(width)}
        self.size_name = {16: "full", 4: "small"}.get(int(width), "custom")
        self.decoder = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1))

    def init_state(self, batch_size: int, seed: Any = None) -> dict[str, Any]:
        return {"phase": torch.zeros(batch_size, 1)}

    def synth_controls(self, controls: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"amplitude": torch.sigmoid(controls["amplitude"])}

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, state: dict[str, Any] | None = None) -> dict[str, Any]:
        state = state if state is not None else self.init_state(f0_hz.shape[0])
        raw = self.decoder(torch.stack([f0_hz / 1000.0, loudness_db / 80.0 + 1.0], dim=-1))
        f0 = f0_hz.repeat_interleave(64, dim=-1)
        phase = state["phase"] + torch.cumsum(2 * torch.pi * f0 / 16000.0, dim=-1)
        audio = torch.sigmoid(raw[..., 0]).repeat_interleave(64, dim=-1) * 0.5 * torch.sin(phase)
        return {"audio": audio, "controls": {"amplitude": raw}, "state": {"phase": phase[:, -1:] % (2 * torch.pi)}}


class ToyCopy(Compressor):
    """A student that copies its teacher, scaled by ``gain`` (the toy's stand-in for a distillation method)."""

    name: ClassVar[str] = "toy_copy"
    tags: ClassVar[frozenset[str]] = frozenset({DISTILLATION})
    defaults: ClassVar[Mapping[str, Any]] = {"gain": 1.0}
    search_space: ClassVar[Mapping[str, ParamSpec]] = {"gain": ParamSpec(low=0.9, high=1.0)}

    def run(self, teacher: nn.Module, ctx: CompressContext, params: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        model = clone_model(ctx.candidate if ctx.candidate is not None else teacher)
        with torch.no_grad():
            model.decoder[-1].weight.mul_(float(params["gain"]))
        return model, {"copied": True, "compute": {"steps": 0, "examples": 0}}


def _level(ctx: Any) -> Measured:
    pred = ctx.pred()
    return Measured(float(abs(pred).mean()), "toy: mean absolute sample of the model's audio")


@pytest.fixture
def plugins() -> Iterator[None]:
    FAMILIES.register(ToySine.family, ToySine)
    register_sizes(ToySine)  # type: ignore[arg-type]
    COMPRESSORS.register(ToyCopy.name, obj=ToyCopy)
    declare_metric("toy_level", unit="1", role=Role.QUALITY, column=10, compute=_level,
                   description="mean absolute sample of the model's audio (a toy metric)")
    try:
        yield
    finally:
        undeclare_metric("toy_level")
        COMPRESSORS.unregister(ToyCopy.name)
        for size in ("full", "small"):
            SIZES.unregister(f"{ToySine.family}/{size}")
        FAMILIES.unregister(ToySine.family)


def test_a_toy_compressor_metric_and_family_run_through_a_sweep_and_a_report(plugins: None, tmp_path: Path) -> None:
    from ddspbench.reports import build_report

    tree = preset_tree("smoke")
    tree.update(study="toy", trials=2, sampler="random", objectives=["mss", "rtf_stream_64"])
    tree["data"] = {"dataset": "synthetic", "options": {"recordings": 2, "clips_per_recording": 1},
                    "frames": 40, "max_train": 2, "max_valid": 1, "max_test": 1}
    tree["teacher"] = {**tree["teacher"], "steps": 2, "size": "full", "widths": {}}
    tree["student"] = {**tree["student"], "steps": 2}
    tree["evaluation"] = {**tree["evaluation"], "metrics": ["mss", "toy_level", "stream", "params"],
                          "stream_buffers": [64], "n_audio_examples": 1, "speed_backend": "native"}
    tree["space"] = {**tree["space"], "families": ["_toy_sine"], "methods": ["scratch", "toy_copy"],
                     "sizes": {"_toy_sine": ["small"]}, "params": {}}
    cfg_path = tmp_path / "toy.yaml"
    cfg_path.write_text(yaml.safe_dump(tree))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(cfg_path), "--out", str(out), "--no-progress"]) == 0

    recs = list(read_records([out / "records.jsonl"]))
    assert all(r.status == "ok" for r in recs), [r.error for r in recs]
    by_method = {r.method: r for r in recs}
    assert set(by_method) == {"teacher", "scratch", "toy_copy"}
    copy_rec, scratch = by_method["toy_copy"], by_method["scratch"]
    assert copy_rec.tags == {DISTILLATION} and copy_rec.steps[0].details == {"copied": True}
    assert copy_rec.steps[0].compute == {"steps": 0, "examples": 0}  # per-step compute has its home
    assert scratch.size == "small" and scratch.recipe is not None and scratch.recipe.size == "small"
    assert scratch.steps[0].training is not None  # the student of the family's declared size key was trained
    for r in recs:
        assert r.metrics["toy_level"] is not None and r.units["toy_level"] == "1"
        assert "backend=eager (native asked: family _toy_sine declares no native engine support)" in \
            r.metric_defs["rtf_stream_64"]

    written = build_report([out], tmp_path / "rep", formats="md,csv,json")
    data = json.loads(written["json"].read_text())
    assert all("toy_level" in row["metrics"] for row in data["rows"])
    arm = [r for r in data["verdicts"] if r.get("kd_arm")]
    assert [r["method"] for r in arm] == ["toy_copy"]  # the distillation arm, by its tag
    assert {r["method"] for r in data["verdicts"] if r.get("vs_kd")} == {"scratch"}
    assert "toy_level" in written["csv"].read_text().splitlines()[0]
