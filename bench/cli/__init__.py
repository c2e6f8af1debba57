"""The ``bfrbench`` command line: :mod:`bench.cli.app` (parser, dispatch) and one module per sub-command.

The console script ``bfrbench = "bench.cli:main"`` and ``python -m bench.cli`` both enter :func:`main`.
"""
from bench.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
