"""An instant command line: ``--help``, ``--version`` and ``list`` import no torch; ``list`` from data matches the registry."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import _listing, main

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import contextlib, io, json, sys
from bench.cli import main
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
heavy = sorted(m for m in ("torch", "torchvision", "methods", "bench.engine.runner", "bench.metrics", "pandas", "numpy",
                           "scipy", "cv2") if m in sys.modules)
print(json.dumps({"rc": rc, "heavy": heavy, "out": out.getvalue()}))
"""


def probe(*argv: str, cwd: Path = REPO) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["--version"], [], ["list"], ["list", "metrics", "--verbose"],
                                  ["run", "--help"], ["train", "--help"], ["synth", "--help"]])
def test_help_version_and_list_import_no_torch(argv):
    result = probe(*argv)
    # the datasets' availability reads image folders (bench.core.imageio: numpy, OpenCV); help needs neither
    allowed = {"numpy", "cv2"} if argv[:1] == ["list"] else set()
    assert result["rc"] == 0 and set(result["heavy"]) <= allowed, result
    assert result["out"].strip()


def test_bare_bfrbench_prints_help_not_the_demo(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: bfrbench") and "COMMAND" in out and "score-dataset" in out


def test_the_stored_listing_is_the_live_registry():
    """registry_listing.json is what `list` shows of the built-ins; regenerate with `python -m bench.cli._listing`."""
    live, stored = _listing.snapshot(), _listing.load()
    for kind in ("methods", "metrics"):
        a, b = ({r["name"]: r for r in rows[kind]} for rows in (live, stored))
        differ = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
        assert not differ, (f"bench/cli/registry_listing.json is stale for {kind} {differ}: "
                            "run `python -m bench.cli._listing` and commit it")
    assert _listing.LISTING.read_text(encoding="utf-8") == _listing.render(live)


def test_availability_from_data_agrees_with_the_live_checks():
    from bench.cli.list import row_availability
    from bench.core import plugins
    from bench.core.registry import METHODS, METRICS

    plugins.load_all()
    rows = _listing.load()
    assert [r["name"] for r in rows["metrics"]] == [e.name for e in METRICS if _listing.builtin(e)]
    assert [r["name"] for r in rows["methods"]] == [e.name for e in METHODS if _listing.builtin(e)]
    for r in rows["metrics"]:
        live_ok, live_why = METRICS.entry(r["name"]).meta["available"]()
        ok, why = row_availability(r, "metric")
        assert ok == bool(live_ok), (r["name"], why, live_why)


def test_list_shows_the_live_pyiqa_version_and_the_same_table(monkeypatch, capsys):
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda n: "9.9.9" if n == "pyiqa" else real(n))
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "pyiqa-9.9.9:musiq" in out and "{pyiqa_version}" not in out
    assert "lpips" in out and "lower" in out.split("\nlpips ", 1)[1].split("\n")[0]


def test_a_user_folder_shadowing_methods_is_named_in_one_line(tmp_path):
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    for argv in (["list"],):  # `run` and the others: test_a_namespace_folder_shadowing_is_detected
        proc = subprocess.run([sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and len(err.splitlines()) == 1, err
        assert f"the folder {tmp_path / 'methods'} shadows bfrbench's package 'methods'" in err, err


def test_a_namespace_folder_shadowing_is_detected(monkeypatch, tmp_path, capsys):
    """A folder without __init__.py (a namespace package) is what an editable install meets in the working folder."""
    import importlib.machinery
    import importlib.util

    from bench.core import plugins
    from bench.core.errors import UserError

    folder = tmp_path / "methods"
    folder.mkdir()
    real = importlib.util.find_spec

    def fake(name, *a, **k):
        if name == "methods":
            spec = importlib.machinery.ModuleSpec("methods", None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            return spec
        return real(name, *a, **k)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(UserError, match=f"the folder {folder} shadows bfrbench's package 'methods'"):
        plugins.check_shadowing()
    monkeypatch.setattr(plugins, "_LOADED", False)  # a fresh process: the registries not filled yet
    rc = main(["run", "--datasets", "demo", "--methods", "lq", "--limit", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "shadows bfrbench's package 'methods'" in err, err
    monkeypatch.setattr(importlib.util, "find_spec", real)
    plugins.check_shadowing()  # the real layout passes
