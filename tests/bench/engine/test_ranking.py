"""The one ranking rule (bench.engine.ranking): paired on the images every method has, n on every value,
a method missing images ranked on the common set and flagged; the console and the report agree."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.engine.ranking import rank
from bench.engine.results import format_ranked_tables
from reports.tables import benchmark_board, overall_board

IMAGES = [f"img{i}" for i in range(10)]


def _frames(values: dict[str, dict[str, list[float]]], directions: dict[str, bool], set_level: dict | None = None):
    """summary and per_image frames from {method: {metric: per-image values (nan = no output)}}."""
    per, summary = [], []
    for method, by_metric in values.items():
        ok = [not all(math.isnan(v[i]) for v in by_metric.values()) for i in range(len(IMAGES))]
        for i, image in enumerate(IMAGES):
            row = {"dataset": "d", "method": method, "image": image, "status": "ok" if ok[i] else "error"}
            row.update({m: (v[i] if ok[i] else math.nan) for m, v in by_metric.items()})
            per.append(row)
        for metric, v in by_metric.items():
            a = np.asarray(v, dtype=float)
            a = a[np.isfinite(a)]
            summary.append(_srow(method, metric, float(a.mean()), a.size, directions[metric]))
        for metric, (value, n) in (set_level or {}).get(method, {}).items():
            summary.append(_srow(method, metric, value, n, directions[metric]))
    return pd.DataFrame(summary), pd.DataFrame(per)


def _srow(method, metric, value, n, higher):
    return dict(dataset="d", method=method, method_name=method, config_hash="", metric=metric, protocol=f"p-{metric}",
                value=value, n=n, higher_better=higher, standard=True, standin=False, status="ok", reason="",
                kind="score", ci_low=math.nan, ci_high=math.nan, n_inf=0)


# the case: an output folder missing the one hard image wins on means over different image sets
HARD = {
    "classical": {"lmd": [10.0] * 9 + [40.0], "ids": [0.30] * 9 + [0.9]},
    "outputs-x": {"lmd": [11.0] * 9 + [math.nan], "ids": [0.31] * 9 + [math.nan]},
}
LOWER = {"lmd": False, "ids": False}


def test_a_folder_missing_a_hard_image_does_not_rank_first():
    summary, per = _frames(HARD, LOWER)
    # guard: on their own (different) image sets the folder's means are better on both metrics
    own = summary.set_index(["method", "metric"])["value"]
    assert own["outputs-x", "lmd"] < own["classical", "lmd"] and own["outputs-x", "ids"] < own["classical", "ids"]
    r = rank(summary, per)
    methods = r.methods.set_index("method")
    assert list(r.methods["method"]) == ["classical", "outputs-x"]
    assert methods.loc["classical", "position"] == 1 and methods.loc["outputs-x", "position"] == 2
    assert methods.loc["outputs-x", "flag"] == "missing 1 of 10 images" and methods.loc["classical", "flag"] == ""
    cells = r.cells.set_index(["method", "metric"])
    # paired: both on the 9 common images, and the value ranked is the mean over them
    assert cells.loc[("classical", "lmd"), "value"] == pytest.approx(10.0) and cells.loc[("classical", "lmd"), "n"] == 9
    assert cells.loc[("outputs-x", "lmd"), "value"] == pytest.approx(11.0)
    assert cells.loc[("classical", "lmd"), "reported_value"] == pytest.approx(13.0)  # summary.csv's own value kept
    assert cells["paired"].all()


def test_console_and_report_give_the_same_order_and_show_n():
    summary, per = _frames(HARD, LOWER)
    text = format_ranked_tables(summary, per)
    body = [line for line in text.splitlines() if line[:1] and line[:1] in "12-"]
    assert body[0].startswith("1 (1.00)") and "classical" in body[0]
    assert body[1].startswith("2 (2.00)") and "outputs-x [missing 1 of 10 images]" in body[1]
    assert any(line.split()[:3] == ["n", "n=9", "n=9"] for line in text.splitlines())
    assert "ranked on the 9 images" in text
    board = benchmark_board(summary, "d", per_image=per)
    assert [(r.method, r.position, r.flag) for r in board.rows] == [
        ("classical", 1, ""), ("outputs-x", 2, "missing 1 of 10 images")]
    assert {c.n for r in board.rows for c in r.cells.values()} == {9}
    overall = overall_board(summary, per)
    assert [r.method for r in overall.rows] == ["classical", "outputs-x"]
    assert "missing 1 of 10 images" in overall.rows[1].flag


def test_same_images_rank_on_the_summary_values_as_before():
    vals = {"a": {"psnr": list(np.linspace(20, 30, 10))}, "b": {"psnr": list(np.linspace(21, 29, 10))}}
    summary, per = _frames(vals, {"psnr": True})
    r = rank(summary, per)
    assert not r.cells["paired"].any() and set(r.cells["n"]) == {10}
    assert (r.cells["value"] == r.cells["reported_value"]).all()
    assert list(r.methods["mean_rank"]) == [1.5, 1.5]  # equal means tie


def test_a_set_level_metric_over_different_images_is_ranked_for_nobody():
    summary, per = _frames(HARD, dict(LOWER, fid=False), set_level={"classical": {"fid": (50.0, 10)}, "outputs-x": {"fid": (40.0, 9)}})
    r = rank(summary, per)
    fid = r.cells[r.cells["metric"] == "fid"].set_index("method")
    assert fid["rank"].isna().all() and fid.loc["outputs-x", "n"] == 9 and fid.loc["classical", "n"] == 10
    assert any("fid: not ranked" in n for n in r.notes["d"])
    assert r.methods.set_index("method").loc["classical", "n_ranked"] == 2  # lmd and ids still rank
    text = format_ranked_tables(summary, per)
    assert "n varies" in text and "40 (n=9)" in text


def test_a_method_without_every_metric_is_listed_unranked():
    vals = {"a": {"psnr": [20.0] * 10, "ssim": [0.5] * 10}, "b": {"psnr": [30.0] * 10}}
    summary, per = _frames(vals, {"psnr": True, "ssim": True})
    r = rank(summary, per).methods.set_index("method")
    assert r.loc["a", "position"] == 1 and r.loc["b", "position"] == 0 and math.isnan(r.loc["b", "mean_rank"])
    board = benchmark_board(summary, "d", per_image=per)
    assert [(x.method, x.partial, x.mean_rank) for x in board.rows] == [("a", False, 1.0), ("b", True, None)]


def test_without_per_image_values_unequal_n_is_not_ranked():
    summary, _ = _frames(HARD, LOWER)
    r = rank(summary, None)
    assert r.cells["rank"].isna().all() and (r.methods["position"] == 0).all()
    assert all("not ranked" in n for n in r.notes["d"])


def test_direction_and_ties():
    rows = [_srow(m, k, v, 4, hb) for m, k, v, hb in (
        ("a", "psnr", 30.0, True), ("b", "psnr", 30.0, True), ("c", "psnr", 20.0, True),
        ("a", "fid", 90.0, False), ("b", "fid", 10.0, False), ("c", "fid", 50.0, False))]
    r = rank(pd.DataFrame(rows)).cells.set_index(["method", "metric"])["rank"]
    assert r["a", "psnr"] == r["b", "psnr"] == 1.5 and r["c", "psnr"] == 3
    assert (r["b", "fid"], r["c", "fid"], r["a", "fid"]) == (1, 2, 3)


def test_a_run_with_a_folder_missing_an_image_flags_it_on_the_console_and_in_the_report(tmp_path, capsys):
    import cv2

    from bench.cli import main
    from tests._helpers.runner_helpers import make_folder, register

    root = make_folder(tmp_path / "rankE", 4)
    ds = register(root, "rankE")
    outs = tmp_path / "outs"
    outs.mkdir()
    for p in sorted((root / "gt").iterdir())[:3]:  # img003 has no output
        cv2.imwrite(str(outs / p.name), cv2.resize(cv2.imread(str(p)), (512, 512), interpolation=cv2.INTER_CUBIC))
    rc = main(["run", "--datasets", ds, "--methods", "lq", f"outputs:x={outs}", "--metrics", "test-mae",
               "--out", str(tmp_path / "run"), "--batch-size", "2", "--workers", "0", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 1  # an output is missing: a failed image
    assert "x [missing 1 of 4 images]" in printed and "n=3" in printed
    html = (tmp_path / "run" / "index.html").read_text()
    assert "missing 1 of 4 images" in html and 'class="n">n=3<' in html


# -- property: any pattern of missing outputs and failed values gives a consistent ranking ---------------------
from datetime import timedelta  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CELLS = st.one_of(st.floats(-100, 100), st.just(math.nan))
_RUNS = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]),
                        st.fixed_dictionaries({"m1": st.lists(_CELLS, min_size=10, max_size=10),
                                               "m2": st.lists(_CELLS, min_size=10, max_size=10)}),
                        min_size=1, max_size=4)


@settings(max_examples=40, deadline=timedelta(seconds=5))
@given(_RUNS, st.booleans())
def test_any_missing_pattern_ranks_every_method_on_one_common_set(runs, m2_higher):
    runs = {m: v for m, v in runs.items() if any(x == x for col in v.values() for x in col)}  # a value somewhere
    if not runs:
        return
    summary, per = _frames(runs, {"m1": False, "m2": m2_higher})
    r = rank(summary, per)
    cells, methods = r.dataset("d")
    ranked = methods[methods["position"] > 0]
    assert sorted(ranked["position"]) == list(range(1, len(ranked) + 1))
    assert ranked["complete"].all() and list(methods["position"]).count(0) == len(methods) - len(ranked)
    for metric, col in cells.groupby("metric"):
        with_rank = col[col["rank"].notna()]
        assert with_rank["n"].nunique() <= 1  # every ranked value is over the same images
        if len(with_rank):
            best = with_rank.loc[with_rank["rank"].idxmin(), "value"]
            higher = m2_higher if metric == "m2" else False
            assert best == (with_rank["value"].max() if higher else with_rank["value"].min())
    for m in methods.itertuples():
        ok = per[(per["method"] == m.method) & (per["status"] == "ok")]
        assert m.missing == 10 - len(ok) and bool(m.flag) == (len(ok) < 10)
