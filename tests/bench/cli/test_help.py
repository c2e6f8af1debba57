"""Help texts match what each method takes (generated from the registry); errors are one line."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.cli import main

DOCS = Path(__file__).resolve().parents[3] / "docs" / "methods.md"


def _documented_takers(option: str) -> tuple[set[str], set[str]]:
    """From docs/methods.md's method table (not the introspection the help uses): the methods whose defaults
    name ``option``, and every documented method."""
    rows = re.findall(r"^\| `([^`]+)` \|[^|]*\|[^|]*\| ([^|]*) \|", DOCS.read_text(encoding="utf-8"), re.M)
    assert len(rows) >= 9, "docs/methods.md lost its method table"
    return {name for name, defaults in rows if re.search(rf"\b{option}=", defaults)}, {name for name, _ in rows}


def test_restore_help_names_exactly_the_methods_taking_each_option(capsys):
    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    text = " ".join(capsys.readouterr().out.split()).split("options:", 1)[1]  # past the usage line
    fidelity = text.split("--fidelity FIDELITY", 1)[1].split("--quality QUALITY", 1)[0]
    quality = text.split("--quality QUALITY", 1)[1].split("--param", 1)[0]
    listed = lambda part: {m.strip(" ,").split(" ")[0] for m in part.split("taken by:")[1].split(",")}  # noqa: E731
    for option, part in (("fidelity", fidelity), ("quality", quality)):
        takers, documented = _documented_takers(option)
        assert {m for m in listed(part) if m in documented} == takers, option
    assert "gfpgan" not in listed(fidelity) and {"codeformer", "iqp-bfr"} <= listed(fidelity)
    assert "GFPGAN weight" not in text


def test_an_option_a_method_does_not_take_is_one_line_naming_those_that_do(capsys, tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.zeros((64, 64, 3), np.uint8))
    rc = main(["restore", "--method", "gfpgan", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
               "--fidelity", "0.5"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert "gfpgan takes no --fidelity" in err and "codeformer" in err


def test_score_dataset_with_mismatched_stats_is_one_line(tmp_path, capsys):
    import cv2
    import numpy as np

    (tmp_path / "faces").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(tmp_path / "faces" / f"{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert main(["score-dataset", str(tmp_path / "faces"), "--iqa", "piqe", "--out", str(tmp_path / "p.csv"),
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    rc = main(["score-dataset", str(tmp_path / "faces"), "--iqa", "brisque", "--stats", str(tmp_path / "p.stats.json"),
               "--out", str(tmp_path / "q.csv"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert "no statistics for metric 'brisque'" in err and "piqe" in err
    assert not (tmp_path / "q.csv").exists()
