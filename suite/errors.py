"""Errors that the CLI turns into a one-line message and exit code 2, and the line it prints."""

from __future__ import annotations

import errno
import re

__all__ = ["UserError", "expected_error", "one_line_message", "printable"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class UserError(Exception):
    """A mistake in the user's input (bad path, bad audio, unknown name...).

    The CLI prints ``error: <message>`` on one line and exits with code 2; no traceback.
    Keep messages to one line and name the offending file or value.
    """


def printable(text: object) -> str:
    """``text`` with control characters escaped (ESC -> the four characters ``\\x1b``), so a name echoed back to the user
    (a registry name, a file name, a ``--set`` value) cannot move the cursor, clear the screen or recolour the
    terminal. Tabs and newlines stay."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], str(text))


def one_line_message(text: object, limit: int = 400) -> str:
    """The first non-empty line of ``text``, control characters escaped, cut to ``limit`` characters (what
    ``error: ...`` shows)."""
    for line in str(text).splitlines():
        if line.strip():
            line = printable(line.strip())
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def expected_error(exc: BaseException) -> str | None:
    """The one-line message of an exception that is the environment's fault, not a bug; None for a bug.

    File-system errors (missing or unreadable paths, a full disk, a read-only directory) and text
    files that are not UTF-8 are things the user can fix, so the CLI reports them like a
    :class:`UserError`. Anything else is a defect and keeps its traceback behind ``--debug``.
    """
    if isinstance(exc, UserError):
        return one_line_message(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, OSError):
        what = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or one_line_message(exc) or type(exc).__name__
        where = exc.filename if exc.filename is not None else ""
        if exc.filename2 is not None:
            where = f"{where} -> {exc.filename2}"
        return f"{where}: {what}" if where else str(what)
    return None
