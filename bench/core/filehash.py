"""Content hashes of files: what decides whether a finished result still belongs to its inputs.

A file's identity is the SHA-256 of its bytes, never its size and modification time (a file
replaced by another of the same size and whole-second mtime is a different input). Hashing is
cached for the life of the process by (device, inode, size, mtime_ns, ctime_ns): a file written
again changes its ctime, which no tool can set back, so a cached digest is never stale.
"""
from __future__ import annotations

import hashlib
import os
import stat

#: (device, inode, size, mtime_ns, ctime_ns) -> hex digest; small (one entry per file seen)
_CACHE: dict[tuple[int, int, int, int, int], str] = {}


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of the bytes of the regular file ``path``; raises OSError when it cannot be read.

    The file is opened without blocking and checked to be a regular file after opening, so a
    FIFO or device can never hang or stream forever.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{os.fspath(path)}: not a regular file")
        key = _key(st)
        if key in _CACHE:
            return _CACHE[key]
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    after = os.stat(path)
    if _key(after) == key:  # unchanged while it was read: safe to remember
        _CACHE[key] = digest
    return digest


def file_identity(path: str | os.PathLike[str]) -> str:
    """``file_digest(path)``, or ``"unreadable: REASON"`` for a missing, dangling or unreadable file.

    Fingerprints use this: an unreadable file is a bad image of the run, not a lost run.
    """
    try:
        return file_digest(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
