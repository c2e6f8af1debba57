"""The one option parser: spec text read once into the types the factory declares, one label per protocol."""
from __future__ import annotations

from typing import Literal

import pytest

import bench
from bench.config import MethodSpec, RunConfig
from bench.core.errors import UserError
from bench.core.options import coerce_options, format_spec, parse_options, parse_value, split_spec
from bench.core.registry import METHODS, METRICS


@pytest.fixture(autouse=True, scope="module")
def _plugins():
    bench.list_metrics()  # loads the plugins


def test_one_value_parser():
    assert parse_value("1e-4") == pytest.approx(1e-4) and isinstance(parse_value("1e-4"), float)
    assert parse_value("4") == 4 and parse_value("true") is True and parse_value("none") is None
    assert parse_value("[1, 2]") == [1, 2] and parse_value("/a/b.pth") == "/a/b.pth"
    assert split_spec("pyiqa:musiq") == ("pyiqa:musiq", {})
    assert split_spec("pyiqa:musiq:x=1") == ("pyiqa:musiq", {"x": 1})
    assert split_spec("fid:stats=/s/a,b.pth") == ("fid", {"stats": "/s/a,b.pth"})
    assert split_spec("psnr:crop_border= 4 ", raw=True) == ("psnr", {"crop_border": "4"})
    assert parse_options("lr=1e-4,name=x") == {"lr": 1e-4, "name": "x"}
    with pytest.raises(UserError, match="bad option"):
        parse_options("=3")
    with pytest.raises(UserError, match="given twice"):
        parse_options("a=1,a=2")
    # the IQP trainer's --set reads values with the same parser
    from methods.iqp_bfr.train.config import apply_set

    assert apply_set({"train": {"lr_g": 0.1}}, ["train.lr_g=1e-4"])["train"]["lr_g"] == pytest.approx(1e-4)


def _toy(flag: bool = False, n: int = 1, x: float = 0.5, mode: Literal["a", "b"] = "a", path: str | None = None,
         anything=None) -> None:
    """A factory with one parameter of every kind the parser types."""


def test_values_are_typed_by_the_factory_signature():
    raw = {"flag": "yes", "n": "-3", "x": "1", "mode": "b", "path": "0.10", "anything": "[1, 2]"}
    assert coerce_options(raw, _toy, "toy") == {"flag": True, "n": -3, "x": 1.0, "mode": "b", "path": "0.10",
                                                "anything": [1, 2]}
    typed = {"flag": False, "n": 2, "x": 3, "mode": "a", "path": None}  # from YAML or Python
    assert coerce_options(typed, _toy, "toy") == {**typed, "x": 3.0}
    assert coerce_options({"path": "none"}, _toy, "toy") == {"path": None}


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("flag", "maybe", "true or false"), ("flag", 1, "true or false"), ("n", "1.5", "a whole number"),
    ("n", True, "a whole number"), ("x", "nan", "a finite number"), ("x", "1e400", "a finite number"),
    ("x", "abc", "a finite number"), ("mode", "c", "a, b"), ("path", [1], "text, or none"),
])
def test_a_bad_value_is_one_line_naming_the_option_and_what_it_accepts(key, value, accepted):
    with pytest.raises(UserError) as info:
        coerce_options({key: value}, _toy, "metric toy")
    text = str(info.value)
    assert text.startswith(f"metric toy: option {key}=") and f"(accepted: {accepted})" in text and "\n" not in text


def test_an_unknown_option_names_the_known_ones():
    with pytest.raises(UserError, match=r"has no option 'border' \(did you mean 'crop_border'\?\); its options: "
                                        r"crop_border, test_y_channel"):
        METRICS.entry("psnr:border=4")
    with pytest.raises(UserError, match="toy has no option 'z'"):
        coerce_options({"z": "1"}, _toy, "toy")


