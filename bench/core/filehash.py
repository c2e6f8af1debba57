"""Content hashes of files: what decides whether a finished result still belongs to its inputs.

A file's identity is the SHA-256 of its bytes, never its size and modification time (a file
replaced by another of the same size and whole-second mtime is a different input). Digests are
cached by (device, inode, size, mtime_ns, ctime_ns): a file written again changes its ctime, which
no tool can set back, so a cached digest is never stale. The cache lives in the process and in
``$BFRBENCH_HOME/filehash.sqlite3`` (so a 3000-image set is hashed once, not on every run); a cache
that cannot be opened or written is skipped, never an error.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import threading
from pathlib import Path

#: (device, inode, size, mtime_ns, ctime_ns) -> hex digest; small (one entry per file seen)
_CACHE: dict[tuple[int, int, int, int, int], str] = {}
#: the on-disk cache file under the bfrbench home
STORE_NAME = "filehash.sqlite3"
_store: tuple[int, str, sqlite3.Connection | None] | None = None  # (pid, path, connection) of this process
_LOCK = threading.Lock()  # one connection serves every thread of the process


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def store_path() -> Path:
    """``$BFRBENCH_HOME/filehash.sqlite3`` (else the platform cache folder)."""
    home = os.environ.get("BFRBENCH_HOME")
    if home:
        return Path(home).expanduser() / STORE_NAME
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("bfrbench")) / STORE_NAME
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "bfrbench" / STORE_NAME


def _connection() -> sqlite3.Connection | None:
    """This process's connection to the on-disk cache (reopened after a fork or a new home); None if unusable."""
    with _LOCK:
        return _open(str(store_path()))


def _open(path: str) -> sqlite3.Connection | None:
    global _store
    if _store is not None and _store[0] == os.getpid() and _store[1] == path:
        return _store[2]
    conn = None
    with contextlib.suppress(OSError, sqlite3.Error):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not os.path.islink(path):
            conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")  # a lost entry is only hashed again
            conn.execute("CREATE TABLE IF NOT EXISTS digests (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
    _store = (os.getpid(), path, conn)
    return conn


def _stored(key: tuple[int, int, int, int, int]) -> str | None:
    conn = _connection()
    if conn is None:
        return None
    with _LOCK, contextlib.suppress(sqlite3.Error):
        row = conn.execute("SELECT sha256 FROM digests WHERE key = ?", (":".join(map(str, key)),)).fetchone()
        if row and isinstance(row[0], str) and len(row[0]) == 64:
            return row[0]
    return None


def _store_digest(key: tuple[int, int, int, int, int], digest: str) -> None:
    conn = _connection()
    if conn is not None:
        with _LOCK, contextlib.suppress(sqlite3.Error):
            conn.execute("INSERT OR REPLACE INTO digests VALUES (?, ?)", (":".join(map(str, key)), digest))


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
        digest = _stored(key)
        if digest is not None:
            _CACHE[key] = digest
            return digest
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    after = os.stat(path)
    if _key(after) == key:  # unchanged while it was read: safe to remember
        _CACHE[key] = digest
        _store_digest(key, digest)
    return digest


def file_identity(path: str | os.PathLike[str]) -> str:
    """``file_digest(path)``, or ``"unreadable: REASON"`` for a missing, dangling or unreadable file.

    Fingerprints use this: an unreadable file is a bad image of the run, not a lost run.
    """
    try:
        return file_digest(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"


def files_digest(files: dict[str, str]) -> str:
    """One SHA-256 for a ``{relative name: sha256}`` table: its sorted ``"name  sha256"`` lines.

    The same files give the same digest in any order and under any folder.
    """
    text = "".join(f"{k}  {files[k]}\n" for k in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()

