"""The project's one inter-process lock: the ``filelock`` package's ``FileLock``, naming its holder.

``filelock`` locks the file with the OS's own lock (``flock`` on POSIX, ``LockFileEx`` on Windows),
which the kernel drops when the holder exits, SIGKILL included, so a crash never leaves a stale
lock. The holder writes its pid into the file once it holds it, so a waiting process can say
which process it waits for. The lock file is kept on release (no unlink race between processes);
a symlink at its name is never followed.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class LockBusy(RuntimeError):
    """Another process holds the lock."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path, self.holder = path, holder
        super().__init__(f"{path} is locked by {holder}")


def _write_pid(fd: int) -> None:
    """``on_acquired``: the holder's pid into the lock file (best effort: the lock holds without it)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)


def _holder(path: Path) -> str:
    """``pid N`` from the lock file, or ``another process`` when it names none."""
    with contextlib.suppress(OSError, ValueError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            pid = os.read(fd, 32).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        if pid.isdigit():
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
    import filelock

    p = Path(path)
    if p.is_symlink():
        p.unlink()  # a symlink planted at the lock's name: remove the link, never touch its target
    lock = filelock.FileLock(p, mode=mode, thread_local=False, preserve_lock_file=True, on_acquired=_write_pid)
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        holder = _holder(p)
        if not wait:
            raise LockBusy(p, holder) from None
        if on_wait is not None:
            on_wait(holder)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