def test_test_y_channel_maybe_is_an_error_not_true():  # issue 20 item 7
    with pytest.raises(UserError, match=r"metric psnr: option test_y_channel='maybe'.*true or false"):
        METRICS.entry("psnr:test_y_channel=maybe")
    with pytest.raises(UserError, match="test_y_channel"):
        RunConfig(metrics=["psnr:test_y_channel=maybe"])
    with pytest.raises(UserError, match="test_y_channel"):
        RunConfig(metrics=[{"psnr": {"test_y_channel": "maybe"}}])
    with pytest.raises(ValueError, match="test_y_channel"):  # the Python API, past the parser
        bench.create_metric("psnr", test_y_channel="maybe")


@pytest.mark.parametrize(("spec", "accepted"), [
    ("niqe:impl=bogus", "auto, device, reference"), ("niqe:precision=f64", "float32, float64"),
    ("fid:sqrtm=numpy", "eigh, scipy"), ("brisque:variant=LIVE", "pyiqa, live"), ("piqe:variant=x", "pyiqa, matlab"),
])
def test_a_metric_choice_is_checked_when_parsed_and_lists_its_values(spec, accepted):
    """The choices live once, as the constructor's Literal annotation (the module's tuple is read from it)."""
    with pytest.raises(UserError, match=rf"option .* is not accepted \(accepted: {accepted}\)"):
        METRICS.entry(spec)
    name, key = spec.split(":")[0], spec.split(":")[1].split("=")[0]
    first = accepted.split(", ")[-1]
    assert METRICS.entry(f"{name}:{key}={first}").meta.get("options", {}) in ({key: first}, {})


def test_method_options_are_typed_and_checked_when_parsed():
    spec = MethodSpec.parse("codeformer:fidelity=1,adain=false")
    assert spec.kwargs() == {"fidelity": 1.0, "adain": False} and isinstance(spec.kwargs()["fidelity"], float)
    with pytest.raises(UserError, match=r"method classical: option radius='abc'.*whole number"):
        MethodSpec.parse("classical:radius=abc")
    with pytest.raises(UserError, match=r"method classical has no option 'radious' \(did you mean 'radius'\?\)"):
        MethodSpec.parse("classical:radious=3")


def test_one_label_formatter_for_methods_and_metrics():
    """Method labels printed ``True`` and metric labels ``true``; both go through format_spec now."""
    method = MethodSpec.parse("codeformer:adain=false,fidelity=0.7")
    assert method.label == "codeformer:adain=false,fidelity=0.7" == format_spec("codeformer", method.kwargs())
    yaml_method = RunConfig(methods=[{"codeformer": {"adain": False, "fidelity": 0.7}}]).methods[0]
    assert MethodSpec.parse(yaml_method).label == method.label
    assert METRICS.entry("ssim:test_y_channel=false,crop_border=2").name == "ssim:crop_border=2"
    from bench.cli import _listing  # `bfrbench list` writes defaults as the labels do

    assert "adain=true" in _listing.method_row(METHODS.entry("codeformer"))["defaults"]
    assert "embedding=none" in _listing.method_row(METHODS.entry("codeformer+iqp"))["defaults"]
    assert "test_y_channel=true" in " ".join(_listing.metric_row(METRICS.entry("psnr-y"))["options"])


@pytest.mark.parametrize(("spec", "label"), [
    ("psnr:test_y_channel=true", "psnr-y"), ("psnr:test_y_channel=yes", "psnr-y"), ("psnr-y", "psnr-y"),
    ("psnr-y:test_y_channel=false", "psnr"), ("psnr:crop_border=0", "psnr"),
    ("psnr:crop_border=4,test_y_channel=true", "psnr-y:crop_border=4"), ("ssim:test_y_channel=true", "ssim-y"),
    ("fid:eps=1e-4", "fid:eps=0.0001"), ("pyiqa:musiq:x=1", "pyiqa:musiq:x=1"),
])
def test_one_protocol_has_one_label(spec, label):
    entry = METRICS.entry(spec)
    assert entry.name == label and METRICS.canonical(spec) == label
    assert METRICS.entry(label).name == label  # the label is its own canonical form


