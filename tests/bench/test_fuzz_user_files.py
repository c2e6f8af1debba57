"""Property tests of the parsers a user feeds files and names to: suite YAML, the score formula, paper
tables, ``compare --map`` and the one YAML loader. Each input gives a valid result or exactly one
BfrBenchError (one line), within bounded time (hypothesis' deadline) and memory (tracemalloc peak)."""
from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.compare import PaperTable, compare, parse_map, parse_table
from bench.core.errors import BfrBenchError
from bench.core.options import yaml_load
from bench.suites import parse_suite
from bench.suites.formula import Formula

#: examples per property in the default run; the slow-marked twins run many more
FAST = settings(max_examples=40, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=1000, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])
#: the most memory one parse may take (the billion-laughs suite took 4 GB before the loader was bounded)
PEAK_BYTES = 64 * 2**20


@pytest.fixture(autouse=True, scope="module")
def _plugins_loaded() -> None:
    """Import every plugin once outside the measured calls (the first spec lookup imports them all)."""
    from bench.core import plugins

    plugins.load_all()


def one_result_or_one_error(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or None after exactly one one-line BfrBenchError; any other exception fails the test."""
    tracemalloc.start()
    try:
        try:
            return fn()
        except BfrBenchError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip(), repr(str(exc))
            return None
        finally:
            assert tracemalloc.get_traced_memory()[1] < PEAK_BYTES
    finally:
        tracemalloc.stop()


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["psnr", "ssim", "demo", "lq", "1e400", ".nan", "abc", "fp16", "out"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
TOP_KEYS = ["name", "title", "year", "source", "description", "data", "datasets", "methods", "metrics", "score",
            "gate", "run", "other"]
SUITES = st.dictionaries(st.sampled_from(TOP_KEYS), VALUES, max_size=8).map(
    lambda d: {"name": "s", "datasets": ["demo"], "metrics": ["psnr"], **d})


def _suite_property(data: dict) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    suite = one_result_or_one_error(lambda: parse_suite(yaml_load(text), "s.yaml"))
    if suite is not None:
        assert all(isinstance(m, str) for m in suite.all_metrics())
        assert suite.year is None or isinstance(suite.year, int)
        assert all(d.threshold is None or math.isfinite(d.threshold) for d in suite.datasets)
        assert "out" not in suite.run


@FAST
@given(SUITES)
def test_suite_yaml_gives_a_suite_or_one_error(data):
    _suite_property(data)


@pytest.mark.slow
@pytest.mark.soak
@SLOW
@given(SUITES)
def test_suite_yaml_gives_a_suite_or_one_error_long(data):
    _suite_property(data)


def _alias_bomb(levels: int, width: int, key: str) -> str:
    lines = [f"l0: &l0 [{','.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + f"\n{key}: *l{levels - 1}\nname: s\ndatasets: [demo]\nmetrics: [psnr]\n"


@FAST
@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from(["description", "run", "title", "datasets"]))
def test_nested_aliases_are_loaded_or_refused_in_bounded_memory(levels, width, key):
    text = _alias_bomb(levels, width, key)
    one_result_or_one_error(lambda: parse_suite(yaml_load(text), "s.yaml"))


FORMULA_TEXT = st.text(alphabet="PQN0123456789.e+-*/(), maxinbs_[]'\"", max_size=120)


def _expr(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(["P", "Q", "N"]), st.integers(-(10**400), 10**400).map(str),
                     st.floats(allow_nan=False, allow_infinity=False).map(repr))
    if depth == 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from("+-*/"), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda e: f"-{e}"),
        st.tuples(st.sampled_from(["max", "min", "abs"]), st.lists(sub, min_size=0, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
    )


VALUES_OF = st.fixed_dictionaries({v: st.one_of(st.floats(), st.just(math.nan)) for v in ("P", "Q", "N")})


def _formula_property(text: str, values: dict) -> None:
    f = one_result_or_one_error(lambda: Formula(text))
    if f is not None:  # validated: evaluating can no longer fail, whatever the values
        assert set(f.variables) <= {"P", "Q", "N"} | set(f.variables)
        out = f.evaluate({v: values.get(v, 1.0) for v in f.variables})
        assert isinstance(out, float)


@FAST
@given(st.one_of(FORMULA_TEXT, _expr(3)), VALUES_OF)
def test_a_formula_is_valid_or_one_error_and_a_valid_one_always_evaluates(text, values):
    _formula_property(text, values)


@pytest.mark.slow
@pytest.mark.soak
@SLOW
@given(st.one_of(FORMULA_TEXT, _expr(4)), VALUES_OF)
def test_a_formula_is_valid_or_one_error_and_a_valid_one_always_evaluates_long(text, values):
    _formula_property(text, values)


ENTRY = st.dictionaries(st.sampled_from(["dataset", "method", "metric", "value", "tolerance", "x"]), VALUES,
                        max_size=6)
TABLES = st.fixed_dictionaries(
    {"entries": st.one_of(st.lists(ENTRY, max_size=4), VALUES)},
    optional={"source": VALUES, "tolerance": st.one_of(VALUES, st.dictionaries(
        st.sampled_from(["psnr", "fid"]), st.dictionaries(st.sampled_from(["abs", "rel", "x"]), SCALARS,
                                                           max_size=2), max_size=2)),
              "name": VALUES, "title": VALUES, "protocol": VALUES})
SUMMARY = pd.DataFrame([dict(dataset="d", method="m", metric="psnr", value=20.0, n=10, higher_better=True,
                             protocol="p", status="ok", kind="score")])


def _table_property(data: dict) -> None:
    table = one_result_or_one_error(lambda: parse_table(yaml_load(yaml.safe_dump(data)), "t.yaml"))
    if table is not None:
        assert isinstance(table, PaperTable) and table.entries
        for e in table.entries:
            assert math.isfinite(e.value) and all(isinstance(x, str) for x in (e.dataset, e.method, e.metric))
            assert math.isfinite(e.tolerance.allowed(e.value)) and e.tolerance.allowed(e.value) >= 0
        df = one_result_or_one_error(lambda: compare(SUMMARY, table))
        assert df is None or len(df) == len(table.entries)


@FAST
@given(TABLES)
def test_a_paper_table_is_valid_or_one_error(data):
    _table_property(data)


@pytest.mark.slow
@pytest.mark.soak
@SLOW
@given(TABLES)
def test_a_paper_table_is_valid_or_one_error_long(data):
    _table_property(data)


MAP_ITEMS = st.lists(st.text(max_size=16) | st.tuples(st.text(max_size=8), st.text(max_size=8)).map("=".join),
                     max_size=4)


@FAST
@given(MAP_ITEMS)
def test_map_is_text_or_one_error(items):
    out = one_result_or_one_error(lambda: parse_map(items, "--map"))
    if out is not None:
        for item in items:
            key, _, value = item.partition("=")
            assert out[key.strip()] == value.strip()  # the text itself: never YAML-read (yes stays yes)


@FAST
@given(st.text(max_size=200))
def test_the_yaml_loader_gives_data_or_one_error(text):
    def load() -> Any:
        try:
            return yaml_load(text)
        except yaml.YAMLError:
            return None  # invalid YAML: read_yaml_file turns it into one line naming the file

    one_result_or_one_error(load)
