"""Read a file that may come from someone else (a received run folder, a dataset) without hanging or
blowing up: only a regular file, checked after it is opened (``fstat``, so a swap after a check cannot
slip a FIFO or a device in), never more than a size cap."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotReadable(OSError):
    """Not a regular file, or larger than the cap; ``strerror`` says which, for one-line messages."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; else :class:`NotReadable`.

    Opened non-blocking, so a FIFO returns at once instead of waiting for a writer forever.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _kind(st.st_mode)
            raise NotReadable(errno.EINVAL, f"{kind}, not a regular file" if kind != "not a regular file" else kind,
                              str(path))
        if st.st_size > limit:
            raise NotReadable(errno.EFBIG, f"{st.st_size:,} bytes, over the {limit:,}-byte limit", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        parts: list[bytes] = []
        got = 0
        while got <= limit:  # the file may grow after fstat: never read past the cap
            block = os.read(fd, min(1 << 20, limit + 1 - got))
            if not block:
                break
            parts.append(block)
            got += len(block)
        if got > limit:
            raise NotReadable(errno.EFBIG, f"grew past the {limit:,}-byte limit while being read", str(path))
        return b"".join(parts)
    finally:
        os.close(fd)


def read_regular_text(path: str | os.PathLike[str], limit: int) -> str:
    """:func:`read_regular_file` decoded as UTF-8 (``UnicodeDecodeError`` if it is not)."""
    return read_regular_file(Path(path), limit).decode("utf-8")
