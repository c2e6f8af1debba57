"""``bfrbench table``: golden LaTeX on a demo-like run and on a merge of two runs, LaTeX that compiles,
Markdown that renders, escaping, and a protocol conflict refused.

Set BFRBENCH_UPDATE_GOLDEN=1 to rewrite the golden files (then read the diff before committing).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli.app import main as cli
from bench.core.errors import UserError
from reports.merge import merge_runs
from reports.paper_table import TableSpec, build_table, default_decimals
from reports.table_formats import latex_document, latex_escape, markdown, markdown_escape, render
from tests._helpers.report_synth import DS_A, EVIL, make_run
from tests._helpers.table_synth import second_run, write_run

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
PAPER = ["--metrics", "psnr", "lpips", "fid", "--datasets", DS_A]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tables")
    return make_run(root / "a", n_images=10), second_run(root / "b" / "run2", n=10)


def _table(capsys, *argv: str) -> str:
    assert cli(["table", *argv]) == 0
    return capsys.readouterr().out


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("BFRBENCH_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (BFRBENCH_UPDATE_GOLDEN=1 rewrites it)"


def test_latex_golden_demo_run(runs, capsys):
    text = _table(capsys, str(runs[0]), "--format", "latex", *PAPER, "--ci", "--mark-ties",
                  "--label", "psnr", "PSNR", "--caption", "Results on CelebA_Test & co.", "--tex-label", "tab:main")
    _golden("table_demo.tex", text)
    # what the golden file must hold, said once more in words
    assert r"PSNR$\uparrow$" in text and r"lpips$\downarrow$" in text
    assert r"\textbf{26.00}" in text and r"\underline{25.00}" in text  # psnr: best codeformer+iqp, then codeformer
    assert r"\textbf{0.2000}" in text  # lpips: lower is better, the <script> method is best
    assert latex_escape(EVIL) in text and EVIL not in text
    assert r"CelebA\_Test \& co." in text
    assert "2000 resamples, seed 0" in text and "Holm" in text


def test_latex_golden_merge_of_two_runs(runs, capsys):
    text = _table(capsys, str(runs[0]), str(runs[1]), "--format", "latex", *PAPER, "--mark-ties",
                  "--methods", "codeformer+iqp", "gfpgan", "restoreformer", "codeformer", "lq")
    _golden("table_merge.tex", text)
    rows = [ln.split(" & ")[0] for ln in text.splitlines() if ln.endswith(r"\\") and " & " in ln]
    assert rows[1:] == ["codeformer+iqp", "gfpgan", "restoreformer", "codeformer", "lq"]  # the order asked for
    assert r"\underline{47.00}" in text  # FID of restoreformer (from the second run) is second best


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="no TeX engine (scripts/system-deps.sh installs texlive-latex-base as root)")
@pytest.mark.parametrize("merge", [False, True])
def test_latex_compiles(runs, tmp_path, merge):
    results = merge_runs([runs[0], runs[1]] if merge else [runs[0]])
    spec = TableSpec(ci=True, mark_ties=True, labels={EVIL: EVIL + " 100% $x_1$ #&~^\\{}|\"", DS_A: "CelebA_Test"})
    tex = tmp_path / "t.tex"
    tex.write_text(latex_document(render(build_table(results, spec), "latex", caption="a_b", label="tab:x")))
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Missing character" not in log and "Undefined control sequence" not in log


def _gfm_rows(text: str) -> list[list[str]]:
    """The cells of a GFM table, split on unescaped pipes (the structure a Markdown renderer sees)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]


def test_markdown_is_a_well_formed_table(runs, capsys):
    text = _table(capsys, str(runs[0]), str(runs[1]), "--ci", "--mark-ties")
    rows = _gfm_rows(text)
    width = len(rows[0])
    assert all(len(r) == width for r in rows), "a cell broke the table (unescaped pipe?)"
    assert all(re.fullmatch(r":?-{3,}:?", c) for c in rows[1])
    assert len(rows) == 2 + 6  # header, delimiter, 6 methods
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert re.search(r"\*\*26\.00\*\* \u00b1 \d\.\d\d<sup>[a-z]+</sup>", text)
    assert "psnr\u2191" in rows[0][1] and "lpips\u2193" in rows[0][2]
    # what a Markdown renderer makes of it, when one is installed
    mdit = pytest.importorskip("markdown_it", reason="markdown-it-py not installed: the structural check above stands")
    html = mdit.MarkdownIt("gfm-like").render(text)
    assert html.count("<tr>") == 7 and "<script>" not in html


