"""File identities are their bytes: a same-size, same-mtime replacement is seen; FIFOs never block."""
from __future__ import annotations

import hashlib
import os

import pytest

from bench.core.filehash import file_digest, file_identity


def test_digest_is_the_sha256_of_the_bytes_and_sees_a_same_size_same_mtime_replacement(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"first")
    assert file_digest(f) == hashlib.sha256(b"first").hexdigest()
    st = f.stat()
    f.write_bytes(b"other")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert file_digest(f) == hashlib.sha256(b"other").hexdigest()  # not the cached digest of "first"


def test_unreadable_files_are_named_not_raised(tmp_path):
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    os.mkfifo(tmp_path / "fifo.png")  # opening it for reading would block without a writer
    assert file_identity(tmp_path / "dangling.png").startswith("unreadable: ")
    assert file_identity(tmp_path / "loop.png").startswith("unreadable: ")
    assert "not a regular file" in file_identity(tmp_path / "fifo.png")
    with pytest.raises(OSError):
        file_digest(tmp_path / "dangling.png")

