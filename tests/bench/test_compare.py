"""``bfrbench compare RUN --against TABLE``: paper value, ours, diff, within tolerance; comparison.csv; the report."""
from __future__ import annotations

import pandas as pd
import pytest

from bench.cli import main
from bench.compare import Tolerance, builtin_tables, load_table
from bench.config import RunConfig
from bench.core.errors import UserError
from bench.engine.runner import Runner
from tests._helpers.runner_helpers import make_folder, register


def test_builtin_tables_carry_the_protocol_notes_numbers_and_a_source():
    import re as regex

    re_table = regex.compile(r"\b[Tt]able\b")
    assert {"codeformer-paper", "dmdp-fr-reeval", "pmrf-paper"} <= set(builtin_tables())
    cf = {(e.dataset, e.metric): e.value for e in load_table("codeformer-paper").entries}
    assert cf[("celeba-test", "lpips")] == 0.299 and cf[("celeba-test", "fid")] == 60.62
    assert cf[("celeba-test", "psnr")] == 22.18 and cf[("webphoto-test", "fid")] == 83.19
    by_method = {(e.dataset, e.method, e.metric): e.value for e in load_table("codeformer-paper").entries}
    assert by_method[("lfw-test", "codeformer", "fid")] == 52.02 and by_method[("lfw-test", "gpen", "fid")] == 57.58
    re = {(e.dataset, e.metric): e.value for e in load_table("dmdp-fr-reeval").entries}
    assert re[("lfw-test", "musiq")] == 71.43 and re[("wider-test", "fid")] == 40.01
    for name in builtin_tables():  # the paper and its table, never a notes file outside the repository
        source = load_table(name).source
        assert "notes/" not in source and "protocol.md" not in source and re_table.search(source), name
    assert Tolerance(rel=0.05).allowed(60.0) == pytest.approx(3.0)
    assert Tolerance(abs=0.3, rel=0.01).allowed(10.0) == pytest.approx(0.3)  # the wider bound


def test_compare_flags_a_value_outside_tolerance(tmp_path, capsys):
    root = make_folder(tmp_path / "setC", 3)
    ds = register(root, "compare")
    cfg = RunConfig(datasets=[ds], methods=["lq", "classical"], metrics=["test-mae"], out=str(tmp_path / "run"),
                    device="cpu", batch_size=2, workers=0, quiet=True, report=True)
    from bench.cli.run import present

    outcome = Runner(cfg).run()
    present(outcome, cfg)
    s = pd.read_csv(tmp_path / "run" / "summary.csv").set_index("method")
    lq, cl = float(s.loc["lq", "value"]), float(s.loc["classical", "value"])
    table = tmp_path / "table.yaml"
    table.write_text(f"""
name: mytable
source: "made up for the test"
tolerance: {{test-mae: {{abs: 0.5}}}}
entries:
  - {{dataset: setC, method: lq, metric: test-mae, value: {lq + 0.4}}}
  - {{dataset: setC, method: classical, metric: test-mae, value: {cl + 2.0}}}
  - {{dataset: setC, method: paper-method, metric: test-mae, value: 1.0}}
  - {{dataset: setC, method: lq, metric: test-mae, value: {lq * 1.1}, tolerance: {{rel: 0.2}}}}
""")
    rc = main(["compare", str(tmp_path / "run"), "--against", str(table), "--map", "paper-method=nothing"])
    assert rc == 1  # one value is outside its tolerance
    out = capsys.readouterr().out
    assert "within tolerance: 2, outside: 1, not in this run: 1" in out
    c = pd.read_csv(tmp_path / "run" / "comparison.csv")
    assert list(c.within) == ["yes", "no", "not in run", "yes"]
    assert c.loc[1, "diff"] == pytest.approx(-2.0) and c.loc[1, "paper"] == pytest.approx(cl + 2.0)
    assert c.loc[2, "method"] == "nothing"  # --map renamed the table's method
    html = (tmp_path / "run" / "index.html").read_text()
    assert 'id="reproduction"' in html and "made up for the test" in html
    with pytest.raises(UserError, match="built-in: codeformer-paper"):
        load_table("nope")


