"""``bfrbench`` command line: one module per sub-command beside this file in :mod:`bench.cli`.

Each module defines ``COMMAND`` (its name), ``HELP`` (one line), ``add_arguments(parser)``
and ``main(args) -> int``; this file discovers them, so adding a command touches no other file.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import bench.cli
from bench.core.errors import BfrBenchError, format_error


def _command_modules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(bench.cli.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"bench.cli.{info.name}")
        if hasattr(mod, "COMMAND"):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    from bench import __version__

    parser = argparse.ArgumentParser(
        prog="bfrbench", description="Benchmark and evaluation suite for blind face restoration."
    )
    parser.add_argument("--version", action="version", version=f"bfrbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.COMMAND, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        # no command: the demo suite, as README promises
        args = parser.parse_args(["run", *(argv or [])])
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BfrBenchError as exc:  # the one place user-facing errors are shown: one line, message and fix
        from bench.cli.exit_codes import USAGE

        print(f"bfrbench: error: {format_error(exc)}", file=sys.stderr)
        return USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
