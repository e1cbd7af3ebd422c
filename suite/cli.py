"""The ``ddspbench`` command line (also ``python -m suite``).

Every sub-command is one module in :mod:`suite.commands` with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are discovered, so adding a command
is adding a file. Heavy imports (torch, optuna...) happen inside ``run``, never at import.

Exit codes: 0 success, 1 a run that failed for a reason other than user input, 2 bad input
(one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from suite import __version__
from suite.errors import UserError

__all__ = ["main", "build_parser", "command_modules"]


def command_modules() -> dict[str, ModuleType]:
    """Sub-command name -> module, for every module in ``suite.commands``."""
    import suite.commands as pkg

    mods: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"suite.commands.{info.name}")
        mods[getattr(mod, "NAME", info.name)] = mod
    return mods


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors are user mistakes: one line, exit 2.
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ddspbench", description="Benchmark and compress DDSP neural audio synthesizers.")
    parser.add_argument("--version", action="version", version=f"ddspbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, mod in command_modules().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
