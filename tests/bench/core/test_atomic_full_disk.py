"""A full disk (ENOSPC) while writing a run's files: one line naming the file, nothing lost (issue 20, item 11)."""
from __future__ import annotations

import os

import pytest


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    """ENOSPC on write/fsync: an OSError naming the target, the old file intact, no temporary left (item 11)."""
    import errno

    from bench.core import atomic

    target = tmp_path / "summary.csv"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError) as err:
        atomic.atomic_write_text(target, "new")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]


def test_a_full_disk_during_a_run_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    import errno

    from bench.cli import main
    from bench.cli.exit_codes import RESOURCES
    from bench.core import atomic

    real = atomic.os.fsync

    out = tmp_path / "run"

    def full(fd):  # the run folder's manifest (the demo set, built on first use, writes one of its own)
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.startswith(str(out) + "/") and target.rsplit("/", 1)[-1].startswith(".manifest.json."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", full)
    code = main(["run", "--datasets", "demo", "--methods", "lq", "--metrics", "psnr", "--limit", "1",
                 "--device", "cpu", "--out", str(out), "--quiet", "--no-report", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == RESOURCES, err
    line = [ln for ln in err.splitlines() if "no space left" in ln]
    assert len(line) == 1 and str(out / "manifest.json") in line[0] and "Traceback" not in err
