"""The project's one inter-process lock: an exclusive POSIX ``flock`` on a file.

The kernel drops the lock when its holder exits, SIGKILL included, so a crash never leaves a
stale lock behind. The holder writes its pid into the file so a waiting process can name it.
A symlink planted at the lock's name is removed (never followed, its target never touched).
"""
from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class LockBusy(RuntimeError):
    """Another process holds the lock."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path, self.holder = path, holder
        super().__init__(f"{path} is locked by {holder}")


def _open(path: Path, mode: int) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        os.unlink(path)  # a symlink at the lock's name: remove the link, never touch its target
        return os.open(path, flags | os.O_EXCL, mode)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if pid:
            return f"pid {pid}"
    return "another process"


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike[str],
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
    mode: int = 0o644,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with ``mode``, less the umask) for the ``with`` block.

    When another process holds it: ``on_wait(holder)`` is called once, then this blocks until the
    lock is free (``wait=True``) or raises :class:`LockBusy` naming the holder (``wait=False``).
    The caller creates the parent folder (with the permissions it wants).
    """
    p = Path(path)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    fd = _open(p, mode)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise LockBusy(p, holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
