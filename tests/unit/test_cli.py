"""The console script and ``python -m ddspbench`` start, and user mistakes give one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ddspbench.suite.checkpoint import load_checkpoint
from ddspbench.suite.errors import UserError

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("cmd", [[str(BIN / "ddspbench")], [sys.executable, "-m", "ddspbench"]])
def test_entry_points_start(cmd):
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for sub in ["list"]:
        assert sub in out.stdout


def test_unknown_subcommand_exit_2():
    out = subprocess.run([sys.executable, "-m", "ddspbench", "nosuchcommand"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_checkpoint_missing_and_corrupt(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError, match="not a loadable checkpoint"):
        load_checkpoint(bad)
    bad.write_bytes(b"garbage\n")  # an opcode torch's weights-only unpickler refuses
    with pytest.raises(UserError, match="not a loadable checkpoint") as info:
        load_checkpoint(bad)
    # torch's wording would advise weights_only=False (running the file's code); the one line must not
    assert "weights-only loading refused it" in str(info.value) and "False" not in str(info.value)
