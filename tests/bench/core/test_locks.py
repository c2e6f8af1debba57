"""bench.core.locks on filelock: one holder, named by pid to the waiting process; a planted symlink is not followed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.locks import LockBusy, file_lock

REPO = Path(__file__).resolve().parents[3]
HOLD = """
import sys, time
sys.path.insert(0, {repo!r})
from bench.core.locks import file_lock
with file_lock({lock!r}):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_busy_lock_names_its_holder_and_frees_on_exit(tmp_path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=str(REPO), lock=str(lock))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=rf"is locked by pid {holder.pid}$"):
            with file_lock(lock, wait=False):
                pass
        seen: list[str] = []
        holder.stdin.write("\n")
        holder.stdin.flush()
        with file_lock(lock, on_wait=seen.append):  # waits for the release, then holds it
            assert lock.read_text() == str(os.getpid())
        assert seen in ([], [f"pid {holder.pid}"])
    finally:
        holder.kill()
        holder.wait(timeout=30)
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=str(REPO), lock=str(lock))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: the kernel drops the lock with the process
    holder.wait(timeout=30)
    with file_lock(lock, wait=False):
        pass


def test_a_symlink_at_the_lock_name_is_removed_not_followed(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    lock = tmp_path / ".lock"
    lock.symlink_to(target)
    with file_lock(lock):
        assert not lock.is_symlink()
    assert target.read_text() == "keep me"
