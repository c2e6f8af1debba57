"""The report for paper readers: intervals, significance letters, zoomed axes, perception-distortion axes."""
from __future__ import annotations

import re

import numpy as np
import pytest

from bench.engine import significance as sig
from reports import paper_plots
from reports.data import load_run
from reports.render import build_context
from tests._helpers.report_synth import DS_A, DS_B, METRICS, make_run
from tests._helpers.table_synth import write_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("paper_report"), n_images=8)


@pytest.fixture(scope="module")
def ctx(run_dir):
    run = load_run(run_dir)
    return build_context(run, run_dir / "index.html", include_images=False)


def test_intervals_are_the_bootstrap_over_each_methods_images(ctx, run_dir):
    run = load_run(run_dir)
    sec = ctx["sections"][0]
    ok = run.per_image[(run.per_image["dataset"] == DS_A) & (run.per_image["status"] == "ok")]
    vals = ok.loc[ok["method"] == "codeformer", "psnr"].to_numpy(dtype=float)
    iv = sec.intervals[("codeformer", "psnr")]
    assert (iv.low, iv.high) == sig.bootstrap_ci(vals) and iv.n == 8
    assert iv.mean == pytest.approx(25.0)
    assert ("codeformer", "fid") not in sec.intervals  # set-level: no per-image values, no interval


def test_letters_on_the_leaderboard_are_the_columns_tests(ctx, run_dir):
    run = load_run(run_dir)
    sec = ctx["sections"][0]
    methods = [r.method for r in sec.board.rows]
    col = next(c for c in sec.board.columns if c.metric == "lpips")
    tests = sig.compare_column(run.per_image, DS_A, "lpips", methods, higher_better=col.higher_better)
    assert {m: sec.groups[(m, "lpips")] for m in methods} == tests.groups
    assert "psnr" in sec.tested and "fid" not in sec.tested


def test_report_html_shows_intervals_letters_and_the_test(run_dir, tmp_path):
    from reports.render import render_report

    html = render_report(run_dir, tmp_path / "r.html", include_images=False).read_text()
    assert len(re.findall(r'<sup class="grp"', html)) >= 3 * 4  # psnr, lpips, musiq for 4 methods on A
    assert "Wilcoxon signed-rank" in html and "Holm" in html
    assert len(re.findall(r'class="sub ci">95% CI \[', html)) >= 12


def test_zoomed_axis_does_not_start_at_zero():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    paper_plots._zoom(ax, [25.78, 26.0], [26.0, 26.22])
    lo, hi = ax.get_xlim()
    assert 25.5 < lo < 25.78 and 26.22 < hi < 27  # 26.22 and 25.78 are far apart on this axis


def test_perception_distortion_axes_follow_full_and_no_reference(ctx):
    a, b = ctx["sections"]
    assert a.pd_axes == ("psnr", "musiq")  # first full-reference metric, first no-reference one
    assert b.pd_axes is None and b.pd_plot is None  # the wild set has no ground truth
    needs = {m: f["needs_gt"] for m, f in METRICS.items()}
    assert [c.metric for c in paper_plots.pd_axes(a.board, needs)] == ["psnr", "musiq"]


def test_rank_chart_and_forest_plot(ctx):
    assert ctx["rank_chart"].startswith("data:image/png;base64,")
    assert ctx["forest"].startswith("data:image/png;base64,")
    assert {g["dataset"] for g in ctx["gains"]} == {DS_A, DS_B}


def test_one_benchmark_has_no_rank_chart_and_no_gains_no_forest(tmp_path):
    rng = np.random.default_rng(0)
    run = write_run(tmp_path / "r", {("d", m, "psnr"): 25 + i + rng.normal(0, 0.1, 12) for i, m in enumerate("xyz")})
    ctx = build_context(load_run(run), run / "index.html", include_images=False)
    assert ctx["rank_chart"] is None and ctx["forest"] is None
    sec = ctx["sections"][0]
    assert sec.dots.startswith("data:image/png") and sec.pd_plot is None
    assert [sec.groups[(m, "psnr")] for m in "zyx"] == ["a", "b", "c"]  # 1 dB apart over 12 images: all differ
