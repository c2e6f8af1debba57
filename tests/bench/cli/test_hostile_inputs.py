"""Hostile and careless input to every command: one line naming the problem, exit 2, no traceback.

The table calls ``bench.cli.app.main`` in-process (fast); a few rows go through ``python -m bench.cli``
to check the real entry point. Each row is a case a user or an attacker tried (issue 20).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import exit_codes, main
from tests._helpers.report_synth import make_run
from tests._helpers.runner_helpers import make_folder

USAGE = exit_codes.USAGE


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    """{TMP}: a scratch folder; {LQ}: a folder of 2 images; {RUN}: a (synthetic) run folder;
    {JUNK}: a text file that is no YAML table, JSON or image."""
    tmp = tmp_path_factory.mktemp("hostile")
    ds = make_folder(tmp / "ds", 2)
    run = make_run(tmp / "synth", n_images=1, save_images=False, gains=False, profile=False)
    (tmp / "junk.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    return {"{TMP}": str(tmp), "{LQ}": str(ds / "lq"), "{RUN}": str(run), "{JUNK}": str(tmp / "junk.txt")}


def fill(argv: list[str], paths: dict[str, str]) -> list[str]:
    out = []
    for a in argv:
        for k, v in paths.items():
            a = a.replace(k, v)
        out.append(a)
    return out


def call(argv: list[str], capsys) -> tuple[int, str]:
    """Run one command in-process: (exit status, stderr); argparse's own exits count as their code."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


