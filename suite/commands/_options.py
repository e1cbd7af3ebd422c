"""Option parsing shared by several sub-commands (not a command itself: the name starts with ``_``)."""

from __future__ import annotations

from typing import Any

from suite.errors import UserError

__all__ = ["parse_key_values"]


def parse_key_values(items: list[str], *, dotted: bool = False, dashes: bool = False) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> a dict; values are parsed as YAML (``64`` -> int, ``{gru: 32}`` -> dict).

    Args:
        items: the raw ``KEY=VALUE`` strings, in order (a later key wins).
        dotted: allow ``STEP.KEY`` keys (chain parameters such as ``prune.ratio``).
        dashes: accept ``-`` in keys as ``_`` (``min-confidence`` -> ``min_confidence``).

    Raises:
        UserError: an item without ``=``, a key that is not an identifier, or a value that is not YAML.
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
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: value is not valid YAML") from None
    return out
