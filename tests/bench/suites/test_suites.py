"""Declarative suites: the safe score formula, NTIRE score arithmetic and gate logic by hand, built-in suites,
and ``bfrbench run --suite FILE.yaml`` end to end with an outputs folder."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.core.errors import UserError
from bench.core.registry import METRICS
from bench.engine.run_folder import RunFolder
from bench.metrics.base import MeanOfImages
from bench.suites import builtin_suites, load_suite, parse_suite
from bench.suites.formula import Formula
from bench.suites.scoring import gate, per_image_suite_value, weighted_mean
from tests._helpers.runner_helpers import SetMean, make_folder, register

#: tests here register methods and metrics; each test's are gone after it
pytestmark = pytest.mark.usefixtures("registries")

NTIRE = "CLIPIQA + MANIQA + MUSIQ/100 + max(0, (10 - NIQE)/10) + QALIGN/5 + max(0, (100 - FID)/100)"


def test_ntire_score_arithmetic_by_hand():
    f = Formula(NTIRE)
    assert sorted(f.variables) == ["CLIPIQA", "FID", "MANIQA", "MUSIQ", "NIQE", "QALIGN"]
    # 0.7 + 0.5 + 0.7 + 0.6 + 0.8 + 0.6
    v = dict(CLIPIQA=0.7, MANIQA=0.5, MUSIQ=70.0, NIQE=4.0, QALIGN=4.0, FID=40.0)
    assert f.evaluate(v) == pytest.approx(3.9, abs=1e-12)
    # NIQE above 10 and FID above 100 contribute 0, never a negative term
    v.update(NIQE=12.0, FID=130.0)
    assert f.evaluate(v) == pytest.approx(0.7 + 0.5 + 0.7 + 0.0 + 0.8 + 0.0, abs=1e-12)
    assert math.isnan(f.evaluate(dict(v, QALIGN=math.nan)))  # a missing metric never gives a partial score


@pytest.mark.parametrize("bad", ["__import__('os').system('x')", "a.b", "x[0]", "lambda: 1", "open('f')",
                                 "2 ** 8", "max", "[1, 2]"])
def test_formula_refuses_anything_but_arithmetic(bad):
    with pytest.raises(UserError, match="not allowed|function|not a valid"):
        Formula(bad)


def _suite(thresholds=(0.5, 0.3), images=(100, 50), max_below=1):
    return parse_suite({
        "name": "t", "title": "T", "year": 2025,
        "datasets": [{"name": "A", "images": images[0], "threshold": thresholds[0]},
                     {"name": "B", "images": images[1], "threshold": thresholds[1]}],
        "metrics": ["m"], "score": {"formula": "X", "variables": {"X": "m"}},
        "gate": {"metric": "id", "max_below": max_below},
    })


def test_suite_means_are_weighted_by_set_size_and_gate_counts_by_hand():
    suite = _suite()
    per = pd.DataFrame({
        "method": ["e"] * 6, "dataset": ["A", "A", "A", "B", "B", "B"],
        "status": ["ok", "ok", "ok", "ok", "ok", "error"],
        "m": [1.0, 2.0, 3.0, 10.0, 20.0, np.nan],
        "id": [0.9, 0.49, 0.5, 0.31, 0.29, np.nan],
    })
    # A mean 2, B mean 15 (the failed image has no value); weights 100 and 50: (200 + 750) / 150
    assert per_image_suite_value(per, "e", "m", suite) == pytest.approx(950 / 150)
    assert weighted_mean({"A": 2.0, "B": 15.0}, {"A": 1.0, "B": 1.0}) == pytest.approx(8.5)
    g = gate(per, "e", suite)
    # A: 0.49 < 0.5 (0.5 is not under 0.5); B: 0.29 < 0.3, and the failed image counts as under
    assert g.per_dataset == {"A": 1, "B": 2} and g.below == 3 and g.missing == 1
    assert not g.passed and g.describe().startswith("FAIL: 3 images")
    assert gate(per, "e", _suite(max_below=3)).passed  # "more than max_below" fails, equal passes
    # a gate metric that never ran (weights missing) is "not computed", not a failure of the entry
    skipped = gate(per.assign(id=np.nan), "e", suite)
    assert not skipped.computed and not skipped.passed and skipped.describe().startswith("NOT COMPUTED")


def test_builtin_suites_and_their_year_thresholds():
    assert set(builtin_suites()) >= {"paper-celeba", "paper-realworld", "ntire2025-rwfr", "ntire2026-rwfr"}
    s25, s26 = load_suite("ntire2025-rwfr"), load_suite("ntire2026-rwfr")
    t25 = {k.split("/")[1]: v for k, v in s25.thresholds().items()}
    t26 = {k.split("/")[1]: v for k, v in s26.thresholds().items()}
    assert t25 == {"CelebA": 0.5, "LFW-Test": 0.6, "CelebChild-Test": 0.6, "WebPhoto-Test": 0.3, "Wider-Test": 0.3}
    assert t26 == dict(t25, **{"WebPhoto-Test": 0.25, "Wider-Test": 0.2})
    assert sum(s25.weights().values()) == 450 and s25.gate.max_below == 10
    assert s25.score.formula.replace(" ", "") == NTIRE.replace(" ", "") and s25.year == 2025
    assert set(s25.all_metrics()) >= {"clipiqa", "maniqa", "musiq", "qalign", "niqe-pyiqa", "fid", "ids-adaface-lq"}
    from bench.core import plugins
    from bench.core.registry import METHODS

    plugins.load_all()
    for name in builtin_suites():
        suite = load_suite(name)
        assert all(m in METRICS for m in suite.all_metrics()) and all(m in METHODS for m in suite.methods)
    with pytest.raises(UserError, match="built-in: .*ntire2025-rwfr"):
        load_suite("ntire2024")


class Brightness(MeanOfImages):
    """Per-image mean level of the output, a stand-in gate metric."""

    name = "test-bright"
    protocol = "test-bright"

    def score(self, pred, gt):
        return pred.mean(dim=(1, 2, 3)).double()


def test_run_suite_file_end_to_end(tmp_path, capsys):
    if "test-bright" not in METRICS:
        METRICS.add("test-bright", Brightness, higher_better=True, needs_gt=False, protocol="test-bright")
    ra, rb = make_folder(tmp_path / "sA", 3, seed=1), make_folder(tmp_path / "sB", 2, seed=2)
    da, db = register(ra, "suiteA"), register(rb, "suiteB")
    # an entry: the GT of each set at 512, in per-set subfolders
    entry = tmp_path / "entry"
    outs = []
    for root, sub in ((ra, "sA"), (rb, "sB")):
        (entry / sub).mkdir(parents=True)
        for p in sorted((root / "gt").iterdir()):
            img = cv2.resize(cv2.imread(str(p)), (512, 512), interpolation=cv2.INTER_LINEAR)
            cv2.imwrite(str(entry / sub / p.name), img)
            outs.append(img[:, :, ::-1])
    suite_file = tmp_path / "mine.yaml"
    suite_file.write_text(f"""
