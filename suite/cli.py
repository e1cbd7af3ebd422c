"""The ``ddspbench`` command line (also ``python -m ddspbench``).

Every sub-command is one module in :mod:`suite.commands` with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are discovered, so adding a command
is adding a file. Heavy imports (torch, optuna...) happen inside ``run``, never at import.

Exit codes: 0 success, 1 a run that failed for a reason other than user input (or a bug: one line
naming it; ``--debug`` shows the traceback), 2 bad input (one line on stderr, no traceback),
130 interrupted. Bad input includes the file system's refusals (missing or unreadable paths, a full
disk, a read-only folder) and text files that are not UTF-8 (:func:`suite.errors.expected_error`).

Every sub-command takes ``--no-progress`` and ``--debug``; those that produce a result take ``--json``,
which prints exactly one JSON document on stdout (everything else the command says goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from ddspbench.suite import __version__
from ddspbench.suite.errors import UserError, expected_error, one_line_message

__all__ = ["main", "build_parser", "command_modules"]


def command_modules() -> dict[str, ModuleType]:
    """Sub-command name -> module, for every module in ``suite.commands``."""
    import ddspbench.suite.commands as pkg

    mods: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"ddspbench.suite.commands.{info.name}")
        mods[getattr(mod, "NAME", info.name)] = mod
    return mods


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors (and every option's declared bounds, see suite.bounds) are user mistakes:
        # one line in the form of every other bad input, exit 2.
        self.exit(2, f"error: {self.prog}: {one_line_message(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ddspbench", description="Benchmark and compress DDSP neural audio synthesizers.")
    parser.add_argument("--version", action="version", version=f"ddspbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, mod in command_modules().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        # The same two flags on every command (SUPPRESS: the top-level --debug is not overwritten).
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an unexpected failure")
        if "--no-progress" not in p._option_string_actions:
            p.add_argument("--no-progress", action="store_true",
                           help="no progress display (this command shows none; accepted everywhere)")
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2), --help or --version (0): an exit code like any other
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from ddspbench.suite.commands._options import json_to

    debug = bool(getattr(args, "debug", False))
    json_mode = bool(getattr(args, "json", False))
    real_stdout = sys.stdout
    try:
        # With --json, stdout carries the JSON document only: whatever else the command prints goes to stderr.
        with contextlib.ExitStack() as stack:
            if json_mode:
                stack.enter_context(json_to(real_stdout))
                stack.enter_context(contextlib.redirect_stdout(sys.stderr))
            return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the one boundary between the program and its user
        message = expected_error(exc)
        if message is not None and (isinstance(exc, UserError) or not debug):
            print(f"error: {message}", file=sys.stderr)
            return 2
        if debug:
            raise
        print(f"error: internal error ({type(exc).__name__}: {one_line_message(exc, 300)}); "
              "this is a bug: run again with --debug for the traceback and report it", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