RUN = ["--out", "{TMP}/r", "--quiet", "--device", "cpu"]
#: (argv, exit status, words the one error line must hold)
CASES: list[tuple[list[str], int, str]] = [
    # run: settings are checked before any work
    (["run", "--workers", "-1", *RUN], USAGE, "--workers must be a whole number from 0 to 1024, got -1"),
    (["run", "--seed", "99999999999", *RUN], USAGE, "--seed must be a whole number from 0 to 4294967295"),
    (["run", "--seed", "-1", *RUN], USAGE, "--seed must be a whole number from 0"),
    (["run", "--limit", "-1", *RUN], USAGE, "--limit must be a whole number from 1"),
    (["run", "--batch-size", "0", *RUN], USAGE, "--batch-size must be a whole number from 1"),
    (["run", "--batch-size", "1e9", *RUN], USAGE, "invalid int value: '1e9'"),
    (["run", "--config", "{TMP}/nope.yaml"], USAGE, "cannot read the run config"),
    (["run", "--config", "{LQ}"], USAGE, "cannot read the run config"),
    (["run", "--datasets", "folder:{TMP}/nonexistent", *RUN], USAGE, "LQ folder not found"),
    (["run", "--device", "tpu", "--out", "{TMP}/r", "--quiet"], USAGE, "--device 'tpu': not a device"),
    (["run", "--suite", "nosuch", "--out", "{TMP}/r"], USAGE, "no built-in suite of that name"),
    (["run", "--weights", "classical={TMP}/nope.pth", *RUN], USAGE, "nope.pth does not exist"),
    (["run", "--weights", "classical={LQ}", *RUN], USAGE, "is not a file"),
    (["run", "--weights", "nopath", *RUN], USAGE, "expected METHOD=PATH"),
    (["run", "--methods", "clasical", *RUN], USAGE, "unknown method 'clasical'"),
    (["run", "--no-such-flag"], USAGE, "unrecognized arguments"),
    # report
    (["report", "{TMP}/nonexistent"], USAGE, "no such run folder"),
    (["report", "{LQ}"], USAGE, "summary.csv: missing"),
    (["report", "{JUNK}"], USAGE, "no such run folder"),
    (["report", "{RUN}", "--gallery-images", "-3"], USAGE, "--gallery-images -3: must be 0 or more"),
    (["report", "{RUN}", "--data-root", "{TMP}/nonexistent"], USAGE, "not a folder"),
    # compare
    (["compare", "{RUN}", "--against", "{TMP}/nope.yaml"], USAGE, "no built-in table of that name"),
    (["compare", "{RUN}", "--against", "{JUNK}"], USAGE, "a paper table is a mapping"),
    (["compare", "{TMP}/nonexistent", "--against", "codeformer-paper"], USAGE, "no such run folder"),
    (["compare", "{RUN}"], USAGE, "the following arguments are required: --against"),
    # fetch
    (["fetch", "nosuch"], USAGE, "unknown weights 'nosuch'"),
    (["fetch"], USAGE, "name the weights to fetch"),
    (["fetch", "--repin", "codeformer"], USAGE, "needs --force too"),
    (["fetch", "--retries", "0", "codeformer"], USAGE, "--retries 0: must be between 1 and 100"),
    # restore
    (["restore", "--method", "lq", "--input", "{TMP}/nonexistent", "--output", "{TMP}/o"], USAGE,
     "no such file or folder"),
    (["restore", "--method", "nosuch", "--input", "{LQ}", "--output", "{TMP}/o"], USAGE, "unknown method 'nosuch'"),
    (["restore", "--method", "lq", "--input", "{LQ}", "--output", "{JUNK}", "--aligned"], USAGE,
     "is a file, not a folder"),
    (["restore", "--method", "lq", "--input", "{LQ}", "--output", "{TMP}/o", "--batch-size", "0"], USAGE,
     "--batch-size 0: must be 1 or more"),
    (["restore", "--method", "lq", "--input", "{LQ}", "--output", "{TMP}/o", "--upscale", "9"], USAGE,
     "--upscale 9: must be between 1 and 8"),
    (["restore", "--method", "codeformer", "--input", "{LQ}", "--output", "{TMP}/o", "--fidelity", "nan"], USAGE,
     "--fidelity 'nan': expected a number between 0 and 1"),
    (["restore", "--method", "lq", "--input", "{LQ}", "--output", "{TMP}/o", "--param", "x"], USAGE,
     "--param 'x': expected KEY=VALUE"),
    # score-dataset
    (["score-dataset", "{TMP}/nonexistent", "--iqa", "brisque", "--out", "{TMP}/s.csv"], USAGE, "not a folder"),
    (["score-dataset", "{LQ}", "--iqa", "nosuch", "--out", "{TMP}/s.csv"], USAGE, "unknown metric 'nosuch'"),
    (["score-dataset", "{LQ}", "--iqa", "brisque", "--stats", "{JUNK}", "--out", "{TMP}/s.csv"], USAGE,
     "cannot read quality statistics"),
    (["score-dataset", "{LQ}", "--iqa", "brisque", "--out", "{TMP}"], USAGE, "is a folder; give the CSV file"),
    # synth
    (["synth", "--hq", "{TMP}/nonexistent", "--out", "{TMP}/syn"], USAGE, "not a folder"),
    (["synth", "--hq", "{LQ}", "--out", "{TMP}/syn", "--size", "-4"], USAGE, "--size -4: must be between 0 and 8192"),
    (["synth", "--hq", "{LQ}", "--out", "{TMP}/syn", "--workers", "0"], USAGE, "--workers 0: must be 1 or more"),
    # list
    (["list", "nosuch"], USAGE, "invalid choice: 'nosuch'"),
    # profile
    (["profile", "--methods", "nosuch", "--device", "cpu"], USAGE, "unknown method 'nosuch'"),
    (["profile", "--batch-sizes", "a,b", "--device", "cpu"], USAGE, "--batch-sizes expects comma-separated"),
    (["profile", "--size", "-1", "--device", "cpu", "--methods", "lq"], USAGE, "--size must be at least 1"),
    (["profile", "--iters", "0", "--device", "cpu", "--methods", "lq"], USAGE, "--iters must be at least 1"),
    (["profile", "--dataset", "{TMP}/nonexistent", "--device", "cpu", "--methods", "lq"], USAGE, "unknown dataset"),
    # table
    (["table", "{TMP}/nonexistent"], USAGE, "nonexistent"),
    (["table", "{RUN}", "--alpha", "2"], USAGE, "--alpha 2.0: must be between 0 and 1"),
    (["table", "{RUN}", "--bootstrap", "-1"], USAGE, "--bootstrap -1: must be 100 to 1000000"),
    # train
    (["train", "nosuch"], USAGE, "no such config file or shipped config name"),
    (["train", "tiny_stage1", "--set", "x"], USAGE, "--set 'x': use KEY=VALUE"),
    (["train", "tiny_stage1", "--set", "train.iters=abc", "--out", "{TMP}/tr"], USAGE, "unknown config key"),
    (["train", "tiny_stage2", "--out", "{TMP}/tr2"], USAGE, "run `bfrbench train tiny_stage1"),
    (["train", "tiny_stage1", "--from", "{TMP}/nonexistent", "--out", "{TMP}/tr3"], USAGE, "not a training run folder"),
]