def test_protocol_conflict_is_refused_in_one_line(runs, tmp_path, capsys):
    other = second_run(tmp_path / "ycbcr", n=10, psnr_protocol="basicsr-y")
    assert cli(["table", str(runs[0]), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "protocol conflict" in err and "'basicsr-rgb'" in err and "'basicsr-y'" in err
    assert f"'basicsr-rgb' in {runs[0].name}, 'basicsr-y' in ycbcr" in err
    # leaving the metric out is the fix it names
    assert cli(["table", str(runs[0]), str(other), "--metrics", "lpips"]) == 0


def test_values_come_from_results_json(tmp_path):
    """The merge reads each folder's results.json (what other tools read), written by the run folder."""
    run = write_run(tmp_path / "r", {("d", "m", "psnr"): np.array([20.0, 21.0])})
    doc = json.loads((run / "results.json").read_text())
    assert doc["results"]["d"]["m"]["psnr"]["value"] == 20.5
    doc["results"]["d"]["m"]["psnr"]["value"] = 30.25
    (run / "results.json").write_text(json.dumps(doc))
    assert merge_runs([run]).scores["value"].tolist() == [30.25]
    (run / "results.json").unlink()  # an older folder: built from summary.csv
    assert merge_runs([run]).scores["value"].tolist() == [20.5]


def test_a_dataset_with_other_images_is_refused(tmp_path):
    a = second_run(tmp_path / "a", fingerprint="f" * 64)
    b = write_run(tmp_path / "b", {("synth-celeba", "x", "psnr"): np.array([20.0, 21.0])}, fingerprint="e" * 64)
    with pytest.raises(UserError, match=r"dataset 'synth-celeba' holds other images in a than in b"):
        merge_runs([a, b])
    same = write_run(tmp_path / "same", {("synth-celeba", "x", "psnr"): np.array([20.0, 21.0])}, fingerprint="f" * 64)
    assert len(merge_runs([a, same]).scores) == 7


def test_two_values_for_one_cell_are_refused(tmp_path):
    a = write_run(tmp_path / "a", {("d", "m", "psnr"): np.array([20.0, 21.0])})
    same = write_run(tmp_path / "same", {("d", "m", "psnr"): np.array([20.0, 21.0])})
    b = write_run(tmp_path / "b", {("d", "m", "psnr"): np.array([20.0, 22.0])})
    assert len(merge_runs([a, same]).scores) == 1  # the same result twice is one row
    with pytest.raises(UserError, match=r"method 'm' has two psnr values on 'd': 20.5 in a, 21 in b"):
        merge_runs([a, b])


def test_order_best_second_and_unequal_n(tmp_path):
    v = {("d", "x", "psnr"): np.array([30.0, 30.0, 30.0]), ("d", "y", "psnr"): np.array([29.0, 29.0, np.nan]),
         ("d", "z", "psnr"): np.array([29.001, 29.001, 29.001]), ("d", "x", "lpips"): np.array([0.3, 0.3, 0.3]),
         ("d", "y", "lpips"): np.array([0.2, 0.2, 0.2]), ("d", "z", "lpips"): np.array([0.1, 0.1, 0.1])}
    results = merge_runs([write_run(tmp_path / "r", v)])
    t = build_table(results, TableSpec(metrics=["lpips", "psnr"], methods=["z", "y", "x"]))
    assert [c.metric for c in t.columns] == ["lpips", "psnr"] and t.methods == ["z", "y", "x"]
    psnr = {m: t.cells[(m, 1)] for m in t.methods}
    assert psnr["x"].best and not psnr["x"].second
    # y and z print the same (29.00): both second, not one by a rounding hair
    assert psnr["y"].second and psnr["z"].second
    assert psnr["y"].short_n and psnr["y"].n == 2 and not psnr["z"].short_n
    lp = {m: t.cells[(m, 0)] for m in t.methods}
    assert lp["z"].best and lp["y"].second and not lp["x"].best  # lower is better
    md = markdown(t)
    assert "<u>29.00</u> (n=2)" in md and "n: a value over fewer images" in md


def test_bold_and_underline_follow_the_one_ranking_rule(tmp_path):
    """Marks go only to values bench.engine.ranking.rank ranks, in its order (paired means), not the printed ones."""
    v = {("d", "x", "psnr"): np.array([25.0, 25.0, 40.0]), ("d", "y", "psnr"): np.array([28.0, 28.0, np.nan]),
         ("d", "z", "psnr"): np.array([20.0, 20.0])}
    fid = {("d", "x", "fid"): 40.0, ("d", "y", "fid"): 50.0, ("d", "z", "fid"): 30.0}  # z's over 2 images, not 3
    t = build_table(merge_runs([write_run(tmp_path / "r", v, set_level=fid)]), TableSpec())
    col = {c.metric: i for i, c in enumerate(t.columns)}
    psnr = {m: t.cells[(m, col["psnr"])] for m in t.methods}
    # printed: x 30.00 (n=3) > y 28.00 (n=2); on the 2 images all share: y 28 > x 25 > z 20
    assert psnr["y"].best and psnr["x"].second and not psnr["x"].best and not psnr["z"].second
    fids = [t.cells[(m, col["fid"])] for m in t.methods]
    assert not any(c.best or c.second for c in fids)  # a set-level value over different images is not ranked
    md = markdown(t)
    assert "**28.00**" in md and "**30.00**" not in md and "**30.0**" not in md


def test_unknown_names_are_one_line_errors(runs, capsys):
    assert cli(["table", str(runs[0]), "--metrics", "psnr", "nope"]) == 2
    err = capsys.readouterr().err
    assert "metric 'nope' not in the run(s)" in err and "psnr" in err
    for bad in (["--alpha", "1.5"], ["--alpha", "nan"], ["--bootstrap", "5"], ["--decimals", "psnr", "x"],
                ["--format", "csv", "--standalone"]):
        assert cli(["table", str(runs[0]), *bad]) == 2, bad
        assert "Traceback" not in capsys.readouterr().err


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alpha=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.05, 1.0])),
       boot=st.integers(-10, 2_000_000), seed=st.integers(-5, 2**64), decimals=st.text(max_size=6))
