"""The one place errors are shown: an unexpected error is one line naming a log with the traceback."""
from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest

import bench.cli.list as list_cmd
from bench.cli import exit_codes, main
from bench.core import crashlog


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _log_of(line: str) -> Path:
    m = re.search(r"the traceback is in (\S+?)[;)]", line)
    assert m, line
    return Path(m.group(1))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _raising(exc: BaseException):
    def boom(args):
        raise exc
    return boom


@pytest.mark.parametrize("exc", [ZeroDivisionError("division by zero"), RecursionError("maximum recursion depth"),
                                 KeyError("x"), ImportError("no module named foo")])
def test_unexpected_error_is_one_line_naming_a_log(monkeypatch, capsys, home, exc):
    monkeypatch.setattr(list_cmd, "main", _raising(exc))
    assert main(["list"]) == exit_codes.INTERNAL
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("bfrbench: internal error: " + type(exc).__name__)
    log = _log_of(line)
    assert log.parent == home / "logs"
    text = log.read_text()
    assert "Traceback" in text and type(exc).__name__ in text and "command: bfrbench list" in text
    assert log.stat().st_mode & 0o077 == 0  # private: it holds paths and arguments


@pytest.mark.parametrize("exc, words", [(MemoryError(), "out of memory"),
                                        (OSError(errno.ENOSPC, "No space left on device", "/x/summary.csv"),
                                         "no space left on the device writing /x/summary.csv")])
def test_out_of_memory_or_disk_is_one_line(monkeypatch, capsys, home, exc, words):
    monkeypatch.setattr(list_cmd, "main", _raising(exc))
    assert main(["list"]) == exit_codes.RESOURCES
    line = _one_line(capsys.readouterr().err)
    assert words in line and _log_of(line).is_file()


def test_no_writable_log_folder_still_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(crashlog, "log_folders", lambda: [tmp_path / "file" / "sub"])
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr(list_cmd, "main", _raising(ValueError("bad")))
    assert main(["list"]) == exit_codes.INTERNAL
    assert "no log could be written" in _one_line(capsys.readouterr().err)


def test_run_crash_log_goes_to_the_run_folder(monkeypatch, capsys, home, tmp_path):
    from bench.engine.runner import Runner

    def boom(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        raise AssertionError("engine bug")

    monkeypatch.setattr(Runner, "run", boom)
    out = tmp_path / "r"
    rc = main(["run", "--methods", "lq", "--metrics", "test-mae", "--out", str(out), "--device", "cpu", "--quiet"])
    assert rc == exit_codes.INTERNAL
    log = _log_of(_one_line(capsys.readouterr().err))
    assert log.parent == out and "engine bug" in log.read_text()
    assert crashlog._run_folder is None  # forgotten once the command ends


def test_user_error_and_argparse_keep_exit_2(capsys):
    assert main(["fetch"]) == exit_codes.USAGE
    _one_line(capsys.readouterr().err)
    assert main(["restore", "--method", "lq", "--input", ".", "--output", "o", "--batch-size", "abc"]) == 2
    assert "--batch-size 'abc': expected a whole number 1 or more" in _one_line(capsys.readouterr().err)
    with pytest.raises(SystemExit) as info:  # argparse's own usage errors keep its exit 2
        main(["run", "--no-such-flag"])
    assert info.value.code == exit_codes.USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_exit_codes_are_distinct_and_documented():
    codes = {k: v for k, v in vars(exit_codes).items() if k.isupper() and isinstance(v, int)}
    assert len(set(codes.values())) == len(codes)
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    for value in codes.values():
        assert re.search(rf"^\| {value} \|", readme, re.M), f"exit code {value} is not in README's table"
