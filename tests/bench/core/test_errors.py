"""The one error hierarchy: every user-facing error is a BfrBenchError carrying its fix, shown once by the CLI."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.core.errors import (
    BfrBenchError,
    ImageReadError,
    MetricUnavailable,
    UnknownNameError,
    UserError,
    format_error,
)
from bench.weights import MissingWeightsError, WeightsFileError


def test_every_user_facing_error_is_a_bfrbench_error_with_its_fix(tmp_path: Path) -> None:
    missing = MissingWeightsError("codeformer", tmp_path / "codeformer.pth")
    assert missing.fix == "bfrbench fetch codeformer"
    assert isinstance(missing, FileNotFoundError)  # callers that catch OSError still see it
    assert str(missing).startswith("weights 'codeformer' not found: expected at ")
    bad = WeightsFileError(tmp_path / "x.pth", "truncated", "download it again")
    assert bad.fix == "download it again" and str(bad).endswith("; fix: download it again")
    img = ImageReadError(tmp_path / "a.png", "empty file (0 bytes)")
    assert img.fix.startswith("re-download") and isinstance(img, ValueError)
    unknown = UnknownNameError("unknown metric 'psnrr'; did you mean 'psnr'?")
    assert str(unknown) == "unknown metric 'psnrr'; did you mean 'psnr'?"  # not KeyError's quoted repr
    for exc in (missing, bad, img, unknown, UserError("x"), MetricUnavailable("m: y")):
        assert isinstance(exc, BfrBenchError)


def test_metric_unavailable_because_keeps_the_cause_and_its_fix(tmp_path: Path) -> None:
    cause = MissingWeightsError("inception-fid", tmp_path / "pt_inception.pth")
    err = MetricUnavailable.because("fid", cause, "or pass stats=FILE")
    assert str(err) == f"fid: {cause}; or pass stats=FILE"
    assert err.fix == "bfrbench fetch inception-fid"
    assert MetricUnavailable.because("lpips", ValueError("boom")).fix == ""


def test_format_error_adds_the_fix_once() -> None:
    assert format_error(BfrBenchError("no GPU", fix="use --device cpu")) == "no GPU (fix: use --device cpu)"
    assert format_error(BfrBenchError("no GPU; use --device cpu", fix="use --device cpu")) == "no GPU; use --device cpu"
    assert format_error(UserError("bad flag")) == "bad flag"


def test_cli_shows_a_metric_unavailable_as_one_line_with_its_fix(monkeypatch, capsys) -> None:
    from bench.cli import app

    def boom(args):
        raise MetricUnavailable("niqe: the NIQE parameters are missing", fix="bfrbench fetch niqe-params")

    parser = app.build_parser()
    monkeypatch.setattr(app, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions:  # route `list` to the failing command
        action.choices["list"].set_defaults(_main=boom)
    assert app.main(["list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bfrbench: error: niqe: the NIQE parameters are missing (fix: bfrbench fetch niqe-params)"]


def test_unknown_names_raise_the_hierarchy_s_error() -> None:
    from bench.core.registry import Registry

    reg: Registry = Registry("metric")
    reg.add("psnr", lambda: None)
    with pytest.raises(UnknownNameError, match="psnr"):
        reg.entry("psnrr")


def test_one_yaml_loader_reads_1e_4_as_a_float_and_names_a_bad_file(tmp_path: Path) -> None:
    from bench.core.options import read_yaml_file

    good = tmp_path / "cfg.yaml"
    good.write_text("lr: 1e-4\nsteps: 10\n", encoding="utf-8")
    assert read_yaml_file(good) == {"lr": 1e-4, "steps": 10}
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.yaml: not valid YAML"):
        read_yaml_file(bad, "suite")
    with pytest.raises(UserError, match=r"missing\.yaml: cannot read the suite"):
        read_yaml_file(tmp_path / "missing.yaml", "suite")
