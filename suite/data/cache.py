"""On-disk cache of computed features, keyed by a hash of the audio (or its source) and the settings.

Entries are ``.npz`` files of named arrays under ``<cache dir>/<namespace>/<hh>/<key>.npz``. The
default directory is ``$DDSPBENCH_CACHE`` or ``~/.cache/ddspbench``. Writes are atomic (temporary
file, then rename), so concurrent workers and interrupted runs never leave half an entry; a
corrupt entry is treated as a miss and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FeatureCache", "code_hash", "default_cache_dir", "hash_key"]

log = logging.getLogger("ddspbench.data")


def default_cache_dir() -> Path:
    """``$DDSPBENCH_CACHE`` if set, else ``~/.cache/ddspbench``."""
    env = os.environ.get("DDSPBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ddspbench"


def hash_key(*parts: bytes | str | dict[str, Any] | np.ndarray) -> str:
    """SHA-256 hex digest of byte strings, strings, JSON-able dicts (sorted keys) and arrays."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            data = np.ascontiguousarray(part)
            h.update(f"{data.dtype.str}{data.shape}".encode())
            h.update(data.tobytes())
        elif isinstance(part, dict):
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        elif isinstance(part, str):
            h.update(part.encode())
        else:
            h.update(part)
        h.update(b"\x00")
    return h.hexdigest()


def code_hash(*files: str | Path) -> str:
    """A short hash of source files, part of cache keys so that a change of the feature code
    (a tracker, the loudness, a generator) invalidates what it computed before."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


class FeatureCache:
    """Named-array entries on disk, with hit/miss counters.

    Args:
        root: cache directory (``None``: :func:`default_cache_dir`).
        namespace: a sub-directory per kind of entry (e.g. ``"folder"``).
        enabled: ``False`` computes everything and stores nothing.
    """

    def __init__(self, root: str | Path | None = None, namespace: str = "features", enabled: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.dir = self.root / namespace
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The entry ``key`` or ``None`` (absent or unreadable). Does not count."""
        if not self.enabled:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            log.warning("cache entry %s is unreadable; recomputing", path)
            return None

    def store(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Write the entry ``key`` atomically (no-op when disabled)."""
        if not self.enabled:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            np.savez(tmp, **arrays)  # type: ignore[arg-type]
            tmp.replace(path)
        except OSError as exc:  # a read-only or full cache must not stop the build
            log.warning("cannot write cache entry %s (%s)", path, exc)

    def get_or_compute(self, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The cached entry ``key``, or ``compute()`` stored under it; counts hits and misses."""
        found = self.load(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        arrays = compute()
        self.store(key, arrays)
        return arrays

    def summary(self) -> dict[str, Any]:
        """``{"dir", "hits", "misses", "enabled"}`` for the dataset's metadata and the CLI."""
        return {"dir": str(self.root), "hits": self.hits, "misses": self.misses, "enabled": self.enabled}
