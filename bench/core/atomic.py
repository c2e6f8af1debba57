"""Atomic file writes: write to a temporary file beside the target, fsync, then rename."""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def current_umask() -> int:
    """The process umask: from /proc where there is one (no change to the process), else set and put back."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", *, file_mode: int | None = None, **kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path``; on success rename it over ``path``.

    Nothing is left half-written: an exception (or a SIGKILL) leaves the old file intact, and an
    OSError without a file name (a full disk on write or fsync) is raised again naming ``path``. The
    file gets ``file_mode``, or by default what ``open()`` would give it (0666 less the umask),
    not the 0600 of a temporary file, so reports stay readable by others where the umask says so.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with contextlib.suppress(OSError):  # a file system without modes: keep what mkstemp gave
            os.fchmod(fd, file_mode if file_mode is not None else 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and not exc.filename:
            # a failed write or fsync (disk full, quota) names no file: name the one being written
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(target)) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by None, so the JSON is valid (null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalars
        return json_safe(obj.item())
    return obj


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """``obj`` as strict JSON (NaN and inf become null), written atomically."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")
