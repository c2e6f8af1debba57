"""``bfrbench`` command line: one module per sub-command beside this file in :mod:`bench.cli`.

Each module defines ``COMMAND`` (its name), ``HELP`` (one line), ``add_arguments(parser)``
and ``main(args) -> int``; this file discovers them, so adding a command touches no other file.
A command module imports only the standard library and light bench modules at module level and in
``add_arguments``; its heavy code (torch, the engine, the methods) is imported inside ``main``, so
``--help``, ``--version`` and ``list`` answer without torch (tests/bench/cli/test_fast_cli.py).
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
    """Run one command; the one place errors are shown: never a traceback, always one line (README, "Exit status")."""
    from bench.cli import exit_codes

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):  # a bare `bfrbench`: the commands (`bfrbench run` runs the demo)
            parser.print_help()
            return 0
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except BfrBenchError as exc:  # user-facing errors: one line, message and fix
        print(f"bfrbench: error: {format_error(exc)}", file=sys.stderr)
        return exit_codes.USAGE
    except Exception as exc:  # noqa: BLE001 - anything else is ours: one line, the traceback in a log
        return _unexpected(exc, argv)
    finally:
        from bench.core.crashlog import note_run_folder

        note_run_folder(None)


def _unexpected(exc: BaseException, argv: Sequence[str] | None) -> int:
    """Log ``exc``'s traceback and say in one line what happened and where the log is."""
    import errno

    from bench.cli import exit_codes
    from bench.core.crashlog import write_crash_log

    try:
        log = write_crash_log(exc, argv)
    except Exception:  # noqa: BLE001 - the log is a courtesy; the one line must still come out
        log = None
    where = f"the traceback is in {log}" if log else "no log could be written"
    if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))):
        what = ("out of memory: try a smaller --batch-size, fewer --workers or fewer images"
                if isinstance(exc, MemoryError) else
                f"no space left on the device{f' writing {exc.filename}' if exc.filename else ''}: "
                "free some space or choose another --out or BFRBENCH_HOME")
        print(f"bfrbench: error: {what} ({where})", file=sys.stderr)
        return exit_codes.RESOURCES
    detail = " ".join(str(exc).split())[:200]
    print(f"bfrbench: internal error: {type(exc).__name__}{': ' + detail if detail else ''} ({where}; "
          "please report it with that file)", file=sys.stderr)
    return exit_codes.INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
