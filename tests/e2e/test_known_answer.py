"""Known-answer sweeps (issue 20): a real sweep whose right verdicts are known by construction must print them.

Three arms of HpN students on generated data, each trained with four seeds through the sweep's own pipeline:
``kd_audio``; ``twin``, the same compressor registered under a name that is not KD (same seeds, so the same runs:
the right answer is "equivalent within +-T"); and ``undertrained``, a scratch student given one training step
(the right answer is "KD better"). The compressors are registered from this file alone and the sweep runs
in-process, so they need no edit elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from ddspbench.compressors._distill import KDAudio, Scratch
from ddspbench.suite.cli import main
from ddspbench.suite.registry import COMPRESSORS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


class Twin(KDAudio):
    """KD on audio declared as not KD (reports tell arms apart by tags, not names): the same runs as ``kd_audio``."""

    name: ClassVar[str] = "twin"
    tags: ClassVar[frozenset[str]] = frozenset()


class Undertrained(Scratch):
    """A scratch student trained for one step: far worse than any trained student."""

    name: ClassVar[str] = "undertrained"

    def run(self, teacher: Any, ctx: Any, params: dict[str, Any]) -> Any:
        return super().run(teacher, ctx, {**params, "steps": 1})


@pytest.fixture()
def toy_compressors() -> Iterator[None]:
    for cls in (Twin, Undertrained):
        COMPRESSORS.register(cls.name, obj=cls, description=cls.__doc__ or "")
    try:
        yield
    finally:
        for cls in (Twin, Undertrained):
            COMPRESSORS.unregister(cls.name)


def _config(path: Path, data: Path) -> Path:
    tree: Mapping[str, Any] = {
        "preset": "smoke", "study": "known", "trials": 3, "repeats": 4, "threads": 1, "sampler": "tpe",
        "objectives": ["mss", "param_bytes"],
        "data": {"path": str(data), "frames": 64, "max_train": 24},
        "teacher": {"steps": 60, "batch_size": 4, "lr": 3e-3, "widths": {"hpn": {"hidden": 16}}},
        "student": {"steps": 60, "batch_size": 4, "lr": 3e-3},
        # kd_weight fixed: sampled, the twin would get another weight than kd_audio and not be the same arm
        "space": {"families": ["hpn"], "methods": ["kd_audio", "twin", "undertrained"], "sizes": ["hidden=8"],
                  "params": {m: {"kd_weight": {"choices": [0.5]}} for m in ("kd_audio", "twin")}},
        "evaluation": {"metrics": ["mss"], "stream_buffers": [64], "n_audio_examples": 0},
    }
    path.write_text(yaml.safe_dump(dict(tree)))
    return path


def test_a_sweep_with_known_answers_prints_them(tmp_path: Path, toy_compressors: None) -> None:
    from ddspbench.suite.data import prepare

    # 40 phrases of one timbre: 32 train, 4 valid, 4 test recordings (split by recording)
    data = prepare("synthetic", tmp_path / "data", seed=0, recordings=40, clips_per_recording=1,
                   timbres="brass-like", cache_dir=tmp_path / "fc")
    cfg = _config(tmp_path / "known.yaml", data)
    out = tmp_path / "res"
    assert main(["sweep", "--config", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    assert main(["report", "--results", str(out), "--out", str(out / "report"), "--format", "json,md"]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    rows = {r["method"]: r for r in report["verdicts"]}
    assert rows["kd_audio"]["kd_arm"] and rows["kd_audio"]["n_seeds"] == 4
    twin, under = rows["twin"], rows["undertrained"]
    assert (twin["n_kd"], twin["n_other"], twin["n_recordings"]) == (4, 4, 4)
    assert twin["diff"] == pytest.approx(0.0, abs=1e-9), "twin is kd_audio under another name: the same runs"
    assert twin["verdict"] == "equivalent within +-T", twin
    assert under["diff"] < 0 and under["verdict"] == "KD better", under
    md = (out / "report" / "report.md").read_text()
    head = md.split("## Verdict per family")[1].split("##")[0]
    assert "| equivalent within +-T |" in head and "| KD better |" in head