name: mine
title: My suite
year: 2031
datasets:
  - {{name: {da}, images: 30, threshold: 0.45}}
  - {{name: {db}, images: 10, threshold: 0.45}}
methods: [lq]
metrics: [test-setmean]
score:
  label: my score
  formula: "B * 2 + max(0, S)"
  variables: {{B: test-bright, S: test-setmean}}
gate: {{metric: test-bright, max_below: 2}}
run: {{batch_size: 2, workers: 0, device: cpu}}
""")
    rc = main(["run", "--suite", str(suite_file), "--methods", "lq", f"outputs:team={entry}",
               "--out", str(tmp_path / "run"), "--no-report"])
    # 3 and 2 images where the protocol has 30 and 10: scored, but not comparable, so nothing is ranked
    assert rc == 1
    printed, err = capsys.readouterr()
    assert "== My suite (2031): score and identity gate ==" in printed
    assert "not comparable" in err
    assert "sA: 3 images, the protocol has 30" in err and "sB: 2 images, the protocol has 10" in err
    table = printed.split("score and identity gate ==")[1].splitlines()[2:4]
    assert all(line.startswith("-") for line in table), table
    assert json.loads((tmp_path / "run" / "suite.json").read_text())["comparable"] is False
    suite_rows = RunFolder(tmp_path / "run").suite_rows().set_index(["method", "metric"])
    assert "mine" not in set(pd.read_csv(tmp_path / "run" / "summary.csv").dataset)  # a suite's rows: its own file
    per = pd.read_parquet(tmp_path / "run" / "per_image.parquet")
    team = per[per.method == "team"]
    # B: per-set means weighted 30:10
    mean_a = team[team.dataset == "sA"]["test-bright"].mean()
    mean_b = team[team.dataset == "sB"]["test-bright"].mean()
    b = (30 * mean_a + 10 * mean_b) / 40
    assert suite_rows.loc[("team", "mine:B"), "value"] == pytest.approx(b, rel=1e-9)
    # S: the set-level metric pooled over both sets' outputs at once
    m = SetMean()
    m.update(torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).float() / 255)
    pooled = m.compute()
    assert suite_rows.loc[("team", "mine:S"), "value"] == pytest.approx(pooled, rel=1e-6)
    assert suite_rows.loc[("team", "mine:score"), "value"] == pytest.approx(2 * b + max(0, pooled), rel=1e-6)
    # the gate: images darker than 0.45 in mean level count; thresholds 0.45 on both sets
    below = int((team["test-bright"] < 0.45).sum())
    gate_row = suite_rows.loc[("team", "mine:gate")]
    assert gate_row.value == below and (gate_row.status == "ok") == (below <= 2)
    assert "My suite (2031)" in gate_row.protocol
    assert json.loads((tmp_path / "run" / "suite.json").read_text())["year"] == 2031
    # the run method is scored by the same suite, beside the entry
    assert ("lq", "mine:score") in suite_rows.index
    # the report shows the suite's score and gate in their own section, labelled with the year
    from reports.render import render_report

    html = render_report(tmp_path / "run").read_text()
    assert 'id="suite"' in html and "My suite (2031): my score" in html


def test_list_suites_and_tables(capsys):
    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert "ntire2026-rwfr" in out and "ntire-rwfr/Wider-Test" in out and "codeformer-paper" in out


def _scores(*entries):
    from bench.suites.scoring import GateResult, MethodScore

    return [MethodScore(m, {"X": v}, {"X": False}, v, GateResult(below=b, max_below=1, computed=c, metric="id"), n,
                        [] if v == v else ["X"]) for m, v, b, c, n in entries]


def test_suite_table_ranks_only_a_computed_score_over_the_same_images():
    from bench.suites.scoring import format_suite_table, rank_scores

    suite = _suite()
    nan = float("nan")
    # given in command-line order: a (no score), b, c (better), d (gate failed), e (gate not computed)
    scores = rank_scores(_scores(("a", nan, 0, True, 5), ("b", 1.0, 0, True, 5), ("c", 2.0, 0, True, 5),
                                 ("d", 3.0, 5, True, 5), ("e", 4.0, 0, False, 5)), suite, [])
    assert [(s.method, s.position) for s in scores] == [("c", 1), ("b", 2), ("a", 0), ("d", 0), ("e", 0)]
    text = format_suite_table(scores, suite).splitlines()
    assert text[3].startswith("1 ") and text[4].startswith("2 ")
    assert all(line.startswith("- ") for line in text[5:]) and "no score" in text[5] and "not computed" in text[5]
    # over different numbers of images (a missing output): nobody is ranked on the score
    uneven = rank_scores(_scores(("b", 1.0, 0, True, 5), ("c", 2.0, 0, True, 4)), suite, [])
    assert [s.position for s in uneven] == [0, 0] and "another number of images" in uneven[0].unranked
    # a run that is not comparable with the protocol ranks nothing, and says so
    alone = rank_scores(_scores(("b", 1.0, 0, True, 5)), suite, ["A: 2 images, the protocol has 100"])
    assert alone[0].position == 0 and alone[0].unranked.startswith("not comparable")


def test_a_suite_score_not_computed_or_not_comparable_is_exit_1():
    from bench.cli.exit_codes import FAILED, OK, run_status

    scores = pd.DataFrame([dict(dataset="d", method="m", metric="psnr", value=20.0, n=3, status="ok", reason="")])

    def suite_rows(status, reason):
        return pd.DataFrame([dict(dataset="s", method="m", metric="s:score", n=3, status=status, reason=reason,
                                  value=float("nan") if status == "failed" else 1.0)])

    assert run_status(scores, [], suite_rows=suite_rows("ok", "")).code == OK
    failed = run_status(scores, [], suite_rows=suite_rows("failed", "missing CLIPIQA (see the skipped metrics)"))
    assert failed.code == FAILED and "s:score not computed for m" in failed.reasons[0]
    why = "not comparable with S: A: 2 images, the protocol has 100"
    incomparable = run_status(scores, [], suite_rows=suite_rows("ok", why))
    assert incomparable.code == FAILED and incomparable.reasons == [why]