def _synthetic_run(tmp_path):
    """A run folder written by hand: labels a spreadsheet would run, one value over 9 of 10 images."""
    import math

    from bench.core.csvsafe import write_frame

    run = tmp_path / "synth"
    run.mkdir()
    rows, per = [], []
    for method, value, n in (("yes", 20.0, 10), ("+plus", 21.0, 10), ("=eq", 22.0, 10), ("@at", 23.0, 9)):
        rows.append(dict(dataset="folder:data/celeba", method=method, method_name=method, config_hash="", metric="psnr",
                         protocol="basicsr", value=value, n=n, higher_better=True, standard=True, standin=False,
                         status="ok", reason="", kind="score", ci_low=math.nan, ci_high=math.nan, n_inf=0))
        for i in range(10):
            ok = i < n
            per.append(dict(dataset="folder:data/celeba", method=method, config_hash="", image=f"i{i}",
                            lq_path=None, gt_path=None, out_path=None, status="ok" if ok else "error", error="",
                            psnr=value if ok else math.nan))
    write_frame(pd.DataFrame(rows), run / "summary.csv")
    pd.DataFrame(per).to_parquet(run / "per_image.parquet")
    return run


def _table(tmp_path, entries, tolerance="{psnr: {abs: 0.5}}"):
    path = tmp_path / "t.yaml"
    path.write_text(f"name: t\nsource: made up\ntolerance: {tolerance}\nentries:\n" + "".join(
        f"  - {{dataset: celeba-test, method: {m}, metric: psnr, value: {v}}}\n" for m, v in entries))
    return path


def test_map_is_text_escaped_labels_are_found_datasets_map_and_n_is_noted(tmp_path, capsys):
    run = _synthetic_run(tmp_path)
    table = _table(tmp_path, [("theirs", 20.0), ("p", 21.0), ("e", 22.0), ("a", 23.0)])
    rc = main(["compare", str(run), "--against", str(table), "--map", "theirs=yes", "--map", "p=+plus",
               "--map", "e==eq", "--map", "a=@at", "--map-dataset", "celeba-test=folder:data/celeba", "--no-report"])
    out = capsys.readouterr().out
    assert rc == 0, out
    c = pd.read_csv(run / "comparison.csv")
    from bench.core.csvsafe import restore_frame

    c = restore_frame(c)
    assert list(c.method) == ["yes", "+plus", "=eq", "@at"]  # not True; the CSV escape undone
    assert list(c.within) == ["yes"] * 4
    assert c.note.fillna("").tolist() == ["", "", "", "over 9 of 10 images"]
    assert "over 9 of 10 images" in out and "1 value(s) over fewer images" in out


def test_a_comparison_of_nothing_fails_with_one_line(tmp_path, capsys):
    run = _synthetic_run(tmp_path)
    table = _table(tmp_path, [("codeformer", 20.0)])
    rc = main(["compare", str(run), "--against", str(table), "--no-report"])
    out, err = capsys.readouterr()
    assert rc == 2 and "compared nothing" in err and "--map-dataset" in err and len(err.strip().splitlines()) == 1
    assert not (run / "comparison.csv").exists()


@pytest.mark.parametrize("tolerance", ["{psnr: {abs: .nan}}", "{psnr: {abs: .inf}}", "{psnr: {rel: -0.1}}",
                                       "{psnr: {abs: abc}}", "{psnr: {abs: true}}", "[1, 2]"])
def test_tolerances_that_are_not_finite_non_negative_numbers_are_refused(tmp_path, tolerance):
    with pytest.raises(UserError, match="tolerance|abs|rel"):
        load_table(str(_table(tmp_path, [("yes", 20.0)], tolerance=tolerance)))


