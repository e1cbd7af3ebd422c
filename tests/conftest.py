"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def cut_smoke(trials: int, n_audio_examples: int = 1) -> dict:
    """The smoke preset cut to seconds for end-to-end tests (a sweep-file tree). ``max_test`` 4: the spread pick
    then includes clips that sound within their first 64 frames (clips 0, 2 and 4 start silent, and a model
    compared on silence scores MSS 0)."""
    return {
        "trials": trials,
        "data": {"frames": 64, "max_train": 6, "max_valid": 1, "max_test": 4},
        "teacher": {"steps": 6},
        "student": {"steps": 3},
        "space": {"params": {"prune": {"finetune_steps": {"choices": [0, 2]}}}},
        "evaluation": {"n_audio_examples": n_audio_examples},
    }
SHARED_REAL = REPO.parent / "shared" / "data" / "real"


def require_system(what: str, available: bool, how: str = "scripts/setup.sh installs it") -> None:
    """Skip when a system dependency is missing, except in CI (DDSPBENCH_REQUIRE_SYSTEM=1), where it fails (``how``:
    where it comes from, said in the failure)."""
    if available:
        return
    if os.environ.get("DDSPBENCH_REQUIRE_SYSTEM") == "1":
        pytest.fail(f"{what} is required in CI but missing ({how})")
    pytest.skip(f"{what} not available")


def have_binary(name: str) -> bool:
    return shutil.which(name) is not None


@pytest.fixture(scope="session")
def real_recordings() -> Path:
    """The four real reference recordings in ../shared/data/real (skip when absent)."""
    if not SHARED_REAL.is_dir() or not any(SHARED_REAL.glob("*.wav")):
        require_system(f"the folder of real reference recordings, {SHARED_REAL},", False,
                       "the workspace's shared/data/real, next to the checkout: clone beside ../shared")
    return SHARED_REAL


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch intra-op thread for a test module, restored afterwards (use via ``pytest.mark.usefixtures``)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
