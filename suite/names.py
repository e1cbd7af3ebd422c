"""Names read from files are data: :func:`safe_name` makes one harmless path component of them."""

from __future__ import annotations

import re

__all__ = ["safe_name"]


def safe_name(name: object, fallback: str = "clip") -> str:
    """A single path component for a name read from a file (a clip or candidate id).

    Path separators and odd characters become ``_``, leading/trailing dots and dashes go (no ``..``,
    no option-like names), and the result is at most 120 characters, so the name can never leave
    the folder it is joined to.
    """
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._-")
    text = text[:120].strip("._-")
    return text or fallback
