"""ruff, as pyproject.toml configures it, passes on the project: style, and the size limits of the engine
and the commands (C901, PLR0912, PLR0915 under bench/engine and bench/cli), so the default test run checks them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("bench", "methods", "reports", "tests", "scripts")


def _ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=300)


def test_ruff_passes_on_the_project() -> None:
    done = _ruff("check", "--output-format", "concise", *PATHS)
    assert done.returncode == 0, done.stdout + done.stderr


def _long_function(statements: int) -> str:
    body = "    x0 = 0\n" + "".join(f"    x{i} = x{i - 1} + 1\n" for i in range(1, statements))
    return f'"""A planted module."""\n\n\ndef f() -> int:\n{body}    return x{statements - 1}\n'


def test_the_size_limits_bind_the_engine_and_the_commands_only() -> None:
    """The check can fail: a 60-statement function is refused in bench/engine and bench/cli, allowed elsewhere."""
    code = _long_function(60)
    for where, refused in (("bench/engine/_planted.py", True), ("bench/cli/_planted.py", True),
                           ("methods/_planted.py", False)):
        done = _ruff("check", "--output-format", "concise", "--stdin-filename", where, "-", stdin=code)
        assert ("PLR0915" in done.stdout) == refused, (where, done.stdout + done.stderr)
    assert _ruff("check", "--stdin-filename", "bench/engine/_planted.py", "-", stdin=_long_function(40)).returncode == 0
