"""Suite files and score formulas are validated before any work: every hostile or mistyped field is one
BfrBenchError line, exit 2, and nothing is written (issue 20 items 9, 11, 13)."""
from __future__ import annotations

import math

import pytest

from bench.cli import main
from bench.core.errors import BfrBenchError, UserError
from bench.suites import parse_suite
from bench.suites.formula import Formula

BASE = {"name": "s", "datasets": ["demo"], "metrics": ["psnr"]}


def suite_with(**fields):
    return dict(BASE, **fields)


@pytest.mark.parametrize("fields, match", [
    ({"year": 1e400}, "year"),
    ({"year": float("nan")}, "year"),
    ({"year": "2025x"}, "year"),
    ({"year": True}, "year"),
    ({"datasets": [{"name": "a", "threshold": "abc"}]}, "threshold"),
    ({"datasets": [{"name": "a", "threshold": float("nan")}]}, "threshold"),
    ({"datasets": [{"name": "a", "images": -3}]}, "images"),
    ({"datasets": [{"name": "a", "images": 2.5}]}, "images"),
    ({"datasets": [{"name": ["x"]}]}, "name"),
    ({"datasets": "demo"}, "datasets must be a list"),
    ({"datasets": ["a", "a"]}, "listed twice"),
    ({"metrics": "psnr"}, "metrics must be a list"),
    ({"methods": "lq"}, "methods must be a list"),
    ({"run": [1, 2]}, "run must be a mapping"),
    ({"run": {"batch_size": "abc"}}, "batch_size"),
    ({"run": {"batch_size": 0}}, "batch_size"),
    ({"run": {"seed": 99999999999}}, "seed"),
    ({"run": {"dtype": "fp8"}}, "dtype"),
    ({"run": {"save_images": "yes"}}, "save_images"),
    ({"run": {"weights": [1]}}, "weights"),
    ({"run": {"out": "/tmp/anywhere"}}, "does not choose where results go"),
    ({"run": {"datasets": ["x"]}}, "run.datasets"),
    ({"data": [1]}, "data must be a mapping"),
    ({"data": {"root": ["x"]}}, "data.root"),
    ({"title": {"a": 1}}, "title"),
    ({"score": "X"}, "score must be a mapping"),
    ({"score": {"formula": "abs(P, S)", "variables": {"P": "psnr", "S": "psnr"}}}, r"abs\(\) takes 1"),
    ({"score": {"formula": "P + " + "9" * 400, "variables": {"P": "psnr"}}}, "finite float"),
    ({"score": {"formula": " + ".join(["P"] * 1200), "variables": {"P": "psnr"}}}, "characters|deeper"),
    ({"score": {"formula": "-" * 100_000 + "P", "variables": {"P": "psnr"}}}, "characters"),
    ({"score": {"formula": "-" * 1500 + "P", "variables": {"P": "psnr"}}}, "deeper|valid"),
    ({"score": {"formula": "max()", "variables": {}}}, "not allowed|takes"),
    ({"score": {"formula": "P", "variables": [1]}}, "variables"),
    ({"gate": {"metric": "psnr", "max_below": "ten"}, "datasets": [{"name": "a", "threshold": 0.5}]}, "max_below"),
    ({"gate": {"metric": "psnr", "max_below": 1, "colour": 1}, "datasets": [{"name": "a", "threshold": 0.5}]},
     "unknown keys"),
])
def test_mistyped_suite_fields_are_one_user_error(fields, match):
    with pytest.raises(UserError, match=match) as err:
        parse_suite(suite_with(**fields), "s.yaml")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", [
    "name: s\ndatasets: [demo]\nmetrics: psnr\n",
    "name: s\ndatasets: [demo]\nmetrics: [psnr]\nyear: 1e400\n",
    "name: s\ndatasets: [demo]\nmetrics: [psnr]\nyear: .nan\n",
    "name: s\ndatasets: [demo]\nmetrics: [psnr]\nrun: [1, 2]\n",
    "name: s\ndatasets: [demo]\nmetrics: [psnr]\ndata: [1]\n",
    "name: s\ndatasets: [{name: demo, threshold: abc}]\nmetrics: [psnr]\n",
    "name: s\ndatasets: [demo]\nmetrics: [psnr]\nscore: {formula: 'abs(P, P)', variables: {P: psnr}}\n",
    f"name: s\ndatasets: [demo]\nmetrics: [psnr]\nscore: {{formula: '{'9' * 400}', variables: {{}}}}\n",
    "name: s\ndatasets: [demo]\nmetrics: [psnr]\nrun: {out: HIJACK}\n",
])
def test_a_hostile_suite_file_stops_the_run_before_any_work(tmp_path, capsys, text):
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("HIJACK", str(tmp_path / "hijacked")))
    out = tmp_path / "run"
    assert main(["run", "--suite", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bfrbench: error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "hijacked").exists()


def test_suite_with_datasets_is_refused(tmp_path, capsys):
    assert main(["run", "--suite", "paper-celeba", "--datasets", "demo", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--suite and --datasets" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_out_must_be_new_empty_or_an_earlier_run_folder(tmp_path, capsys):
    from bench.cli.run import check_out_folder

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "index.html").write_text("mine")
    assert main(["run", "--datasets", "demo", "--methods", "lq", "--out", str(precious)]) == 2
    assert "not a bfrbench run folder" in capsys.readouterr().err
    assert (precious / "index.html").read_text() == "mine" and sorted(p.name for p in precious.iterdir()) == [
        "index.html"]
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        check_out_folder(a_file)
    check_out_folder(tmp_path / "new")  # new: fine
    (tmp_path / "empty").mkdir()
    check_out_folder(tmp_path / "empty")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / ".bfrbench.lock").write_text("")
    (earlier / "summary.csv").write_text("")
    check_out_folder(earlier)  # an earlier run: resumed


def test_formula_errors_after_validation_cannot_happen():
    f = Formula("max(0, (10 - N)/10) + abs(P) + min(P, N, 3)")
    assert f.evaluate({"N": 4.0, "P": -2.0}) == pytest.approx(0.6 + 2 - 2)
    assert math.isnan(f.evaluate({"N": "abc", "P": 1.0}))  # never a partial score
    assert math.isnan(Formula("P * 1e308 * 10").evaluate({"P": 1.0}))  # an overflow is no score
    with pytest.raises(BfrBenchError):
        Formula("P" * 3000)
