"""Run settings from the command line and --config: a valid RunConfig or one BfrBenchError line (issue 20,
items 6 and 11), checked before any work; hypothesis property tests of both parsers."""
from __future__ import annotations

import argparse
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.cli.run import add_arguments, config_from_args
from bench.config import INT_RANGES, RunConfig, check_settings
from bench.core.errors import BfrBenchError, UserError


def _one_error_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("bfrbench: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("args, match", [
    (["--limit", "-1"], "--limit must be a whole number from 1"),
    (["--limit", "0"], "--limit must be a whole number from 1"),
    (["--workers", "-1"], "--workers must be a whole number from 0"),
    (["--seed", "99999999999"], "--seed must be a whole number from 0 to 4294967295"),
    (["--seed", "-1"], "--seed"),
    (["--batch-size", "0"], "--batch-size must be a whole number from 1"),
    (["--batch-size", str(10**30)], "--batch-size"),
])
def test_bad_numbers_on_the_command_line_are_one_line_before_any_work(tmp_path, capsys, args, match):
    out = tmp_path / "run"
    line = _one_error_line(capsys, main(["run", "--out", str(out), "--device", "cpu", *args]))
    assert match in line
    assert not out.exists()  # refused before the run folder was made


@pytest.mark.parametrize("text, match", [
    ("batch_size: abc\n", "batch_size must be a whole number"),
    ("limit: -1\n", "limit must be a whole number from 1"),
    ("workers: [1]\n", "workers must be a whole number"),
    ("seed: 1e400\n", "seed must be a whole number"),
    ("seed: .nan\n", "seed must be a whole number"),
    ("datasets: demo\n", "datasets must be a non-empty list"),
    ("methods: [1, 2]\n", "methods must be a non-empty list"),
    ("weights: [1]\n", "weights must be a mapping"),
    ("compile: 'yes'\n", "compile must be true or false"),
    ("dtype: fp8\n", "dtype must be one of fp32, fp16, bf16"),
    ("device: 3\n", "device must be text"),
    ("- a\n- b\n", "a run config is a YAML mapping"),
    ("colour: red\n", "unknown keys"),
])
def test_wrong_types_in_a_config_file_are_one_line(tmp_path, capsys, text, match):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    out = tmp_path / "run"
    line = _one_error_line(capsys, main(["run", "--config", str(cfg), "--out", str(out)]))
    assert match in line and str(cfg) in line
    assert not out.exists()


def test_valid_settings_are_typed_and_the_api_is_checked_too(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("batch_size: 8.0\nlimit: 3\nseed: 4294967295\nworkers: 0\ndatasets: [demo]\n")
    rc = RunConfig.from_yaml(cfg)
    assert (rc.batch_size, rc.limit, rc.seed, rc.workers) == (8, 3, (1 << 32) - 1, 0)
    assert isinstance(rc.batch_size, int)
    rc.limit = -1  # set after construction, as the API may: the runner checks again
    with pytest.raises(UserError, match="limit must be a whole number from 1"):
        rc.validate()


# ---- property tests --------------------------------------------------------------------------
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=8)
_keys = st.sampled_from(sorted(f for f in RunConfig.__dataclass_fields__) + ["colour"])


def _valid_config(rc: RunConfig) -> None:
    for key, (lo, hi) in INT_RANGES.items():
        value = getattr(rc, key)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi), key
    assert rc.dtype in ("fp32", "fp16", "bf16") and rc.channels_last in ("auto", "on", "off")
    assert isinstance(rc.methods, list) and all(isinstance(m, str) for m in rc.methods)
    assert isinstance(rc.datasets, list) and rc.datasets and all(isinstance(d, str) for d in rc.datasets)
    for flag in ("compile", "save_images", "quiet", "report", "strict"):
        assert isinstance(getattr(rc, flag), bool)


def _config_mapping(data: dict) -> None:
    """Whatever a YAML run config holds: a RunConfig whose fields have their types and ranges, or one UserError."""
    data.pop("methods", None), data.pop("metrics", None)  # their items' option parsing has its own tests
    try:
        rc = RunConfig(**check_settings(data, "run.yaml"))
    except BfrBenchError as exc:
        assert "\n" not in str(exc)
        return
    _valid_config(rc)


def _numeric_argument(flag: str, value) -> None:
    """Numeric flags: argparse refuses non-integers (exit 2, usage line); integers give a valid config or one error."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    try:
        args = parser.parse_args([flag, str(value)])
    except (argparse.ArgumentError, SystemExit):
        with pytest.raises(ValueError):
            int(str(value))
        return
    try:
        rc = config_from_args(args)
    except BfrBenchError as exc:
        assert "\n" not in str(exc) and flag in str(exc)
        return
    _valid_config(rc)
    got = getattr(rc, flag[2:].replace("-", "_"))
    assert got == int(value) and not math.isnan(got)


def test_yaml_round_trip_of_a_valid_config(tmp_path):
    data = {"batch_size": 2, "limit": 5, "seed": 7, "workers": 1, "dtype": "bf16", "weights": {"gfpgan": "w.pth"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    rc = RunConfig.from_yaml(tmp_path / "c.yaml")
    assert {k: getattr(rc, k) for k in data} == data


_FAST = settings(max_examples=50, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
_LONG = settings(max_examples=1000, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
_MAPPINGS = given(st.dictionaries(_keys, _values, max_size=4))
_NUMBERS = given(st.sampled_from(["--limit", "--batch-size", "--workers", "--seed"]),
                 st.one_of(st.integers(), st.integers(-(10**40), 10**40), st.floats(allow_nan=True).map(str),
                           st.text(max_size=8)))
test_any_config_mapping_is_a_valid_config_or_one_error = _FAST(_MAPPINGS(_config_mapping))
test_any_numeric_argument_is_a_valid_config_or_one_error = _FAST(_NUMBERS(_numeric_argument))
test_any_config_mapping_long = pytest.mark.soak(pytest.mark.slow(_LONG(_MAPPINGS(_config_mapping))))
test_any_numeric_argument_long = pytest.mark.soak(pytest.mark.slow(_LONG(_NUMBERS(_numeric_argument))))