def test_a_preset_and_its_spelled_out_options_build_the_same_protocol():
    for preset, spelled in (("psnr-y", "psnr:test_y_channel=true"), ("ssim-y", "ssim:test_y_channel=true")):
        a, b = METRICS.create(preset), METRICS.create(spelled)
        assert type(a) is type(b) and a.protocol == b.protocol == METRICS.entry(preset).meta["protocol"]
    assert RunConfig(metrics=["psnr-y", "psnr:test_y_channel=true"]).metrics == ["psnr-y", "psnr-y"]


def test_the_protocol_of_a_metric_with_options_is_the_instances_only():
    """``with_options`` wrote ``basicsr-rgb-crop0[crop_border=4]`` while the instance said ``basicsr-rgb-crop4``."""
    entry = METRICS.entry("psnr:crop_border=4")
    assert entry.meta["protocol"] is None  # no second answer beside the instance's
    assert entry.factory().protocol == "basicsr-rgb-crop4"
    assert METRICS.entry("lpips").meta["protocol"]  # a plain entry keeps its registered protocol


# -- property tests: any spec gives a valid, canonical entry or one BfrBenchError, quickly ----------------------
from datetime import timedelta  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.core.errors import BfrBenchError  # noqa: E402

#: examples per property in the default run; the slow-marked twins run many more
FAST = settings(max_examples=50, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=400, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])

_METRIC_NAMES = ["psnr", "psnr-y", "ssim", "ssim-y", "fid", "niqe", "brisque", "lpips", "ids", "pyiqa:musiq", "nope"]
_METHOD_NAMES = ["lq", "classical", "codeformer", "iqp-bfr", "gfpgan", "codeformer+iqp", "nope"]
_KEYS = ["crop_border", "test_y_channel", "eps", "sqrtm", "variant", "precision", "radius", "fidelity", "adain",
         "quality", "version", "x", "_k"]
_VALUES = st.one_of(
    st.sampled_from(["true", "false", "yes", "maybe", "none", "0", "4", "-1", "1.5", "1e-4", "nan", "inf", "1e400",
                     "[1, 2]", "{a: 1}", "eigh", "live", "", " ", "'x'", "&a", "!!python/object:os.system"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=","), max_size=20),
)
_OPTIONS = st.lists(st.tuples(st.sampled_from(_KEYS), _VALUES), max_size=4)


def _spec(name: str, items: list[tuple[str, str]]) -> str:
    return name + (":" + ",".join(f"{k}={v}" for k, v in items) if items else "")


def _metric_property(name: str, items: list[tuple[str, str]]) -> None:
    spec = _spec(name, items)
    try:
        entry = METRICS.entry(spec)
    except BfrBenchError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert METRICS.entry(entry.name).name == entry.name  # the label is canonical: a fixed point
    assert isinstance(entry.meta.get("options", {}), dict)


def _method_property(name: str, items: list[tuple[str, str]]) -> None:
    try:
        spec = MethodSpec.parse(_spec(name, items))
    except BfrBenchError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert MethodSpec.parse(spec.label).label == spec.label
    if spec.name in METHODS:
        assert MethodSpec.parse(spec.label).kwargs() == spec.kwargs()


_BUDGETS = [pytest.param(FAST, id="fast"), pytest.param(SLOW, id="long", marks=[pytest.mark.slow, pytest.mark.soak])]


@pytest.mark.parametrize("budget", _BUDGETS)
@pytest.mark.parametrize(("names", "check"), [(_METRIC_NAMES, _metric_property), (_METHOD_NAMES, _method_property)],
                         ids=["metric", "method"])
def test_specs_parse_or_fail_in_one_line(budget, names, check):
    budget(given(st.sampled_from(names), _OPTIONS)(check))()


@FAST
@given(st.text(max_size=40))
def test_any_text_as_a_metric_name_is_an_entry_or_one_error(text):
    try:
        METRICS.entry(text)
    except BfrBenchError:
        pass
