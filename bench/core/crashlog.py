"""Where an unexpected error's traceback goes: a log file, so the user sees one line naming it.

The CLI (:mod:`bench.cli.app`) calls :func:`write_crash_log`; a command that has a run folder
announces it with :func:`note_run_folder` so the log lands beside the results, else the log goes to
``$BFRBENCH_HOME/logs`` (or the platform cache), else the temporary folder.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

_run_folder: Path | None = None


def note_run_folder(path: str | os.PathLike[str] | None) -> None:
    """The run folder of the command now running (``None`` forgets it): crash logs go there."""
    global _run_folder
    _run_folder = Path(path) if path is not None else None


def log_folders() -> list[Path]:
    """Where a crash log may go, best first: the run folder (if it exists), the cache, the temp folder."""
    folders = [_run_folder] if _run_folder is not None and _run_folder.is_dir() else []
    home = os.environ.get("BFRBENCH_HOME")
    if home:
        folders.append(Path(home).expanduser() / "logs")
    else:
        try:
            import platformdirs

            folders.append(Path(platformdirs.user_cache_dir("bfrbench")) / "logs")
        except ImportError:  # pragma: no cover
            folders.append(Path.home() / ".cache" / "bfrbench" / "logs")
    folders.append(Path(tempfile.gettempdir()))
    return folders


def crash_text(exc: BaseException, argv: Sequence[str] | None) -> str:
    """The log's text: what was run, on what, and the full traceback."""
    from bench import __version__

    head = [f"bfrbench {__version__} crashed at {datetime.datetime.now(datetime.timezone.utc).isoformat()}",
            f"command: bfrbench {' '.join(argv if argv is not None else sys.argv[1:])}",
            f"python {platform.python_version()} on {platform.platform()}", ""]
    return "\n".join(head) + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def write_crash_log(exc: BaseException, argv: Sequence[str] | None = None) -> Path | None:
    """Write ``exc``'s traceback to a new private log file; its path, or ``None`` if no folder took it."""
    text = crash_text(exc, argv).encode("utf-8", "backslashreplace")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for folder in log_folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # a new private file (mode 0600, never a planted symlink): it holds paths and arguments
            fd, name = tempfile.mkstemp(prefix=f"bfrbench-error-{stamp}-", suffix=".log", dir=folder)
        except OSError:
            continue
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
            return Path(name)
        except OSError:  # e.g. the disk is full: try the next folder
            Path(name).unlink(missing_ok=True)
    return None