@pytest.mark.parametrize("argv, code, words", CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_hostile_input_is_one_line_and_its_exit_code(argv, code, words, paths, capsys):
    rc, err = call(fill(argv, paths), capsys)
    assert rc == code, err
    assert words in err, err
    if not err.startswith("usage:"):  # argparse's own errors print the usage too
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err


def test_every_command_has_a_hostile_row():
    from bench.cli.app import _command_modules

    commands = {m.COMMAND for m in _command_modules()}
    assert commands <= {c[0][0] for c in CASES}, commands - {c[0][0] for c in CASES}


# ------------------------------------------------------------------ restore never overwrites its input (item 19)


@pytest.mark.parametrize("where", ["same", "inside", "symlink", "file-in-place"])
def test_restore_refuses_to_write_over_its_input(tmp_path, capsys, where):
    src = make_folder(tmp_path / "s", 2) / "lq"
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    inp, out = str(src), str(src)
    if where == "inside":
        out = str(src / "restored")
    elif where == "symlink":
        (tmp_path / "alias").symlink_to(src, target_is_directory=True)
        out = str(tmp_path / "alias")
    elif where == "file-in-place":
        inp = str(src / "img000.png")
    rc, err = call(["restore", "--method", "lq", "--input", inp, "--output", out, "--aligned", "--device", "cpu"],
                   capsys)
    assert rc == USAGE and "overwrite" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # nothing written, nothing touched


# ------------------------------------------------------------------ weights messages that lead somewhere (item 23)


def test_a_missing_user_weights_path_is_named_not_the_official_file(tmp_path, capsys):
    src = make_folder(tmp_path / "s", 1) / "lq"
    rc, err = call(["restore", "--method", "codeformer", "--weights", str(tmp_path / "mine.pth"), "--input", str(src),
                    "--output", str(tmp_path / "o"), "--aligned", "--device", "cpu"], capsys)
    assert rc == USAGE and f"{tmp_path / 'mine.pth'} (given for codeformer) does not exist" in err
    assert "expected size" not in err and "github.com" not in err and "download URL" not in err


def test_fetch_that_cannot_run_says_how_to_get_the_file_by_hand(tmp_path, capsys, monkeypatch):
    from bench import weights as W

    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path / "home"))
    rc, err = call(["fetch", "codeformer", "--offline"], capsys)
    assert rc == USAGE and len(err.strip().splitlines()) == 1
    assert "run `bfrbench fetch codeformer`" not in err  # the same command would fail the same way
    url = W.WEIGHTS["codeformer"].url
    assert f"download {url} by hand" in err and f"save it as {W.expected_path('codeformer')}" in err


def test_an_option_the_method_lacks_is_a_sentence(tmp_path, capsys):
    src = make_folder(tmp_path / "s", 1) / "lq"
    rc, err = call(["restore", "--method", "classical", "--input", str(src), "--output", str(tmp_path / "o"),
                    "--fidelity", "0.5"], capsys)
    assert rc == USAGE
    assert "method classical takes no --fidelity; the methods that take it: codeformer" in err
    assert "it is;" not in err and "leave --fidelity out" in err


# ------------------------------------------------------------------ the real entry point


def test_entry_point_prints_one_line_and_exits_2(tmp_path):
    src = make_folder(tmp_path / "s", 1) / "lq"
    argv = ["restore", "--method", "lq", "--input", str(src), "--output", str(src), "--aligned"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == USAGE, proc.stderr
    assert "Traceback" not in proc.stderr and "overwrite or mix" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
