"""The HTML report: ranking, flags, escaping, self-containedness, images, CLI, bad input."""
from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pandas as pd
import pytest

from bench.core.errors import UserError
from bench.engine.ranking import rank
from reports import paper_plots, plots
from reports.data import load_run
from reports.render import render_report
from reports.tables import benchmark_board, overall_board, spread_stats
from tests._helpers.report_synth import (
    BEST,
    DS_A,
    DS_B,
    EVIL,
    EVIL_IMAGE,
    EVIL_REASON,
    EXPECTED_ORDER,
    METRICS,
    WORST,
    face_image,
    make_run,
)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts) + "".join(c.text for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        out = []
        for n in self.iter():
            if tag and n.tag != tag:
                continue
            if all((k == "cls" and v in n.attrs.get("class", "").split()) or n.attrs.get(k) == v
                   for k, v in attrs.items()):
                out.append(n)
        return out

    def find(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag}> with {attrs}"
        return found[0]


class Tree(HTMLParser):
    """A small DOM from the stdlib parser (the report is well formed: every non-void tag closed)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text_parts.append(data)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def html(run_dir) -> str:
    return render_report(run_dir, data_roots=[run_dir.parent / "data"]).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dom(html) -> Node:
    return Tree(html).root


def decode_data_uri(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/")
    data = base64.b64decode(uri.split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------- ranking


def test_overall_order_honours_each_metric_direction(dom):
    rows = dom.find("table", id="overall").find("tbody").find_all("tr")
    assert [r.attrs["data-method"] for r in rows] == EXPECTED_ORDER
    means = [float(r.find_all("td")[2].attrs["data-v"]) for r in rows]
    assert means == pytest.approx([1.2, 2.2, 2.8, 3.8])


def test_ignoring_directions_would_give_another_order(run_dir):
    """Guard on the fixture itself: a direction bug must change the leaderboard."""
    summary = load_run(run_dir).summary.copy()
    summary["higher_better"] = True
    assert [r.method for r in overall_board(summary).rows] != EXPECTED_ORDER


def test_ties_share_the_average_rank_and_missing_values_are_not_ranked():
    rows = []
    for method, psnr, lpips in (("a", 30.0, 0.1), ("b", 30.0, 0.3), ("c", 20.0, float("nan"))):
        for metric, value, hb in (("psnr", psnr, True), ("lpips", lpips, False)):
            rows.append(dict(dataset="d", method=method, method_name=method, config_hash="", metric=metric,
                             protocol="p", value=value, n=1, higher_better=hb, standard=True, standin=False,
                             status="ok", reason=""))
    ranked = rank(pd.DataFrame(rows)).cells
    r = {(x.method, x.metric): x.rank for x in ranked.itertuples()}
    # c lacks lpips: it is listed unranked and shifts nobody's rank (one rule with the console)
    assert r[("a", "psnr")] == r[("b", "psnr")] == 1.5 and np.isnan(r[("c", "psnr")])
    assert r[("a", "lpips")] == 1 and r[("b", "lpips")] == 2 and ("c", "lpips") not in r
    board = benchmark_board(pd.DataFrame(rows), "d")
    assert [(x.method, x.partial) for x in board.rows] == [("a", False), ("b", False), ("c", True)]


def test_partial_coverage_goes_last_with_a_badge(tmp_path):
    run = make_run(tmp_path, n_images=3, save_images=False)
    summary = pd.read_csv(run / "summary.csv")
    extra = summary.iloc[[0]].copy()
    extra["method"] = extra["method_name"] = "only-psnr"
    extra["value"] = 99.0
    pd.concat([summary, extra]).to_csv(run / "summary.csv", index=False)
    dom = Tree(render_report(run, include_images=False).read_text()).root
    rows = dom.find("table", id="overall").find("tbody").find_all("tr")
    assert rows[-1].attrs["data-method"] == "only-psnr"
    assert rows[-1].find_all("span", cls="partial")
    assert not rows[0].find_all("span", cls="partial")


def test_same_metric_under_two_protocols_is_two_columns(run_dir):
    summary = load_run(run_dir).summary
    extra = summary[(summary["metric"] == "psnr") & (summary["status"] == "ok")].copy()
    extra["protocol"] = "basicsr-y"
    extra["value"] = -extra["value"]  # reversed order: averaging the two would tie everything
    both = pd.concat([summary, extra])
    cols = benchmark_board(both, DS_A).columns
    labels = [c.label for c in cols]
    assert "psnr [basicsr-rgb]" in labels and "psnr [basicsr-y]" in labels


# ---------------------------------------------------------------- flags and protocols


def test_every_number_carries_its_protocol(dom, run_dir):
    summary = load_run(run_dir).summary
    protocols = dict(zip(summary["metric"], summary["protocol"]))
    for ds_index, ds in ((1, DS_A), (2, DS_B)):
        for table_id in (f"board-{ds_index}", f"spread-{ds_index}"):
            table = dom.find("table", id=table_id)
            heads = table.find("thead").find_all("th")
            metric_heads = [h for h in heads if "protocol:" in h.attrs.get("title", "")]
            n_metrics = summary[(summary["dataset"] == ds) & (summary["status"] == "ok")]["metric"].nunique()
            assert len(metric_heads) == n_metrics
            for h in metric_heads:
                metric = h.attrs["title"].split(" ·")[0]
                assert protocols[metric] in h.text  # visible under the name
            first_metric_col = 3 if table_id.startswith("board") else 1  # after #, method, mean rank
            for tr in table.find("tbody").find_all("tr"):
                cells = tr.find_all("td")[first_metric_col:]
                assert len(cells) == n_metrics
                for td in cells:
                    metric = td.attrs["title"].split(" ")[0]
                    assert f"protocol: {protocols[metric]}" in td.attrs["title"]


def test_standin_and_nonstandard_are_flagged(dom):
    for tr in dom.find("table", id="overall").find("tbody").find_all("tr"):
        badges = tr.find_all("span", cls="standin")
        assert bool(badges) == (tr.attrs["data-method"] == EVIL)
    assert dom.find(id="standin-banner").find_all("span", cls="standin")
    heads = dom.find("table", id="board-1").find("thead").find_all("th")
    for h in heads:
        title = h.attrs.get("title", "")
        if title.startswith("musiq"):
            assert h.find_all("span", cls="nonstd")
        elif "protocol:" in title:
            assert not h.find_all("span", cls="nonstd"), title
    assert "musiq" in dom.find(id="nonstd-banner").text


# ---------------------------------------------------------------- escaping and self-containedness


def test_names_reasons_and_files_are_text_not_markup(html, dom):
    assert EVIL not in html
    assert "<img src=x" not in html
    assert "<b>oops</b>" not in html and "<gfpgan.pth>" not in html and "<no IEND>" not in html
    text = dom.text
    for s in (EVIL, EVIL_IMAGE, EVIL_REASON, "decode failed <b>oops</b>", "broken<1>.png", "truncated PNG <no IEND>"):
        assert s in text, s
    # the only script elements: the report's own code and inert JSON data
    scripts = dom.find_all("script")
    assert sum(1 for s in scripts if not s.attrs) == 1
    assert all(s.attrs.get("type") == "application/json" for s in scripts if s.attrs)
    assert not [n for n in dom.iter() if any(k.startswith("on") for k in n.attrs)]


def test_per_image_json_is_inert_and_exact(dom, run_dir):
    df = pd.read_parquet(run_dir / "per_image.parquet")
    blobs = {s.attrs["id"]: s.text for s in dom.find_all("script") if s.attrs.get("type") == "application/json"}
    assert set(blobs) == {"pi-data-1", "pi-data-2"}
    assert "</" not in blobs["pi-data-2"] and "<" not in blobs["pi-data-2"]
    data = json.loads(blobs["pi-data-2"])
    assert data["metrics"] == ["musiq"]  # psnr/lpips/fid have no values on the wild set
    ds = df[df["dataset"] == DS_B]
    assert len(data["rows"]) == len(ds)
    by_key = {(r[0], r[1]): r for r in data["rows"]}
    assert (EVIL_IMAGE, EVIL) in by_key
    for rec in ds.itertuples():
        row = by_key[(rec.image, rec.method)]
        if rec.status == "ok":
            assert row[3] == pytest.approx(rec.musiq, rel=1e-5)
        else:
            assert row[2].startswith("error") and row[3] is None


def test_no_network_references(html, dom):
    assert not re.search(r"(?i)\b(https?|ftp|wss?):", html)
    assert not re.search(r"(?i)(src|href)\s*=\s*[\"']?//", html)
    assert not dom.find_all("link") and not dom.find_all("iframe") and not dom.find_all("object")
    for n in dom.iter():
        if "src" in n.attrs and n.tag != "script":
            assert n.attrs["src"].startswith("data:image/"), n.attrs["src"][:60]
        if n.tag == "a":
            assert n.attrs["href"].startswith("#")
    # the Content-Security-Policy allows no network and only this report's script, by hash
    policy = dom.find("meta", **{"http-equiv": "Content-Security-Policy"}).attrs["content"]
    assert "default-src 'none'" in policy and "img-src data:;" in policy and "unsafe-inline" not in policy.split("script-src")[1]
    script = next(s for s in dom.find_all("script") if not s.attrs).text
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy


# ---------------------------------------------------------------- tables


def test_spread_matches_numpy_percentiles(run_dir, dom):
    df = pd.read_parquet(run_dir / "per_image.parquet")
    stats = spread_stats(load_run(run_dir).per_image)
    vals = df[(df["dataset"] == DS_A) & (df["method"] == "codeformer")]["psnr"].to_numpy()
    assert stats[(DS_A, "codeformer", "psnr")] == pytest.approx(
        (np.median(vals), np.quantile(vals, 0.25), np.quantile(vals, 0.75), len(vals)))
    # errored images are left out of the spread
    lq_b = df[(df["dataset"] == DS_B) & (df["method"] == "lq") & (df["status"] == "ok")]["musiq"]
    assert stats[(DS_B, "lq", "musiq")][3] == len(lq_b)
    row = next(r for r in dom.find("table", id="spread-1").find("tbody").find_all("tr")
               if r.attrs["data-method"] == "codeformer")
    psnr_cell = next(td for td in row.find_all("td") if td.attrs.get("title", "").startswith("psnr"))
    assert f"median {np.median(vals):.2f}" in psnr_cell.text
    assert "no per-image values" in next(td for td in row.find_all("td") if td.attrs.get("title", "").startswith("fid")).text


def test_gains_verdicts_follow_direction_and_ci(dom):
    rows = dom.find("table", id="gains-table").find("tbody").find_all("tr")
    verdicts = [r.find_all("td")[-1].text.strip() for r in rows]
    # psnr +1 [0.5, 1.5] better; lpips -0.05 [-0.1, 0.02] n.s.; musiq -2 [-3, -1] worse
    assert verdicts == ["better", "n.s.", "worse"]


def test_skipped_and_bad_files_listed(dom):
    text = dom.find(id="skipped").text
    assert "bfrbench fetch gfpgan-v1.4" in text and "weights missing <gfpgan.pth>" in text
    assert "pip install pyiqa" in text and "broken<1>.png" in text
    # the metric skipped on the wild set comes from summary.csv only
    rows = dom.find("table", id="skipped-table").find("tbody").find_all("tr")
    assert any(DS_B in r.text and "pyiqa:topiq_nr-face" in r.text for r in rows)
    assert "decode failed <b>oops</b>" in dom.find("table", id="errors-table").text


def test_manifest_shown(dom):
    info = dom.find("table", id="run-info").text
    assert "NVIDIA H100 80GB" in info and "abc1234" in info and "degradation" in info and "1234" in info
    methods = dom.find("table", id="methods-table").text
    assert "ab" * 32 in methods and "/weights/codeformer.pth" in methods


# ---------------------------------------------------------------- images and plots


def test_gallery_crops_are_the_eye_and_mouth_regions(dom):
    gallery = dom.find("section", id="bench-1")
    tiles = gallery.find_all("div", cls="tile")
    kinds = [t.attrs["class"].split()[1] for t in tiles[:6]]
    assert kinds == ["lq", "method", "method", "method", "method", "gt"]
    gt = next(t for t in tiles if "gt" in t.attrs["class"].split())
    thumb = decode_data_uri(gt.find("img", cls="thumb").attrs["src"])
    assert max(thumb.shape[:2]) == 192
    eyes, mouth = (decode_data_uri(c.find("img").attrs["src"]) for c in gt.find_all("div", cls="crop"))
    assert eyes.shape[:2] == (80, 240) and mouth.shape[:2] == (80, 160)
    # the synthetic faces paint the eye band red and the mouth band blue; crops are lossless, so exact
    assert (eyes[..., 0] > 180).mean() > 0.95 and (eyes[..., 2] < 80).mean() > 0.95
    assert (mouth[..., 2] > 180).mean() > 0.95 and (mouth[..., 0] < 80).mean() > 0.95
    image = gt.find("img", cls="thumb").attrs["alt"].split()[0]
    face = face_image(int(image.split("_")[1]))
    assert np.array_equal(eyes, face[200:280, 136:376]) and np.array_equal(mouth, face[331:411, 177:337])


def test_gallery_without_saved_outputs_shows_lq_and_gt_only(dom):
    tiles = dom.find("section", id="bench-2").find_all("div", cls="tile")
    assert tiles and {t.attrs["class"].split()[1] for t in tiles} == {"lq"}


def test_worst_and_best_are_the_planted_images(dom):
    for (method, metric), worst in WORST.items():
        row = next(r for r in dom.find("section", id="bench-1").find_all("tr")
                   if r.attrs.get("data-method") == method and r.attrs.get("data-metric") == metric)
        assert row.find("div", cls="worst").attrs["data-image"] == worst
        assert row.find("div", cls="best").attrs["data-image"] == BEST[(method, metric)]


def test_plots_are_embedded_pngs(dom):
    plots_ = dom.find_all("img", cls="plot")
    # dots + distributions for the celeba set, dots + distributions + quality histogram for the wild set, profile,
    # perception-distortion (celeba: psnr full-reference, musiq no-reference; wild has no full-reference metric),
    # the rank chart and the forest plot of gains
    assert len(plots_) == 9
    kinds = [p.attrs.get("data-kind") for p in dom.find_all("img", cls="paper-plot")]
    assert sorted(kinds) == ["dots", "dots", "forest", "pd", "ranks"]
    pd_plot = next(p for p in plots_ if p.attrs.get("data-kind") == "pd")
    assert "psnr against musiq" in pd_plot.attrs["alt"]
    for p in plots_:
        assert p.attrs["src"].startswith("data:image/png;base64,")
        assert decode_data_uri(p.attrs["src"]).shape[0] > 100


def test_plot_labels_are_not_math_text(run_dir):
    summary = load_run(run_dir).summary.copy()
    summary.loc[summary["method"] == "lq", "method"] = r"a$\frac{$b"
    board = benchmark_board(summary, DS_A)
    colors = plots.method_colors([r.method for r in board.rows])
    assert paper_plots.dot_intervals(board, {}, colors, set()).startswith("data:image/png")
    assert plots.quality_histogram({r"_x$\frac{$": [0.1, 0.2]}, colors, "t").startswith("data:image/png")


def test_link_images_mode(run_dir, tmp_path):
    out = tmp_path / "elsewhere" / "report.html"
    html = render_report(run_dir, out, embed_images=False).read_text()
    dom = Tree(html).root
    imgs = [n for n in dom.iter() if n.tag == "img" and not n.attrs["src"].startswith("data:")]
    assert imgs and not re.search(r"(?i)https?:", html)
    for img in imgs:
        assert (out.parent / unquote(img.attrs["src"])).is_file(), img.attrs["src"]
    assert "image/jpeg" not in html
    policy = dom.find("meta", **{"http-equiv": "Content-Security-Policy"}).attrs["content"]
    assert "file:" in policy


def test_no_images_mode_is_small(run_dir, tmp_path, html):
    small = render_report(run_dir, tmp_path / "r.html", include_images=False).read_text()
    assert "data:image/jpeg" not in small and 'class="tile' not in small
    assert small.count("data:image/png") == html.count("data:image/png")
    assert len(small) < len(html) / 2


def test_report_size_is_sane(html):
    images = re.findall(r"data:image/(webp|png);base64,[A-Za-z0-9+/=]+", html)
    page = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", html)
    assert len(page) < 600_000  # the page itself, without its images
    assert "data:image/jpeg" not in html  # thumbnails, crops and the slider are lossless
    assert images.count("webp") < 150


def test_thumb_size_option(run_dir, tmp_path):
    dom = Tree(render_report(run_dir, tmp_path / "r.html", thumb_size=96).read_text()).root
    thumb = decode_data_uri(dom.find("section", id="bench-1").find("img", cls="thumb").attrs["src"])
    assert max(thumb.shape[:2]) == 96
    assert dom.find("div", cls="gallery-row").attrs["style"] == "--thumb: 96px"


def test_before_after_slider_has_every_side_at_full_resolution(dom):
    box = dom.find("div", cls="compare")
    options = [o.text for o in box.find("select", cls="cmp-left").find_all("option")]
    assert options[0] == "LQ" and options[-1] == "GT" and len(options) == 6  # LQ, 4 methods, GT
    assert box.attrs["data-image"] == "face_000"
    layers = box.find_all("div", cls="cmp-layer")
    assert [layer.attrs["data-label"] for layer in layers] == options
    gt = decode_data_uri(layers[-1].find("img").attrs["src"])
    assert gt.shape == (512, 512, 3) and np.array_equal(gt, face_image(0))  # lossless, full size
    assert not dom.find("section", id="bench-2").find_all("div", cls="compare")  # LQ only: nothing to compare


# ---------------------------------------------------------------- files, errors, CLI


def test_optional_files_may_be_absent(tmp_path):
    run = make_run(tmp_path, n_images=3, save_images=False, gains=False, profile=False, manifest=False)
    (run / "per_image.parquet").unlink()
    dom = Tree(render_report(run).read_text()).root
    missing = dom.find(id="missing-files").text
    for f in ("manifest.json", "per_image.parquet", "gains.csv", "profile.csv"):
        assert f in missing
    assert [r.attrs["data-method"] for r in dom.find("table", id="overall").find("tbody").find_all("tr")] == EXPECTED_ORDER
    assert not dom.find_all("div", cls="pi-table") and not dom.find_all("div", cls="tile")


def test_missing_summary_names_file_and_fix(tmp_path):
    with pytest.raises(UserError, match=r"summary\.csv.*bfrbench run"):
        render_report(tmp_path)
    with pytest.raises(UserError, match="no such run folder"):
        render_report(tmp_path / "nope")


def test_malformed_inputs_name_the_file(tmp_path):
    run = make_run(tmp_path, n_images=2, save_images=False)
    s = pd.read_csv(run / "summary.csv")
    s.drop(columns=["higher_better"]).to_csv(run / "summary.csv", index=False)
    with pytest.raises(UserError, match=r"summary\.csv: missing column\(s\) higher_better"):
        render_report(run)
    s.assign(standin="maybe").to_csv(run / "summary.csv", index=False)
    with pytest.raises(UserError, match=r"summary\.csv column standin: 'maybe' is not a boolean"):
        render_report(run)
    s.to_csv(run / "summary.csv", index=False)
    (run / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match=r"manifest\.json: not valid JSON"):
        render_report(run)


def test_cli_report(run_dir, tmp_path, capsys):
    from bench.cli import main

    out = tmp_path / "cli.html"
    assert main(["report", str(run_dir), "--out", str(out), "--no-images"]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_boolean_and_name_parsing(tmp_path):
    """CSV flags written as strings parse; a method literally called 'None' stays a name."""
    run = make_run(tmp_path, n_images=2, save_images=False)
    s = pd.read_csv(run / "summary.csv")
    s.loc[s["method"] == "lq", ["method", "method_name"]] = "None"
    s["standard"] = s["standard"].map({True: "true", False: "false"})
    s.to_csv(run / "summary.csv", index=False)
    summary = load_run(run).summary
    assert "None" in set(summary["method"])
    assert summary["standard"].dtype == bool
    assert set(summary.loc[~summary["standard"], "metric"]) == {m for m, v in METRICS.items() if not v["standard"]}


def test_runner_gain_rows_and_skip_rows(tmp_path):
    """A schema-1 summary.csv (a ``kind`` column with gain rows "COND vs BASE") still renders: the gain rows
    are left out of the scores (gains.csv holds them), and skip rows show "REASON | fix: FIX"."""
    run = make_run(tmp_path, n_images=3, save_images=False)
    s = pd.read_csv(run / "summary.csv")
    s["kind"] = "score"
    s["ci_low"] = s["ci_high"] = float("nan")
    g = pd.read_csv(run / "gains.csv")
    gain_rows = pd.DataFrame({
        "dataset": g["dataset"], "method": g["cond_method"] + " vs " + g["base_method"], "method_name": g["cond_method"],
        "config_hash": "", "metric": g["metric"], "protocol": g["protocol"], "value": g["delta_mean"], "n": g["n"],
        "higher_better": g["higher_better"], "standard": True, "standin": False, "status": "ok", "reason": "",
        "kind": "gain", "ci_low": g["ci_low"], "ci_high": g["ci_high"],
    })
    skipped_method = s.iloc[[0]].assign(method="gfpgan", metric="*", status="skipped", value=float("nan"),
                                        reason="weights missing | fix: bfrbench fetch gfpgan-v1.4")
    skipped_metric = s.iloc[[0]].assign(metric="niqe", status="skipped", value=float("nan"),
                                        reason="params missing | fix: bfrbench fetch niqe-pris-params")
    pd.concat([s, gain_rows, skipped_method, skipped_metric]).to_csv(run / "summary.csv", index=False)
    (run / "manifest.json").unlink()
    dom = Tree(render_report(run, include_images=False).read_text()).root
    assert [r.attrs["data-method"] for r in dom.find("table", id="overall").find("tbody").find_all("tr")] == EXPECTED_ORDER
    verdicts = [r.find_all("td")[-1].text.strip() for r in dom.find("table", id="gains-table").find("tbody").find_all("tr")]
    assert verdicts == ["better", "n.s.", "worse"]
    rows = [[td.text.strip() for td in r.find_all("td")]
            for r in dom.find("table", id="skipped-table").find("tbody").find_all("tr")]
    assert ["method", "gfpgan", DS_A, "weights missing", "bfrbench fetch gfpgan-v1.4"] in rows
    assert ["metric", "niqe", DS_A, "params missing", "bfrbench fetch niqe-pris-params"] in rows
    assert "gains.csv" not in dom.find(id="missing-files").text


def test_profile_csv_from_bfrbench_profile(tmp_path):
    """profile.csv as `bfrbench profile` writes it (kind/name layout) renders, errors and notes included."""
    from bench.engine.profiling import ProfileRow, write_outputs

    run = make_run(tmp_path, n_images=2, save_images=False)
    write_outputs(run, [
        ProfileRow(kind="method", name="codeformer", batch_size=4, dtype="fp16", compile=True, device="cuda:0",
                   images=40, images_per_s=55.5, latency_p50_ms=70.0, latency_p95_ms=80.0, peak_mem_mb=2048.0,
                   data_wait_share=0.12, device_busy_share=0.8),
        ProfileRow(kind="metric", name="lpips", batch_size=16, dtype="fp32", device="cuda:0", images_per_s=400.0),
        ProfileRow(kind="method", name=EVIL, batch_size=64, dtype="fp32", device="cuda:0", status="error",
                   note="out of memory <oom>"),
    ], {})
    html = render_report(run, include_images=False).read_text()
    rows = Tree(html).root.find("table", id="profile-table").find("tbody").find_all("tr")
    cells = [[td.text.strip() for td in r.find_all("td")] for r in rows]
    assert cells[0][:6] == ["codeformer", "", "cuda:0", "fp16 +compile", "4", "55.50"] and cells[0][9] == "12%"
    assert cells[1][:2] == ["", "lpips"]
    assert cells[2][0].startswith(EVIL) and cells[2][-1] == "errorout of memory <oom>"
    assert "<oom>" not in html
