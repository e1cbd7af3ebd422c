"""Option parsing shared by several sub-commands (not a command itself: the name starts with ``_``)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ddspbench.suite.errors import UserError

__all__ = ["parse_key_values", "check_out_dir", "print_json", "json_to", "results_dataset"]

_JSON_STREAM: list[IO[str]] = []


@contextlib.contextmanager
def json_to(stream: IO[str]) -> Iterator[None]:
    """Send :func:`print_json` output to ``stream`` (the CLI's real stdout while ``--json`` moves the rest to stderr)."""
    _JSON_STREAM.append(stream)
    try:
        yield
    finally:
        _JSON_STREAM.pop()


def print_json(obj: Any, *, indent: int | None = None) -> None:
    """Print ``obj`` as one JSON document (non-finite floats as null) on the command's JSON stream."""
    from ddspbench.suite.records import json_clean

    stream = _JSON_STREAM[-1] if _JSON_STREAM else sys.stdout
    stream.write(json.dumps(json_clean(obj), indent=indent, sort_keys=True, allow_nan=False) + "\n")
    stream.flush()


def check_out_dir(path: str | os.PathLike[str] | None, flag: str = "--out") -> Path | None:
    """Refuse an output folder that cannot be written, before any work is done.

    ``path`` may not exist yet; then its nearest existing parent must be a writable folder.

    Raises:
        UserError: ``path`` is an existing file, or it (or the parent it would be made in) is not a
            writable folder.
    """
    if path is None:
        return None
    p = Path(path)
    if str(path).strip() == "":
        raise UserError(f"{flag}: an empty path")
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p}: exists and is not a folder")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{flag} {p}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {p}: {probe} is not writable")
    return p


def parse_key_values(items: list[str], *, dotted: bool = False, dashes: bool = False) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> a dict; values are parsed as YAML (``64`` -> int, ``{gru: 32}`` -> dict).

    Args:
        items: the raw ``KEY=VALUE`` strings, in order (a later key wins).
        dotted: allow ``STEP.KEY`` keys (chain parameters such as ``prune.ratio``).
        dashes: accept ``-`` in keys as ``_`` (``min-confidence`` -> ``min_confidence``).

    Raises:
        UserError: an item without ``=``, a key that is not an identifier, an empty value, or a value that is
            not YAML.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if dashes:
            key = key.replace("-", "_")
        parts = key.split(".") if dotted else [key]
        if not sep or not all(part.isidentifier() for part in parts):
            raise UserError(f"--set {item!r}: expected KEY=VALUE" + (" or STEP.KEY=VALUE" if dotted else ""))
        if not raw.strip():  # an empty value would silently mean the default
            raise UserError(f"--set {item!r}: no value after '=' (write {key}=null for the default)")
        try:
            out[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: value is not valid YAML") from None
    return out


def results_dataset(results: str | os.PathLike[str] | None, dataset: str | None) -> Path | None:
    """The prepared dataset a sweep cached in ``RESULTS/cache/data/<dataset>-<hash>``, when there is exactly one."""
    if not results or not dataset:
        return None
    hits = sorted((Path(results) / "cache" / "data").glob(f"{dataset}-*/meta.json"))
    return hits[0].parent if len(hits) == 1 else None


