"""README's training, gains and report commands, run verbatim from an empty folder (tiny sizes, CPU).

The commands are read from the README block after ``<!-- verbatim: tests/test_readme_workflows.py -->``
so the README cannot drift from what works. The slow test runs them exactly; the quick one appends
``--set train.total_iter=2`` to each ``train`` line (the same chain, 2 iterations a stage).
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- verbatim: tests/test_readme_workflows.py -->"


def readme_commands() -> list[list[str]]:
    """The bfrbench command lines of README's verbatim block, continuation lines joined, comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == "bfrbench", line
            commands.append(argv[1:])
    return commands


@pytest.fixture
def empty_folder(tmp_path, monkeypatch, bfrbench_home):
    """An empty working directory; the demo set is built on first use under its ./datasets, as for a user."""
    monkeypatch.delenv("BFRBENCH_DATA", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _run_all(commands: list[list[str]], extra_train: list[str]) -> None:
    for argv in commands:
        argv = argv + extra_train if argv[0] == "train" else argv
        rc = main(argv)
        assert rc == 0, f"`bfrbench {shlex.join(argv)}` exited {rc}"


def _check_results(work: Path) -> None:
    for stage in ("tiny_stage1", "tiny_stage2", "tiny_stage3", "tiny_codeformer", "tiny_finetune"):
        assert (work / "runs/train" / stage / "config.yaml").is_file(), stage
    assert (work / "runs/train/tiny_finetune/embedding.pth").is_file()
    run = work / "runs/tiny_gains"
    summary = pd.read_csv(run / "summary.csv")
    scores = summary
    assert set(scores.method_name) == {"codeformer", "codeformer+iqp", "iqp-bfr"}
    assert set(scores.status) == {"ok"}, scores[scores.status != "ok"][["method", "metric", "reason"]]
    gains = pd.read_csv(run / "gains.csv")
    assert set(gains.metric) == {"psnr", "ssim"} and not gains.standin.any()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["methods"]["iqp-bfr"]["resize"] == "64 -> 512 bicubic"
    html = (run / "index.html").read_text(encoding="utf-8")
    assert "cannot read" not in html and "Conditioning gains" in html


def test_readme_block_holds_the_training_gains_and_report_commands():
    commands = readme_commands()
    verbs = [c[0] for c in commands]
    assert verbs[0] == "score-dataset" and verbs[-2:] == ["run", "report"]
    assert [c[1] for c in commands if c[0] == "train"][:3] == ["tiny_stage1", "tiny_stage2", "tiny_stage3"]


def test_readme_commands_with_two_iterations_a_stage(empty_folder):
    _run_all(readme_commands(), ["--set", "train.total_iter=2"])
    _check_results(empty_folder)


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_readme_commands_verbatim(empty_folder):
    _run_all(readme_commands(), [])
    _check_results(empty_folder)
    log = pd.read_csv(empty_folder / "runs/train/tiny_stage3/eval.csv")
    assert len(log) >= 2  # step 0 and later held-out evaluations
