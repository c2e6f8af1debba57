"""CSV formula injection: every CSV bfrbench writes neutralises cells a spreadsheet would evaluate."""
from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from bench.core.csvsafe import csv_text, neutralise, neutralise_frame, restore, restore_frame

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "=cmd|' -C calc'!A0", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "'quoted", "''twice"]
PLAIN = ["face_001", "a=b", "", "-0.5", "+3", "-inf", "nan", "1e-4"]


@pytest.mark.parametrize("value", HOSTILE + PLAIN)
def test_round_trip_and_no_formula_left(value):
    cell = neutralise(value)
    assert restore(cell) == value
    if value in HOSTILE:
        assert cell.startswith("'")
    else:
        assert cell == value  # names and numbers are written as they are


def test_frame_round_trip_keeps_numbers_numeric():
    df = pd.DataFrame({"method": HOSTILE, "value": np.linspace(-1, 1, len(HOSTILE))})
    out = neutralise_frame(df)
    assert not any(str(v).startswith(("=", "+", "-", "@", "\t", "\r")) for v in out["method"])
    assert out["value"].tolist() == df["value"].tolist()
    assert restore_frame(out.copy(), ["method"])["method"].tolist() == HOSTILE


def test_csv_text_header_and_mappings():
    text = csv_text(["image", "=x"], [{"image": "=1+1"}, ["@a", -3.5]])
    rows = list(csv.reader(text.splitlines()))
    assert rows == [["image", "'=x"], ["'=1+1", ""], ["'@a", "-3.5"]]


def test_score_dataset_csv_is_neutralised_and_read_back(tmp_path):
    """Review item 6: image names like =HYPERLINK(...) landed as cells of scores.csv."""
    import cv2

    from bench.cli import main
    from methods.iqp_bfr.train.data import read_scores

    folder = tmp_path / "faces"
    folder.mkdir()
    names = ["=HYPERLINK(1).png", "=cmd|' -C calc'!A0.png", "plain.png"]
    rng = np.random.default_rng(0)
    for name in names:
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    out = tmp_path / "scores.csv"
    assert main(["score-dataset", str(folder), "--iqa", "piqe", "--out", str(out), "--device", "cpu"]) == 0
    cells = [c for row in csv.reader(out.open(newline="")) for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))], cells
    assert sorted(read_scores(out)) == sorted(names)


def test_rewriting_a_csv_does_not_stack_quotes(tmp_path):
    """suite scoring and compare read summary.csv back and rewrite it: the cells must not grow a ' each time."""
    from bench.core.csvsafe import read_frame, write_frame

    names = [h for h in HOSTILE if "\r" not in h] + PLAIN[:2]  # a bare CR inside a cell splits a pandas CSV row
    df = pd.DataFrame({"method": names, "value": np.arange(len(names), dtype=float)})
    path = tmp_path / "s.csv"
    write_frame(df, path)
    first = path.read_text()
    write_frame(read_frame(path, keep_default_na=False), path)
    assert path.read_text() == first
    assert read_frame(path, keep_default_na=False)["method"].tolist() == df["method"].tolist()
