"""How the C heap of this process treats freed memory while a CPU engine works (glibc ``mallopt``).

A network on a CPU allocates and frees tensors of tens of MB per layer (CodeFormer at 512: 64 MB
activations). glibc hands blocks over 32 MB (its largest dynamic threshold) straight back to the
system and takes them again with ``mmap``, so every such tensor costs a page fault per 4 KiB page
on first touch, and the kernel zeroes each page: on 2 cores the stand-in CodeFormer took 1.6-1.7
million page faults and 3.2-4.2 s of system time per face this way, and 57-196 thousand faults and
0.1-0.5 s with :func:`keep_freed_memory` (``scripts/heap_faults.py``, two runs on 2026-12-07, the
shared 2-core machine at a load of 6-12; user time, 8.5-13.3 s, moved with the load more than with
the setting). Keeping freed blocks
in the heap for reuse changes where tensors live, never what is computed: results are identical.
Elsewhere (not glibc) these are no-ops.
"""
from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

#: glibc's ``mallopt`` parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the heap (reused), larger ones from ``mmap``; freed heap memory goes back
#: to the system only past TRIM_THRESHOLD
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 512 << 20
#: the highest values glibc's own dynamic thresholds reach on 64-bit (mmap 32 MB, trim twice that): a process that
#: never set them runs with these or lower ones (more faults), so timing a script's way with them favours the script
GLIBC_DEFAULTS = (32 << 20, 64 << 20)

_state: dict[str, Any] = {"active": False}


def _libc() -> Any:
    """This process's C library if it has glibc's ``mallopt`` and ``malloc_trim``, else None."""
    if "libc" not in _state:
        try:
            lib = ctypes.CDLL(None)
            _state["libc"] = lib if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") else None
        except OSError:  # pragma: no cover - no C library to open
            _state["libc"] = None
    return _state["libc"]


def _set(mmap_threshold: int, trim_threshold: int) -> bool:
    lib = _libc()
    if lib is None:
        return False
    return bool(lib.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(lib.mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def keep_freed_memory() -> bool:
    """Freed blocks up to 256 MB stay in this process's heap for the next tensor (no ``mmap``, page faults and
    zeroing per tensor); True where applied. Process-wide; the memory a run peaked at stays with the process."""
    _state["active"] = _set(MMAP_THRESHOLD, TRIM_THRESHOLD)
    return _state["active"]


def active() -> bool:
    """Whether :func:`keep_freed_memory` is in force."""
    return bool(_state["active"])


@contextlib.contextmanager
def glibc_defaults() -> Iterator[None]:
    """glibc's own thresholds inside the block (as a script that never set them runs), the heap trimmed first;
    :func:`keep_freed_memory` again after it if it was in force. ``profile --e2e`` times the official loop so."""
    was = active()
    if _set(*GLIBC_DEFAULTS):
        _libc().malloc_trim(0)
        _state["active"] = False
    try:
        yield
    finally:
        if was:
            keep_freed_memory()
