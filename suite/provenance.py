"""Where a number comes from: versions, commit, machine, threads, device."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["provenance", "cpu_model", "git_commit", "machine_fingerprint", "system_description"]


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model string (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The git commit of the ddspbench source tree (with ``-dirty`` if modified), or None."""
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine_fingerprint() -> str:
    """A short stable hash of what makes timings comparable: CPU model, core count, OS, arch."""
    key = "|".join([cpu_model(), str(os.cpu_count()), platform.system(), platform.machine()])
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def provenance(device: str = "cpu", threads: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Everything needed to say where a figure came from."""
    import torch

    from ddspbench.suite import __version__

    info: dict[str, Any] = {
        "ddspbench_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "machine": machine_fingerprint(),
        "hostname": platform.node(),
        "device": device,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "seed": seed,
        "time_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        # Timings taken on a busy machine are slower: the 1-minute load average when the record was made.
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip().rstrip("\x00") or None
    except OSError:
        return None


RUNTIME_PACKAGES: tuple[str, ...] = ("torch", "onnxruntime", "onnx", "numba", "numpy", "scipy")


def system_description() -> dict[str, Any]:
    """What an on-device timing depends on, in the spirit of MLPerf Tiny's system description: the CPU model,
    the board (``/proc/device-tree/model``, e.g. a Raspberry Pi), architecture, cores, the CPU frequency
    governor and limits of core 0, the OS, and the versions of the runtimes (None: not installed)."""
    from importlib import metadata

    cpufreq = "/sys/devices/system/cpu/cpu0/cpufreq/"
    runtimes: dict[str, str | None] = {}
    for name in RUNTIME_PACKAGES:
        try:
            runtimes[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            runtimes[name] = None

    def khz_to_mhz(text: str | None) -> float | None:
        return round(int(text) / 1000.0, 1) if text and text.isdigit() else None

    return {
        "cpu_model": cpu_model(),
        "board": _read("/proc/device-tree/model"),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "governor": _read(cpufreq + "scaling_governor"),
        "cpu_min_mhz": khz_to_mhz(_read(cpufreq + "scaling_min_freq")),
        "cpu_max_mhz": khz_to_mhz(_read(cpufreq + "scaling_max_freq")),
        "os": platform.platform(),
        "python": platform.python_version(),
        "runtimes": runtimes,
    }