MALFORMED = [
    "entries: 3\nsource: x",
    "entries: [1, 2]\nsource: x",
    "entries: [{dataset: a, method: b, metric: c, value: abc}]\nsource: x",
    "entries: [{dataset: a, method: b, metric: c, value: 1e400}]\nsource: x",
    "entries: [{dataset: [1], method: b, metric: c, value: 1}]\nsource: x",
    "entries: [{dataset: a, method: b, metric: c, value: 1, tolerance: 5}]\nsource: x",
    "entries: [{dataset: a, method: b, metric: c, value: 1, colour: red}]\nsource: x",
    "entries: [{dataset: a, method: b, metric: c, value: 1}]\nsource: {a: 1}",
    "entries: [{dataset: a, method: b, metric: c, value: 1}]\nsource: x\ntolerance: [1]",
    "- just\n- a list",
    "{{{{",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_a_malformed_table_is_one_line_exit_2(tmp_path, capsys, text):
    run = _synthetic_run(tmp_path)
    (tmp_path / "bad.yaml").write_text(text)
    rc = main(["compare", str(run), "--against", str(tmp_path / "bad.yaml"), "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("bfrbench: error:") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_n_is_shown_beside_every_compared_value(tmp_path, capsys):
    run = _synthetic_run(tmp_path)
    (run / "index.html").write_text("")
    table = _table(tmp_path, [("a", 23.0)])
    assert main(["compare", str(run), "--against", str(table), "--map", "a=@at",
                 "--map-dataset", "celeba-test=folder:data/celeba"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("dataset"))
    row = next(line for line in out.splitlines() if line.startswith("folder:data/celeba"))
    assert header.split()[:7] == ["dataset", "method", "metric", "paper", "ours", "n", "diff"]
    assert row.split()[5] == "9" and "over 9 of 10 images" in row
    html = (run / "index.html").read_text()
    assert 'id="reproduction"' in html and ">9 <span class=\"badge missing\">over 9 of 10 images</span>" in html


def test_pmrf_paper_table_lists_its_celeba_rows_and_no_fid_of_another_protocol(tmp_path, capsys):
    """The PMRF paper's CelebA-Test table: PMRF and VQFRv2 rows as printed; its torch-fidelity FID is left out."""
    import math

    from bench.core.csvsafe import restore_frame, write_frame

    table = load_table("pmrf-paper")
    got = {(e.dataset, e.method, e.metric): e.value for e in table.entries}
    assert got[("celeba-test", "pmrf", "psnr")] == 26.37 and got[("celeba-test", "pmrf", "ssim")] == 0.7073
    assert got[("celeba-test", "pmrf", "lpips")] == 0.3470 and got[("celeba-test", "pmrf", "ids")] == 30.67
    assert got[("celeba-test", "vqfr", "psnr")] == 23.23 and got[("celeba-test", "vqfr", "lmd")] == 3.053
    assert got[("celeba-test", "codeformer", "lpips")] == 0.3432  # not the CodeFormer paper's 0.299: another protocol
    assert {e.metric for e in table.entries} == {"psnr", "ssim", "lpips", "niqe", "ids", "lmd"}  # no fid/kid
    assert "torch-fidelity" in table.source and "b6f16a41af45646a6a726f4fd55459b382594633" in table.source
    assert "calculate_psnr_pt" in table.protocol
    # a run with PMRF and VQFR on celeba-test: compare finds their rows by the suites' labels and metric names
    run = tmp_path / "run"
    run.mkdir()
    rows = [dict(dataset="celeba-test", method=m, method_name=m, config_hash="", metric=k, protocol="p", value=v,
                 n=3000, higher_better=k in {"psnr", "ssim"}, standard=True, standin=False, status="ok", reason="",
                 kind="score", ci_low=math.nan, ci_high=math.nan, n_inf=0)
            for m, k, v in (("pmrf", "psnr", 26.2), ("pmrf", "ids", 33.0), ("vqfr", "lpips", 0.3650))]
    write_frame(pd.DataFrame(rows), run / "summary.csv")
    assert main(["compare", str(run), "--against", "pmrf-paper", "--no-report"]) == 1  # ids is 2.3 degrees off
    c = restore_frame(pd.read_csv(run / "comparison.csv")).set_index(["method", "metric"])
    assert c.loc[("pmrf", "psnr"), "within"] == "yes" and c.loc[("pmrf", "psnr"), "paper"] == 26.37
    assert c.loc[("pmrf", "ids"), "within"] == "no" and c.loc[("vqfr", "lpips"), "within"] == "yes"
    assert c.loc[("codeformer", "psnr"), "within"] == "not in run" and (c.table == "pmrf-paper").all()
    assert "within tolerance: 2, outside: 1" in capsys.readouterr().out
