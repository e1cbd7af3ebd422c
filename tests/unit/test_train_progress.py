"""Training inside a sweep shows as a nested row of the sweep's progress display."""

from __future__ import annotations

import io
from typing import Any

import pytest

import ddspbench.suite.train
from ddspbench.suite.sweep.progress import SweepDisplay
from ddspbench.suite.train import train
from tests.unit.test_train import _cfg, _model, make_clips

pytestmark = pytest.mark.usefixtures("one_thread")


class _Outer:
    """Records what training does to an outer rich Progress."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def add_task(self, description: str, **kw: Any) -> int:
        self.calls.append(("add", kw))
        return 7

    def update(self, task: int, **kw: Any) -> None:
        assert task == 7
        self.calls.append(("update", kw))

    def remove_task(self, task: int) -> None:
        self.calls.append(("remove", {"task": task}))


def test_training_adds_a_row_to_the_outer_progress_and_removes_it(monkeypatch):
    outer = _Outer()
    monkeypatch.setattr(ddspbench.suite.train, "NESTED_PROGRESS", outer)
    train(_model(), make_clips(), None, _cfg(steps=3), progress=False)  # a compressor's call: still shown
    kinds = [c[0] for c in outer.calls]
    assert kinds[0] == "add" and outer.calls[0][1]["total"] == 3 and outer.calls[0][1]["kind"].strip() == "train"
    assert kinds[-1] == "remove"
    steps = [c[1] for c in outer.calls if c[0] == "update" and c[1].get("advance")]
    assert len(steps) == 3 and all("loss " in s["description"] and s["description"] != "loss -  valid -" for s in steps)


def test_sweep_display_offers_its_progress_to_training_while_live():
    with SweepDisplay(["mss"], live=True, stream=io.StringIO()) as display:
        assert ddspbench.suite.train.NESTED_PROGRESS is display._progress is not None
        train(_model(), make_clips(), None, _cfg(steps=2), progress=False)
        assert len(display._progress.tasks) == 1  # the training row went away
    assert ddspbench.suite.train.NESTED_PROGRESS is None
    with SweepDisplay(["mss"], live=False, stream=io.StringIO()):
        assert ddspbench.suite.train.NESTED_PROGRESS is None