def test_numeric_arguments_give_a_table_or_one_line(runs, capsys, alpha, boot, seed, decimals):
    """Any --alpha/--bootstrap/--seed/--decimals: a table (exit 0) or a one-line error (exit 2), never a traceback."""
    argv = ["table", str(runs[0]), "--metrics", "psnr", "--alpha", repr(alpha), "--bootstrap", str(min(boot, 500)),
            "--seed", str(seed), "--decimals", "psnr", decimals, "--format", "csv"]
    try:
        rc = cli(argv)
    except SystemExit as exc:  # argparse refuses a value it cannot parse (exit 2, its usage line)
        rc = exc.code
    err = capsys.readouterr().err
    assert rc in (0, 2) and "Traceback" not in err
    ok = 0 < alpha < 1 and 100 <= min(boot, 500) and 0 <= seed < 2**63 and decimals.strip().isdigit() \
        and decimals.isascii() and 0 <= int(decimals) <= 10
    assert (rc == 0) == ok, (argv, err)


def test_csv_and_json_carry_the_unrounded_numbers(runs, capsys):
    text = _table(capsys, str(runs[0]), "--format", "csv", "--ci", *PAPER)
    from io import StringIO

    df = pd.read_csv(StringIO(text))
    row = df[(df["method"] == "codeformer") & (df["metric"] == "psnr")].iloc[0]
    assert row["value"] == pytest.approx(25.0) and row["n"] == 10 and row["ci_low"] < 25 < row["ci_high"]
    assert bool(row["second"]) and not bool(row["best"])
    doc = json.loads(_table(capsys, str(runs[0]), "--format", "json", "--mark-ties", *PAPER))
    assert doc["schema"] == "bfrbench.table/1" and doc["significance"]["correction"] == "Holm"
    pairs = doc["significance"]["pairs"]
    assert len(pairs) == 2 * 6  # psnr and lpips: 4 methods, 6 pairs each; fid is set-level (no test)
    assert all(p["p_holm"] >= p["p"] for p in pairs)


def test_cli_writes_the_file_atomically(runs, tmp_path, capsys):
    out = tmp_path / "t.md"
    assert cli(["table", str(runs[0]), "--out", str(out)]) == 0
    assert out.read_text().startswith("| Method") and "wrote" in capsys.readouterr().err


def test_default_decimals_give_four_significant_figures():
    assert default_decimals([25.43, 24.1]) == 2 and default_decimals([0.3124]) == 4
    assert default_decimals([145.2]) == 1 and default_decimals([]) == 2 and default_decimals([0.0]) == 2


_LATEX_SPECIALS = set("\\&%$#_{}~^<>|\"")


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
def test_latex_escape_leaves_no_active_special(text):
    out = latex_escape(text)
    # remove the commands the escaper writes; what is left holds no special character
    bare = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater|textbar)\{\}", "", out)
    bare = re.sub(r"\{\\char34\}", "", bare)
    bare = re.sub(r"\\[&%$#_{}]", "", bare)
    assert not (set(bare) & _LATEX_SPECIALS), (text, out)
    assert "\n" not in out and "\r" not in out


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
def test_markdown_escape_keeps_one_cell_and_no_html(text):
    out = markdown_escape(text)
    assert "<" not in out and ">" not in out and "\n" not in out
    assert all(out[i - 1] == "\\" for i, ch in enumerate(out) if ch == "|")  # GFM never splits a cell there


def test_readme_table_commands_parse():
    """Every `bfrbench table` line of README's "From run to paper" parses with today's flags."""
    import shlex

    from bench.cli.app import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From run to paper", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    lines = [ln for ln in block.splitlines() if ln.startswith("bfrbench table")]
    assert len(lines) >= 4
    for line in lines:
        argv = shlex.split(line, comments=True)
        argv = argv[1:argv.index("&&")] if "&&" in argv else argv[1:]
        argv = argv[:argv.index(">")] if ">" in argv else argv
        args = build_parser().parse_args(argv)
        assert args.command == "table" and args.runs
