"""Errors that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake in the user's input (bad path, bad audio, unknown name...).

    The CLI prints ``error: <message>`` on one line and exits with code 2; no traceback.
    Keep messages to one line and name the offending file or value.
    """
